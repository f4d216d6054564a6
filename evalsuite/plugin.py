"""pytest glue: options, which files are case files, the hooks, and the session report.

Every stage runs without pytest (``evalsuite.runner``); this file only translates options and ini keys
into ``RunSettings.from_options``, decides which YAML files are suites, calls the ``hookspecs``, and
ships each item's ``ItemResult`` to the controller inside its test report (so xdist runs give one report).

As a ``pytest11`` plugin it loads in every pytest run of the environment, so it imports only light
modules: the pipeline (the SDK, vcrpy, numpy) is imported inside the hooks, once a case file is collected
or a fixture is used (``evalsuite._pytest_items``, ``evalsuite.fixtures``). Keep new hooks that way.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import sys
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from evalsuite import hookspecs
from evalsuite._util.record_modes import MODES

if TYPE_CHECKING:
    from evalsuite._pytest_items import CaseItem, SessionSchedule
    from evalsuite.quarantine import QuarantineEntry
    from evalsuite.records import ItemResult
    from evalsuite.runner import RunSettings
    from evalsuite.verdict import Coverage

pytest_plugins = ["evalsuite.fixtures"]

DEFAULT_CASES = ("cases/*.yaml", "cases/**/*.yaml", "cases/*.yml", "cases/**/*.yml")
_SUITE_KEY = re.compile(rb"""^["']?cases["']?[ \t]*:""", re.MULTILINE)  # a top-level `cases:` key
QUARANTINE_FILE = "quarantine.yaml"  # at rootdir, unless the ini key eval_quarantine names another file
RESULTS_ATTR = "evalsuite_results"  # on a TestReport: the item's results as plain data (what crosses xdist)
HEADLINE_ATTR = "evalsuite_headline"  # on a failed case item's TestReport: its one-line reason
DEFINED_ATTR = "evalsuite_defined"  # beside RESULTS_ATTR: every item its case file defines (identity -> file)
settings_key = pytest.StashKey["RunSettings"]()
results_key = pytest.StashKey["list[ItemResult]"]()  # on an item: every result it produced (a test may score twice)
quarantine_key = pytest.StashKey["dict[str, Any]"]()  # on a quarantined item: its quarantine.yaml entry
schedule_key = pytest.StashKey["SessionSchedule"]()  # the session's scheduler, once a test has started
_quarantine_entries_key = pytest.StashKey["list[QuarantineEntry]"]()
_case_file_seen_key = pytest.StashKey[bool]()  # even one that failed to load: its options are checked too


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("evalsuite", "LLM regression suites from YAML case files")
    if not _recording_may_still_load(pluginmanager):  # nobody else will define it: no need to wait
        _add_record_mode(parser)
    group.addoption("--eval-concurrency", type=int, default=None, help="max concurrent model calls per case")
    group.addoption("--eval-rpm", type=float, default=None, help="requests-per-minute budget per endpoint (live calls)")
    group.addoption("--eval-tpm", type=float, default=None, help="tokens-per-minute budget per endpoint (live calls)")
    group.addoption("--eval-limit", type=int, default=None, help="cap every dataset at N examples (quick run)")
    group.addoption("--eval-max-cost", type=float, default=None, metavar="USD",
                    help="spend guard of live runs: send no call once the estimated cost would pass USD")
    group.addoption("--eval-engine", default=None, choices=("local", "spark"),
                    help="where every case's live calls run, over its engine: key (spark: the active SparkSession)")
    group.addoption("--eval-model", default=None, metavar="[PROVIDER:]NAME",
                    help="override every case's model or Azure deployment, e.g. gpt-4o or azure_openai:gpt-4")
    group.addoption("--eval-api", default=None, choices=("chat", "completions", "responses"),
                    help="override every case's endpoint (chat models such as GPT-4 need chat)")
    group.addoption("--eval-report", default=None, metavar="DIR", help="report directory (default: reports/)")
    group.addoption("--eval-baseline", default=None, metavar="PATH", help="compare with this committed baseline JSON")
    group.addoption("--eval-update-baseline", action="store_true",
                    help="write this run's results as the baseline (to --eval-baseline / eval_baseline)")
    group.addoption("--eval-alpha", type=float, default=None, help="significance level of the baseline gate (0.05)")
    group.addoption("--eval-fail-on-missing", action="store_true", default=None,
                    help="fail the session when baseline items did not run (renamed or removed cases)")
    group.addoption("--eval-rejudge", action="store_true",
                    help="re-run judges (and other metrics' own model calls) on the recorded answers: the model under "
                         "test is only replayed, the metrics' cassettes are re-recorded")
    parser.addini("eval_cases", "glob patterns (relative to rootdir) of case files; set, every match is a suite "
                  f"(default: {' '.join(DEFAULT_CASES)}, holding a top-level cases: key)", type="linelist")
    parser.addini("eval_cassette_dir", "cassette directory, relative to rootdir", default="cassettes")
    parser.addini("eval_report_dir", "report directory, relative to rootdir", default="reports")
    parser.addini("eval_record_mode", "default record mode", default="none")
    parser.addini("eval_concurrency", "default max concurrent calls per case", default="")
    parser.addini("eval_rpm", "requests-per-minute budget per endpoint", default="")
    parser.addini("eval_tpm", "tokens-per-minute budget per endpoint", default="")
    parser.addini("eval_max_cost", "spend guard of live runs, in USD (estimated cost)", default="")
    parser.addini("eval_baseline", "baseline JSON path, relative to rootdir", default="")
    parser.addini("eval_alpha", "significance level of the baseline gate", default="0.05")
    parser.addini("eval_redact", "secrets to redact from cassettes and reports, besides the environment's: "
                  "one per line, a literal value or re:<regex>", type="linelist")
    parser.addini("eval_fail_on_missing", "fail the session when baseline items did not run", type="bool", default=False)
    parser.addini("eval_quarantine", "quarantine file, relative to rootdir (default: quarantine.yaml if present)",
                  default="")
    group.addoption("--eval-mlflow", nargs="?", const="auto", default=None, metavar="TRACKING_URI",
                    help="log the session to MLflow: a run, a nested run per item (without a URI, or 'auto': "
                         "MLFLOW_TRACKING_URI, else databricks on a Databricks cluster)")
    group.addoption("--eval-mlflow-experiment", default=None, metavar="NAME", help="MLflow experiment to log to "
                    "(default: MLFLOW_EXPERIMENT_NAME, else evalsuite; /Shared/evalsuite on Databricks)")
    parser.addini("eval_mlflow", "log every session to this MLflow tracking URI ('auto': MLFLOW_TRACKING_URI)", default="")
    parser.addini("eval_mlflow_experiment", "MLflow experiment to log to", default="")


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(parser: pytest.Parser) -> Generator[None, None, None]:
    """Every plugin is loaded now: define ``--record-mode`` unless pytest-recording already did (then it is shared).

    Defining it in ``pytest_addoption`` would break pytest-recording whenever evalsuite loads first.
    """
    yield
    _add_record_mode(parser)


def _recording_may_still_load(pluginmanager: pytest.PytestPluginManager) -> bool:
    """pytest-recording is installed, not loaded yet, and will be autoloaded: it defines ``--record-mode`` then."""
    return (importlib.util.find_spec("pytest_recording") is not None
            and not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
            and not pluginmanager.is_blocked("recording")
            and not pluginmanager.has_plugin("recording"))


def _add_record_mode(parser: pytest.Parser) -> None:
    # pytest has no public way to ask whether an option exists; both pytest 8 and 9 keep the groups here.
    groups = [parser._anonymous, *parser._groups]
    if any("--record-mode" in option.names() for group in groups for option in group.options):
        return
    parser.getgroup("evalsuite").addoption(
        "--record-mode", action="store", default=None, choices=MODES,
        help=f"cassette mode: {', '.join(MODES)} (default none: replay only)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "evalsuite: an item collected from an evalsuite case file")
    config.pluginmanager.register(SessionReport(config), "evalsuite-session-report")
    from evalsuite import integrations  # a few lines: an integration's module is imported only when asked for

    integrations.register(config)


def _option(config: pytest.Config, name: str, ini: str) -> Any:
    value = config.getoption(name, None)
    return value if value not in (None, "") else (config.getini(ini) or None)


def run_settings(config: pytest.Config) -> RunSettings:
    """The run's settings, read from the options on first use, then the configure hook, once per process.

    First used when items are collected (``pytest_collection_modifyitems``), so a bad value stops the run
    before anything runs, and a run without evalsuite items never imports the pipeline.
    """
    settings = config.stash.get(settings_key, None)
    if settings is not None:
        return settings
    from evalsuite.errors import EvalsuiteError
    from evalsuite.runner import RunSettings

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
        "redact": config.getini("eval_redact"),
        "rejudge": config.getoption("eval_rejudge"),
        "max_cost": _option(config, "eval_max_cost", "eval_max_cost"),
        "engine": config.getoption("eval_engine"),
    }
    try:
        settings = RunSettings.from_options(options)
    except EvalsuiteError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.hook.pytest_evalsuite_configure(config=config, settings=settings)
    config.stash[settings_key] = settings
    return settings


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml") or file_path.stem == "defaults":  # defaults.yaml: a layer, not a suite
        return None
    if not (parent.session.isinitpath(file_path) or is_suite(parent.config, file_path)):
        return None
    from evalsuite._pytest_items import CaseFile

    parent.config.stash[_case_file_seen_key] = True
    return CaseFile.from_parent(parent, path=file_path)


def is_suite(config: pytest.Config, path: Path) -> bool:
    """A YAML file is a suite when an ``eval_cases`` pattern the user set matches it, or when a default
    pattern does and it has a top-level ``cases:`` key (so a Kubernetes manifest in ``cases/`` is left alone)."""
    try:
        relative = path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return False
    configured = config.getini("eval_cases")
    if not any(fnmatch.fnmatch(relative, pattern) for pattern in configured or DEFAULT_CASES):
        return False
    return bool(configured) or _SUITE_KEY.search(path.read_bytes()) is not None


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect: every case the collected files define is known
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not (config.stash.get(_case_file_seen_key, False) or any(_uses_fixtures(item) for item in items)):
        return
    try:
        settings = run_settings(config)  # a bad option value is a usage error now, not a failure of every item
        if settings.baseline is not None:  # a legacy entry that several collected suites share serves none of them
            settings.baseline.resolve(ident for ident in map(_case_identity, items) if ident)
            defined = {ident: path for parent in {item.parent for item in items}  # so a renamed case finds its entry
                       for ident, path in getattr(parent, "defined", {}).items()}
            settings.baseline.define(defined, settings.rootdir)
        _apply_quarantine(config, items)  # an expired entry too: the run stops before anything runs
    except pytest.UsageError as exc:
        if not hasattr(config, "workerinput"):
            raise
        session.shouldstop = str(exc)  # an xdist worker: the controller stops the run and prints why


def pytest_collection_finish(session: pytest.Session) -> None:
    """Selection is final (``-k``, ``-m``, ``--lf``): a spend guard that cannot price a selected item stops the run
    before anything is sent."""
    if not session.config.stash.get(_case_file_seen_key, False) or session.config.option.collectonly:
        return
    from evalsuite._pytest_items import check_prices

    try:
        check_prices(session)
    except pytest.UsageError as exc:
        if not hasattr(session.config, "workerinput"):
            raise
        session.shouldstop = str(exc)  # an xdist worker: the controller stops the run and prints why


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist's controller tells each worker its ``--dist`` mode (a worker's own option says "no")."""
    from evalsuite._pytest_items import DIST_KEY

    node.workerinput[DIST_KEY] = node.config.getoption("dist", None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """The session scheduler plans the case items ahead of pytest, and stops with it (``-x``, ``--maxfail``)."""
    if not item.config.stash.get(_case_file_seen_key, False):
        return (yield)
    from evalsuite._pytest_items import schedule_around

    schedule = schedule_around(item, nextitem)
    try:
        return (yield)
    finally:
        if schedule is not None and (item.session.shouldstop or item.session.shouldfail):
            schedule.scheduler.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Before the reports: calls still in flight are cancelled and every cassette is saved with what it recorded."""
    schedule = session.config.stash.get(schedule_key, None)
    if schedule is not None:
        schedule.scheduler.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    """An expired or malformed quarantine.yaml stops the run before collection (under xdist: on the controller,
    before any worker runs an item)."""
    if not hasattr(session.config, "workerinput"):
        _quarantine(session.config)


def _quarantine_path(config: pytest.Config) -> Path | None:
    """ini ``eval_quarantine`` (relative to rootdir; it must exist), else ``quarantine.yaml`` at rootdir if present."""
    configured = config.getini("eval_quarantine")
    if configured:
        path = config.rootpath / configured
        if not path.is_file():
            raise pytest.UsageError(f"eval_quarantine = {configured}: no such file under {config.rootpath}; "
                                    "create it or remove the ini key")
        return path
    default = config.rootpath / QUARANTINE_FILE
    return default if default.is_file() else None


def _quarantine(config: pytest.Config) -> list[QuarantineEntry]:
    """The quarantine entries, read once per process (nothing imported without a file); any problem in the file
    is a usage error naming its line."""
    entries = config.stash.get(_quarantine_entries_key, None)
    if entries is not None:
        return entries
    path = _quarantine_path(config)
    entries = []
    if path is not None:
        from evalsuite.errors import EvalsuiteError
        from evalsuite.quarantine import load_quarantine

        try:
            entries = load_quarantine(path, config.rootpath)
        except EvalsuiteError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[_quarantine_entries_key] = entries
    return entries


def _apply_quarantine(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each item named in quarantine.yaml as a non-strict xfail: it runs, a failure is expected, a pass is xpass.

    For a case item only a missed threshold or a regression is expected: not recorded, or an error, still fails
    (a quarantine excuses a flaky verdict, not a broken setup)."""
    entries = _quarantine(config)
    if not entries:
        return
    from evalsuite.quarantine import find_entry

    for item in items:
        ident = _case_identity(item)
        names = (ident, item.nodeid) if ident is not None else (item.nodeid,)
        entry = find_entry(entries, names)
        if entry is not None:
            raises = cast("Any", sys.modules["evalsuite._pytest_items"]).EvalFailure if ident is not None else None
            item.add_marker(pytest.mark.xfail(reason=entry.describe(), strict=False, raises=raises))
            item.stash[quarantine_key] = entry.to_dict()


def _uses_fixtures(item: pytest.Item) -> bool:
    return any(name.startswith("evalsuite_") for name in getattr(item, "fixturenames", ()))


def _is_case_item(item: pytest.Item) -> bool:
    items = sys.modules.get("evalsuite._pytest_items")  # not imported: no case file was collected
    return items is not None and isinstance(item, items.CaseItem)


def _case_identity(item: pytest.Item) -> str | None:
    """``suite::item_id`` (``ItemResult.identity``) of a case item; None for other tests."""
    if not _is_case_item(item):
        return None
    run = cast("CaseItem", item).run
    from evalsuite.records import item_identity

    return item_identity(run.suite, run.item_id)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A case item's live progress goes to pytest's terminal, past output capture (silent in xdist workers)."""
    if not _is_case_item(item):
        return (yield)
    from evalsuite.model._progress import progress_to, terminal_sink

    with progress_to(terminal_sink(item.config)):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: the report as pytest's xfail handling left it
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    test_report = yield
    if item.stash.get(results_key, None) or _is_case_item(item):
        from evalsuite._pytest_items import reported_results

        results = reported_results(item, call, test_report)
        if results:
            setattr(test_report, RESULTS_ATTR, [r.to_dict() for r in results])
            setattr(test_report, DEFINED_ATTR, getattr(item.parent, "defined", {}))
            item.stash[results_key] = []  # shipped: the report's copy is the one the session keeps
    if call.when == "call" and call.excinfo is not None and _is_case_item(item):
        # The reason's first line, whatever -v/--tb print: what a CI annotation shows.
        setattr(test_report, HEADLINE_ATTR, (str(call.excinfo.value).splitlines() or ["failed"])[0])
    return test_report


class SessionReport:
    """Collects every item's result on the controller (xdist ships them inside the test reports)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.items: list[ItemResult] = []
        self.failed_cases: list[tuple[str, int, str]] = []  # (case file, line, one-line reason) for CI annotations
        self.coverage: Coverage | None = None  # against the baseline, once the session ends
        self.notes: list[tuple[str, bool]] = []  # (line, alarm): printed under the table (coverage, files written)
        self.defined: dict[str, str] = {}  # identity -> case file, of every item the case files that ran define

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A case file that does not load is an error pytest counts: the reports count it too (under xdist the
        controller gets each failed collection once)."""
        path = Path(report.nodeid)
        if report.failed and path.suffix in (".yaml", ".yml") and path.stem != "defaults":
            from evalsuite.records import ItemResult

            self.items.append(ItemResult.not_collected(report.nodeid, str(report.longrepr)))

    @pytest.hookimpl(trylast=True)  # after pytest's junit writer opened the testcase (and added any <failure>)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        headline = getattr(report, HEADLINE_ATTR, None)
        if report.when == "call" and report.failed and headline is not None:
            path, line, _ = report.location
            self.failed_cases.append((path, (line or 0) + 1, headline))
        data = getattr(report, RESULTS_ATTR, ())  # on the report that ended the item: setup (not run) or call
        if not data:
            return
        from evalsuite._ci import metric_summary, write_junit_system_out
        from evalsuite.records import ItemResult

        results = [ItemResult.from_dict(d) for d in data]
        delattr(report, RESULTS_ATTR)  # read: 25k records are not kept twice (pytest keeps every report to the end)
        self.items.extend(results)
        self.defined.update(getattr(report, DEFINED_ATTR, {}))
        write_junit_system_out(self.config, report, "\n".join(metric_summary(r) for r in results))

    def _reports_due(self) -> bool:
        """Reports are written whenever evalsuite took part, even if nothing ran: a stale report is worse than none."""
        config = self.config
        if hasattr(config, "workerinput") or config.option.collectonly:  # --collect-only runs nothing to report
            return False
        return bool(self.items or config.stash.get(_case_file_seen_key, False))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Judge coverage and write the files here, where a failure can still change the exit status; the
        terminal summary only prints what happened."""
        if not self._reports_due() or _usage_failed(session):
            return
        config = self.config
        settings = run_settings(config)  # pytest_evalsuite_configure runs first here too (under xdist, nothing ran yet)
        self.items.sort(key=lambda r: r.nodeid)
        config.hook.pytest_evalsuite_session_result(config=config, items=self.items)
        baseline = settings.baseline_path.as_posix() if settings.baseline_path else None
        meta: dict[str, Any] = {"record_mode": settings.record_mode, "alpha": settings.alpha, "baseline": baseline}
        if settings.baseline is not None:
            from evalsuite.verdict import coverage

            self.coverage = coverage(self.items, settings.baseline, defined=self.defined, rootdir=settings.rootdir)
            self.notes += [(text, False) for text in self.coverage.lines()]
            meta["coverage"] = {**self.coverage.to_dict(), "lines": self.coverage.lines()}  # lines: for report.md/html
            if self.coverage.missing and _fail_on_missing(config):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
                self.notes.append((f"evalsuite: failing the session (--eval-fail-on-missing): "
                                   f"{len(self.coverage.missing)} baseline item(s) did not run: "
                                   f"{', '.join(self.coverage.missing)}", True))
        from evalsuite import report
        from evalsuite.errors import EvalsuiteError
        from evalsuite.verdict import write_baseline

        try:
            written = report.write_reports(settings.rootdir / settings.report_dir, self.items, meta,
                                           redact=settings.redact)
            self.notes.append(("reports: " + ", ".join(str(p) for p in written.values()), False))
            if config.getoption("eval_update_baseline") and settings.baseline_path:
                # an item with examples the spend guard did not run is no baseline: its entry is kept, like a failure's
                complete = [replace(item, metrics=[]) if item.meta.get("not_run") else item for item in self.items]
                scored = [item for item in complete if item.metrics]  # the others keep their old entry
                write_baseline(settings.rootdir / settings.baseline_path, complete, redact=settings.redact)
                kept = len(self.items) - len(scored)
                self.notes.append((f"baseline written: {baseline} ({len(scored)} items"
                                   + (f"; {kept} not scored, their entries kept)" if kept else ")"), False))
        except EvalsuiteError as exc:  # e.g. a file where the report folder should be: the run must not look green
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.notes.append((f"evalsuite: {exc}", True))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        config = self.config
        if hasattr(config, "workerinput"):
            return
        if self.failed_cases and os.environ.get("GITHUB_ACTIONS") == "true":
            from evalsuite._ci import github_annotation

            for path, line, message in self.failed_cases:
                terminalreporter.write_line(github_annotation(path, line, message))
        if not self._reports_due() or settings_key not in config.stash:
            return
        from evalsuite import report

        terminalreporter.section("evalsuite score report")
        writer = config.get_terminal_writer()  # its markup honours --color and NO_COLOR
        reasons = config.getoption("tbstyle") == "no"  # otherwise pytest's failure section shows each reason
        terminalreporter.write_line(report.render(self.items, width=writer.fullwidth, markup=writer.markup,
                                                  reasons=reasons))
        for text, alarm in self.notes:
            terminalreporter.write_line(text, red=alarm)


def _fail_on_missing(config: pytest.Config) -> bool:
    option = config.getoption("eval_fail_on_missing", None)
    return bool(option) if option is not None else bool(config.getini("eval_fail_on_missing"))


def _usage_failed(session: pytest.Session) -> bool:
    """A usage error (a bad option, an expired quarantine) stopped the run: no settings, nothing to report."""
    return session.exitstatus == pytest.ExitCode.USAGE_ERROR
