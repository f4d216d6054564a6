"""The pytest side of a case file: its collector, its items, and how an item's result reaches the reports.

Imported by ``evalsuite.plugin`` only once a case file is collected (or a fixture scores), because it
pulls in the whole pipeline (the SDK, vcrpy, numpy): a project without case files never pays for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTracebackNative

from evalsuite._ci import failure_headline
from evalsuite.cases import CaseRun, load_suite
from evalsuite.errors import CaseFileWarning, EvalsuiteError, NotRecorded, Unavailable
from evalsuite.plugin import quarantine_key, results_key, run_settings, schedule_key, settings_key
from evalsuite.records import ItemResult, item_identity
from evalsuite.verdict.baseline import case_file

if TYPE_CHECKING:
    from evalsuite.scheduler import Ticket

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

        settings = replace(run_settings(self.config), nodeid=self.nodeid)
        schedule = session_schedule(self.config)
        try:
            answered = schedule.scheduler.wait(schedule.ticket(self))
            result = runner.finish_item(answered, settings)
        except Unavailable as exc:
            pytest.skip(str(exc))
        add_result(self, result)
        if result.meta.get("not_run"):  # the spend guard kept examples from running: not a verdict
            raise EvalsuiteError(result.message)
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


class SessionSchedule:
    """The session's :class:`~evalsuite.scheduler.Scheduler` and the items given to it, ahead of pytest running them.

    Without xdist every selected item is known when the first test starts: all of them are added then, in
    pytest's order (``-k``, ``-m``, ``--lf``, ``--sw`` have deselected the others; items a skip marker or
    ``xfail(run=False)`` keeps from running are left out). An xdist worker knows only the items the controller
    has handed it: ``--dist load`` (and loadscope, loadfile, loadgroup) sends each worker chunks of consecutive
    items and more as its queue runs low, and never takes them back, so before each test the worker adds the
    test, the next one and every item queued behind them (read from pytest-xdist's ``WorkerInteractor``, whose
    queue is not a public API: if it is not found, the test and the next one). ``--dist worksteal`` takes queued
    items back to hand them to an idle worker, so there only the test and the next one (both already off the
    queue) are added: an item is never answered by two workers. Each worker schedules its own share; the spend
    guard gives each worker ``1/n`` of ``--eval-max-cost``.
    """

    def __init__(self, config: pytest.Config) -> None:
        from evalsuite.scheduler import Scheduler  # the engine, the SDK, vcrpy: not for collecting (--collect-only)

        self.config = config
        workerinput = getattr(config, "workerinput", None)
        workers = int(workerinput.get("workercount", 1)) if workerinput else 1
        settings = run_settings(config)
        note = (f" (1/{workers} of --eval-max-cost {settings.max_cost:g} per xdist worker)"
                if workers > 1 and settings.max_cost is not None else "")
        self.scheduler = Scheduler(settings, spend_share=1 / workers, spend_note=note)
        self.tickets: dict[pytest.Item, Ticket] = {}
        self.added: set[pytest.Item] = set()
        self.all_added = False  # without xdist, every selected item is added at the first test
        self.steals = workerinput is not None and workerinput.get(DIST_KEY) == "worksteal"

    def plan_ahead(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        if hasattr(self.config, "workerinput"):
            ahead = [item, *([nextitem] if nextitem is not None else []), *([] if self.steals else _queued(item.session))]
        elif self.all_added:
            return
        else:
            ahead, self.all_added = list(item.session.items), True
        for candidate in ahead:
            if isinstance(candidate, CaseItem) and candidate not in self.added and _will_run(candidate):
                try:
                    self.tickets[candidate] = self._add(candidate)
                except Exception:  # e.g. a pytest_evalsuite_cassette hook that raises: that item's own test says so
                    continue

    def ticket(self, item: CaseItem) -> Ticket:
        """``item``'s ticket: the one added ahead, or (run again, or never added) a new one."""
        return self.tickets.pop(item, None) or self._add(item)

    def _add(self, item: CaseItem) -> Ticket:
        from evalsuite.cassettes import CassetteOptions

        self.added.add(item)
        options = CassetteOptions()
        self.config.hook.pytest_evalsuite_cassette(config=self.config, item=item, cassette=options)
        return self.scheduler.add(item.run, replace(run_settings(self.config), nodeid=item.nodeid), options)


DIST_KEY = "evalsuite_dist"  # in an xdist worker's workerinput: the controller's --dist mode


def session_schedule(config: pytest.Config) -> SessionSchedule:
    schedule = config.stash.get(schedule_key, None)
    if schedule is None:
        schedule = config.stash[schedule_key] = SessionSchedule(config)
    return schedule


def schedule_around(item: pytest.Item, nextitem: pytest.Item | None) -> SessionSchedule | None:
    """Before ``item`` runs: add the items ahead; let calls go out while a case item runs, hold them otherwise (a
    hand-written test may patch the HTTP stack, as vcrpy cassettes do, and must not catch the scheduler's calls).

    None when the run's options could not be read (an xdist worker met a usage error): each item says so."""
    if settings_key not in item.config.stash:
        return None
    schedule = session_schedule(item.config)
    schedule.plan_ahead(item, nextitem)
    if isinstance(item, CaseItem):
        schedule.scheduler.release()
    else:
        schedule.scheduler.hold()
    return schedule


def check_prices(session: pytest.Session) -> None:
    """With ``--eval-max-cost`` on a live run, every selected case item's model needs a price: a usage error now,
    before anything is sent, names the first model without one and the fix."""
    settings = run_settings(session.config)
    if settings.max_cost is None or settings.record_mode == "none":
        return
    from evalsuite.model import model_prices, price_per_1k
    from evalsuite.scheduler import price_missing

    for item in session.items:
        if isinstance(item, CaseItem):
            model = item.run.case.model.model_copy(update=settings.model_override)
            if price_per_1k(model.name, model_prices(model, settings.prices)) is None:
                raise pytest.UsageError(price_missing(model))


def _queued(session: pytest.Session) -> list[pytest.Item]:
    """The items an xdist worker has been handed and not started, in order (see :class:`SessionSchedule`)."""
    for plugin in session.config.pluginmanager.get_plugins():
        queue: Any = getattr(plugin, "torun", None)
        if type(plugin).__name__ == "WorkerInteractor" and hasattr(queue, "lock"):
            with queue.lock() as indices:
                pending = [index for index in indices if isinstance(index, int)]
            return [session.items[index] for index in pending if index < len(session.items)]
    return []


def _will_run(item: pytest.Item) -> bool:
    """False when a skip marker (or ``xfail(run=False)``) keeps ``item`` from running: its calls would be wasted."""
    from _pytest.skipping import evaluate_skip_marks, evaluate_xfail_marks  # pytest's own reading of the markers

    try:
        xfailed = evaluate_xfail_marks(item)
        return evaluate_skip_marks(item) is None and (xfailed is None or xfailed.run or item.config.option.runxfail)
    except Exception:  # a marker condition that fails: pytest reports it when the item runs (then it is added)
        return False


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
        for result in scored:  # an error after scoring is a failure, unless examples were not run (spend guard)
            incomplete = bool(result.meta.get("not_run"))
            result.outcome = "failed" if outcome == "error" and not incomplete else outcome
            result.quarantine = quarantine
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
