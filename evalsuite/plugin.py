"""pytest glue: options, collection of case files, one item per case x variant, and the session report.

Every stage lives in its own module; this file only wires them into pytest's hooks.
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from evalsuite.verdict import baseline as baseline_io
from evalsuite import report, runner
from evalsuite.model import _engine as engine
from evalsuite.cases import _load as loader
from evalsuite.errors import EvalsuiteError
from evalsuite.records import ItemResult

RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
REPORT_ATTR = "evalsuite_result"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("evalsuite", "LLM regression suites from YAML case files")
    try:  # pytest-recording defines the same option with the same modes; share it when both are installed
        group.addoption("--record-mode", action="store", default=None, choices=RECORD_MODES,
                        help="cassette mode: none (replay only, default), once, new_episodes, all, rewrite")
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


_settings_key = pytest.StashKey[runner.RunSettings]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Read every evalsuite option once, so a bad value stops the run before anything is collected."""
    session.config.stash[_settings_key] = _read_settings(session.config)


def _read_settings(config: pytest.Config) -> runner.RunSettings:
    rootdir = Path(config.rootpath)
    mode = _option(config, "record_mode", "eval_record_mode") or "none"
    if mode not in RECORD_MODES:
        raise pytest.UsageError(f"eval_record_mode = {mode!r}: choose one of {', '.join(RECORD_MODES)}")
    baseline_path = _option(config, "eval_baseline", "eval_baseline")
    if config.getoption("eval_update_baseline") and not baseline_path:
        raise pytest.UsageError("--eval-update-baseline writes to --eval-baseline PATH (or the eval_baseline ini key)")
    baseline = None
    if baseline_path and not config.getoption("eval_update_baseline"):
        path = rootdir / baseline_path
        if not path.exists():
            raise pytest.UsageError(f"--eval-baseline {baseline_path}: no such file; write one with --eval-update-baseline")
        try:
            baseline = baseline_io.load_baseline(path)
        except baseline_io.BaselineError as exc:
            raise pytest.UsageError(str(exc)) from None
    concurrency = _option(config, "eval_concurrency", "eval_concurrency")
    return runner.RunSettings(
        rootdir=rootdir,
        record_mode=mode,
        cassette_dir=Path(config.getini("eval_cassette_dir")),
        engine=engine.EngineSettings(
            **({"concurrency": int(concurrency)} if concurrency else {}),
            requests_per_minute=_number(_option(config, "eval_rpm", "eval_rpm")),
            tokens_per_minute=_number(_option(config, "eval_tpm", "eval_tpm")),
        ),
        limit=config.getoption("eval_limit"),
        model_override=_model_override(config.getoption("eval_model"), config.getoption("eval_api")),
        alpha=float(_option(config, "eval_alpha", "eval_alpha")),
        baseline=baseline,
        prices=loader.tool_settings(rootdir).get("prices", {}),
    )


def _model_override(model: str | None, api: str | None) -> dict[str, str]:
    override = {"api": api} if api else {}
    if model:
        provider, _, name = model.rpartition(":")
        if provider and provider not in ("openai", "azure_openai"):
            raise pytest.UsageError(f"--eval-model {model}: provider must be openai or azure_openai")
        override.update({"name": name, **({"provider": provider} if provider else {})})
    return override


def _number(value: Any) -> float | None:
    return float(value) if value not in (None, "") else None


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

    def collect(self):  # type: ignore[override]
        runs = loader.load_suite(self.path, Path(self.config.rootpath))
        for run in runs:
            item = CaseItem.from_parent(self, name=run.item_id, run=run)
            item.add_marker(pytest.mark.evalsuite)
            for tag in run.case.tags:
                self.config.addinivalue_line("markers", f"{tag}: evalsuite case tag")
                item.add_marker(getattr(pytest.mark, tag))
            yield item

    def repr_failure(self, excinfo, style=None):  # type: ignore[override]
        if isinstance(excinfo.value, EvalsuiteError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


class EvalFailure(Exception):
    """A case missed a threshold, regressed against the baseline, or was not recorded."""


class CaseItem(pytest.Item):
    def __init__(self, *, run: loader.CaseRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.result: ItemResult | None = None

    def runtest(self) -> None:
        settings_for_item = replace(self.config.stash[_settings_key], nodeid=self.nodeid)
        try:
            self.result = runner.run_item(self.run, settings_for_item)
        except runner.Unavailable as exc:
            pytest.skip(str(exc))
        except runner.NotRecorded as exc:
            raise EvalFailure(str(exc)) from None
        for metric in self.result.metrics:
            if metric.value is not None:
                self.user_properties.append((f"evalsuite.{metric.name}", round(metric.value, 6)))
                if metric.delta is not None:
                    self.user_properties.append((f"evalsuite.{metric.name}.delta", round(metric.delta, 6)))
        self.user_properties.append(("evalsuite.verdict._judge", "pass" if self.result.passed else "fail"))
        if not self.result.passed:
            raise EvalFailure(self.result.message)

    def repr_failure(self, excinfo, style=None):  # type: ignore[override]
        if isinstance(excinfo.value, (EvalFailure, EvalsuiteError)) and self.config.getoption("verbose") < 2:
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):  # type: ignore[override]
        line = int(self.run.source.rsplit(":", 1)[1]) - 1 if ":" in self.run.source else 0
        return self.path, line, f"evalsuite: {self.run.item_id}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    if call.when == "call" and isinstance(item, CaseItem) and item.result is not None:
        setattr(outcome.get_result(), REPORT_ATTR, item.result.to_dict())


class SessionReport:
    """Collects every item's result on the controller (xdist ships them inside the test reports)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.items: list[ItemResult] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_ATTR, None)
        if data is not None and report.when == "call":
            self.items.append(ItemResult.from_dict(data))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        config = self.config
        if not self.items or hasattr(config, "workerinput"):
            return
        items = sorted(self.items, key=lambda r: r.nodeid)
        settings = config.stash[_settings_key]
        terminalreporter.section("evalsuite score report")
        terminalreporter.write_line(report.terminal.render(items))
        out_dir = Path(config.rootpath) / (config.getoption("eval_report") or config.getini("eval_report_dir"))
        meta = {"record_mode": settings.record_mode, "alpha": settings.alpha,
                "baseline": _option(config, "eval_baseline", "eval_baseline")}
        written = report.files.write_reports(out_dir, items, meta)
        terminalreporter.write_line("reports: " + ", ".join(str(p) for p in written.values()))
        if config.getoption("eval_update_baseline"):
            path = _option(config, "eval_baseline", "eval_baseline")
            baseline_io.write_baseline(Path(config.rootpath) / path, items)
            terminalreporter.write_line(f"baseline written: {path} ({len(items)} items)")

