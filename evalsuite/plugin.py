"""pytest glue: options, collection of case files, one item per case x variant, the hooks, and the session report.

Every stage runs without pytest (``evalsuite.runner``); this file only translates options and ini keys
into ``RunSettings.from_options``, turns case files into items, calls the ``hookspecs``, and ships each
item's ``ItemResult`` to the controller inside its test report (so xdist runs give one report).
Fixtures for hand-written tests live in ``evalsuite.fixtures``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from evalsuite import hookspecs, report, runner
from evalsuite.cases import CaseRun, load_suite
from evalsuite.cassettes import MODES, CassetteOptions
from evalsuite.errors import EvalsuiteError, NotRecorded, Unavailable
from evalsuite.records import ItemResult
from evalsuite.verdict import write_baseline

pytest_plugins = ["evalsuite.fixtures"]

RESULTS_ATTR = "evalsuite_results"  # on a TestReport: the item's results as plain data (what crosses xdist)
settings_key = pytest.StashKey[runner.RunSettings]()
results_key = pytest.StashKey[list[ItemResult]]()  # on an item: every result it produced (a test may score twice)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("evalsuite", "LLM regression suites from YAML case files")
    try:  # pytest-recording defines the same option with the same modes; share it when both are installed
        group.addoption("--record-mode", action="store", default=None, choices=MODES,
                        help=f"cassette mode: {', '.join(MODES)} (default none: replay only)")
    except ValueError:
        pass
    group.addoption("--eval-concurrency", type=int, default=None, help="max concurrent model calls per case")
    group.addoption("--eval-rpm", type=float, default=None, help="requests-per-minute budget per endpoint (live calls)")
    group.addoption("--eval-tpm", type=float, default=None, help="tokens-per-minute budget per endpoint (live calls)")
    group.addoption("--eval-limit", type=int, default=None, help="cap every dataset at N examples (quick run)")
    group.addoption("--eval-model", default=None, metavar="[PROVIDER:]NAME",
                    help="override every case's model or Azure deployment, e.g. gpt-4o or azure_openai:gpt-4")
    group.addoption("--eval-api", default=None, choices=("chat", "completions"),
                    help="override every case's endpoint (chat models such as GPT-4 need chat)")
    group.addoption("--eval-report", default=None, metavar="DIR", help="report directory (default: reports/)")
    group.addoption("--eval-baseline", default=None, metavar="PATH", help="compare with this committed baseline JSON")
    group.addoption("--eval-update-baseline", action="store_true",
                    help="write this run's results as the baseline (to --eval-baseline / eval_baseline)")
    group.addoption("--eval-alpha", type=float, default=None, help="significance level of the baseline gate (0.05)")
    parser.addini("eval_cases", "glob patterns (relative to rootdir) of case files", type="linelist",
                  default=["cases/*.yaml", "cases/**/*.yaml", "cases/*.yml", "cases/**/*.yml"])
    parser.addini("eval_cassette_dir", "cassette directory, relative to rootdir", default="cassettes")
    parser.addini("eval_report_dir", "report directory, relative to rootdir", default="reports")
    parser.addini("eval_record_mode", "default record mode", default="none")
    parser.addini("eval_concurrency", "default max concurrent calls per case", default="")
    parser.addini("eval_rpm", "requests-per-minute budget per endpoint", default="")
    parser.addini("eval_tpm", "tokens-per-minute budget per endpoint", default="")
    parser.addini("eval_baseline", "baseline JSON path, relative to rootdir", default="")
    parser.addini("eval_alpha", "significance level of the baseline gate", default="0.05")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "evalsuite: an item collected from an evalsuite case file")
    config.pluginmanager.register(SessionReport(config), "evalsuite-session-report")


def _option(config: pytest.Config, name: str, ini: str) -> Any:
    value = config.getoption(name)
    return value if value not in (None, "") else (config.getini(ini) or None)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Read every evalsuite option once, so a bad value stops the run before anything is collected."""
    config = session.config
    options = {
        "rootdir": config.rootpath,
        "record_mode": _option(config, "record_mode", "eval_record_mode"),
        "cassette_dir": config.getini("eval_cassette_dir"),
        "report_dir": config.getoption("eval_report") or config.getini("eval_report_dir"),
        "concurrency": _option(config, "eval_concurrency", "eval_concurrency"),
        "rpm": _option(config, "eval_rpm", "eval_rpm"),
        "tpm": _option(config, "eval_tpm", "eval_tpm"),
        "limit": config.getoption("eval_limit"),
        "model": config.getoption("eval_model"),
        "api": config.getoption("eval_api"),
        "alpha": _option(config, "eval_alpha", "eval_alpha"),
        "baseline": _option(config, "eval_baseline", "eval_baseline"),
        "update_baseline": config.getoption("eval_update_baseline"),
    }
    try:
        settings = runner.RunSettings.from_options(options)
    except EvalsuiteError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.hook.pytest_evalsuite_configure(config=config, settings=settings)
    config.stash[settings_key] = settings


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml") or file_path.name in ("defaults.yaml", "defaults.yml"):
        return None
    try:
        relative = file_path.relative_to(parent.config.rootpath).as_posix()
    except ValueError:
        return None
    patterns = parent.config.getini("eval_cases")
    if not any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
        return None
    return CaseFile.from_parent(parent, path=file_path)


class CaseFile(pytest.File):
    """A YAML case file: one suite, one item per case x variant."""

    def collect(self) -> Iterator[CaseItem]:
        runs = load_suite(self.path, Path(self.config.rootpath))
        for run in runs:
            item = CaseItem.from_parent(self, name=run.item_id, run=run)
            item.add_marker(pytest.mark.evalsuite)
            for tag in run.case.tags:
                self.config.addinivalue_line("markers", f"{tag}: evalsuite case tag")
                item.add_marker(getattr(pytest.mark, tag))
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | Any:  # type: ignore[override]  # pytest's Collector takes no style
        if isinstance(excinfo.value, EvalsuiteError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class EvalFailure(Exception):
    """A case missed a threshold, regressed against the baseline, or was not recorded."""


class CaseItem(pytest.Item):
    def __init__(self, *, run: CaseRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run

    def runtest(self) -> None:
        settings = replace(self.config.stash[settings_key], nodeid=self.nodeid)
        options = CassetteOptions()
        self.config.hook.pytest_evalsuite_cassette(config=self.config, item=self, cassette=options)
        try:
            result = runner.run_item(self.run, settings, cassette_options=options)
        except Unavailable as exc:
            pytest.skip(str(exc))
        except NotRecorded as exc:
            raise EvalFailure(str(exc)) from None
        add_result(self, result)
        if not result.passed:
            raise EvalFailure(result.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | Any:
        if isinstance(excinfo.value, (EvalFailure, EvalsuiteError)) and self.config.getoption("verbose") < 2:
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        line = int(self.run.source.rsplit(":", 1)[1]) - 1 if ":" in self.run.source else 0
        return self.path, line, f"evalsuite: {self.run.item_id}"


def add_result(item: pytest.Item, result: ItemResult) -> None:
    """Record one result of ``item``: junit properties, the item-result hook, and the report shipped to the controller."""
    for metric in result.metrics:
        if metric.value is not None:
            item.user_properties.append((f"evalsuite.{metric.name}", round(metric.value, 6)))
            if metric.delta is not None:
                item.user_properties.append((f"evalsuite.{metric.name}.delta", round(metric.delta, 6)))
    item.user_properties.append(("evalsuite.verdict", "pass" if result.passed else "fail"))
    item.config.hook.pytest_evalsuite_item_result(config=item.config, item=item, result=result)
    item.stash.setdefault(results_key, []).append(result)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    test_report = yield
    if call.when == "call" and item.stash.get(results_key, None):
        setattr(test_report, RESULTS_ATTR, [r.to_dict() for r in item.stash[results_key]])
    return test_report


class SessionReport:
    """Collects every item's result on the controller (xdist ships them inside the test reports)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.items: list[ItemResult] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.items.extend(ItemResult.from_dict(data) for data in getattr(report, RESULTS_ATTR, ()))

    def pytest_sessionfinish(self) -> None:
        if self.items and not hasattr(self.config, "workerinput"):
            self.items.sort(key=lambda r: r.nodeid)
            self.config.hook.pytest_evalsuite_session_result(config=self.config, items=self.items)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        config = self.config
        if not self.items or hasattr(config, "workerinput"):
            return
        items = self.items
        settings = config.stash[settings_key]
        terminalreporter.section("evalsuite score report")
        terminalreporter.write_line(report.render(items))
        baseline = settings.baseline_path.as_posix() if settings.baseline_path else None
        meta = {"record_mode": settings.record_mode, "alpha": settings.alpha, "baseline": baseline}
        written = report.write_reports(settings.rootdir / settings.report_dir, items, meta)
        terminalreporter.write_line("reports: " + ", ".join(str(p) for p in written.values()))
        if config.getoption("eval_update_baseline") and settings.baseline_path:
            write_baseline(settings.rootdir / settings.baseline_path, items)
            terminalreporter.write_line(f"baseline written: {baseline} ({len(items)} items)")
