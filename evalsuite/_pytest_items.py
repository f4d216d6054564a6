"""The pytest side of a case file: its collector, its items, and how an item's result reaches the reports.

Imported by ``evalsuite.plugin`` only once a case file is collected (or a fixture scores), because it
pulls in the whole pipeline (the SDK, vcrpy, numpy): a project without case files never pays for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTracebackNative

from evalsuite._ci import failure_headline
from evalsuite.cases import CaseRun, load_suite
from evalsuite.errors import CaseFileWarning, EvalsuiteError, NotRecorded, Unavailable
from evalsuite.plugin import quarantine_key, results_key, run_settings, settings_key
from evalsuite.records import ItemResult, item_identity
from evalsuite.verdict.baseline import case_file

_PROPERTY_FAMILIES = ("xunit1", "legacy")  # the junit families whose schema has testcase <properties>


class CaseFile(pytest.File):
    """A YAML case file: one suite, one item per case x variant."""

    def collect(self) -> Iterator[CaseItem]:
        runs = load_suite(self.path, Path(self.config.rootpath))
        # Every item the file defines, whatever -k/--lf/-x then run: baseline entries absent here are "missing".
        self.defined = {item_identity(run.suite, run.item_id): case_file(run.source) for run in runs}
        for run in runs:
            # The node id spelled out: pytest >= 9.2 parses "case[variant]" into name and params, as it does the
            # ids in its cache; a child built from the bare name would never match them (--lf, --ff, --sw).
            item = CaseItem.from_parent(self, name=run.item_id, run=run, nodeid=f"{self.nodeid}::{run.item_id}")
            item.add_marker(pytest.mark.evalsuite)
            for tag in run.case.tags:
                self.config.addinivalue_line("markers", f"{tag}: evalsuite case tag")
                item.add_marker(getattr(pytest.mark, tag))
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | Any:  # type: ignore[override]  # pytest's Collector takes no style
        if isinstance(excinfo.value, EvalsuiteError):
            return plain_failure(str(self.path), 0, str(excinfo.value))
        if isinstance(excinfo.value, CaseFileWarning):  # made an error by -W error / filterwarnings = error
            return plain_failure(str(self.path), 0, f"{excinfo.value.location}: {excinfo.value}")
        return super().repr_failure(excinfo)


class EvalFailure(Exception):
    """A case missed a threshold or regressed against the baseline (not recorded: ``NotRecorded`` itself)."""


class CaseItem(pytest.Item):
    def __init__(self, *, run: CaseRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run

    def runtest(self) -> None:
        from evalsuite import runner  # the SDK, vcrpy and numpy: not for collecting (--collect-only)
        from evalsuite.cassettes import CassetteOptions

        settings = replace(run_settings(self.config), nodeid=self.nodeid)
        options = CassetteOptions()
        self.config.hook.pytest_evalsuite_cassette(config=self.config, item=self, cassette=options)
        try:
            result = runner.run_item(self.run, settings, cassette_options=options)
        except Unavailable as exc:
            pytest.skip(str(exc))
        add_result(self, result)
        if not result.passed:
            # pytest's one-line summary shows the first line: the metric and its value, not the title.
            details = result.message.splitlines()[1:]
            raise EvalFailure("\n".join([failure_headline(result), *details]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | Any:
        plain = (EvalFailure, EvalsuiteError, pytest.UsageError)  # UsageError: a bad option, met by an xdist worker
        if isinstance(excinfo.value, plain) and self.config.getoption("verbose") < 2:
            path, line, _ = self.reportinfo()
            return plain_failure(str(path), line + 1, str(excinfo.value))
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        line = int(self.run.source.rsplit(":", 1)[1]) - 1 if ":" in self.run.source else 0
        return self.path, line, f"evalsuite: {self.run.item_id}"


def plain_failure(path: str, line: int, text: str) -> ReprExceptionInfo:
    """The reason as written, no traceback; its first line is pytest's one-line summary.

    A bare string would be repeated whole in the short summary wherever pytest sees ``CI`` set.
    """
    headline = (text.splitlines() or ["failed"])[0]
    return ReprExceptionInfo(
        reprtraceback=ReprTracebackNative([text if text.endswith("\n") else text + "\n"]),
        reprcrash=ReprFileLocation(path, line, headline),
    )


def add_result(item: pytest.Item, result: ItemResult) -> None:
    """Record one result of ``item``: junit properties, the item-result hook, and the report shipped to the controller."""
    if _junit_takes_properties(item.config):
        for metric in result.metrics:
            if metric.value is not None:
                item.user_properties.append((f"evalsuite.{metric.name}", round(metric.value, 6)))
                if metric.delta is not None:
                    item.user_properties.append((f"evalsuite.{metric.name}.delta", round(metric.delta, 6)))
        item.user_properties.append(("evalsuite.verdict", "pass" if result.passed else "fail"))
    item.config.hook.pytest_evalsuite_item_result(config=item.config, item=item, result=result)
    item.stash.setdefault(results_key, []).append(result)


def reported_results(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> list[ItemResult]:
    """The results ``report`` ships to the reports, with pytest's outcome: the scored ones after the call, or, for a
    case item that ended without a verdict (not recorded, an error, a skip at setup or call), one not-run result.

    Only the report that ends the item carries one (setup when it did not pass, else call), so each item is
    listed exactly once, whatever xdist does with the reports.
    """
    outcome = _outcome(call, report)
    quarantine = item.stash.get(quarantine_key, None)
    scored = item.stash.get(results_key, []) if call.when == "call" else []
    if scored:
        for result in scored:
            result.outcome, result.quarantine = ("failed" if outcome == "error" else outcome), quarantine
        return scored
    ends_item = call.when == "call" or (call.when == "setup" and not report.passed)
    settings = item.config.stash.get(settings_key, None)
    if not (isinstance(item, CaseItem) and ends_item and settings is not None):
        return []
    from evalsuite import runner

    result = runner.not_run_result(item.run, replace(settings, nodeid=item.nodeid), outcome, _why(call, report))
    result.quarantine = quarantine
    return [result]


def _outcome(call: pytest.CallInfo[None], report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.passed or report.skipped:
        return report.outcome
    if call.excinfo is not None and call.excinfo.errisinstance(NotRecorded):
        return "not_recorded"
    return "failed" if call.excinfo is not None and call.excinfo.errisinstance(EvalFailure) else "error"


def _why(call: pytest.CallInfo[None], report: pytest.TestReport) -> str:
    """The reason as the user should read it: the skip reason, or the error's own message (its type if not ours)."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if call.excinfo is None:
        return ""
    error = call.excinfo.value
    return str(error) if isinstance(error, (EvalsuiteError, EvalFailure)) else f"{type(error).__name__}: {error}"


def _junit_takes_properties(config: pytest.Config) -> bool:
    """False only when a junit file of a family without testcase properties (xunit2, pytest's default) is written.

    The metrics are in every family's system-out (``evalsuite._ci``); properties there would make the file invalid.
    """
    if not config.getoption("xmlpath", None):
        return True
    return str(config.getini("junit_family")) in _PROPERTY_FAMILIES
