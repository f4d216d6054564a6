"""MLflow logging: the session is a parent run, each item a nested run, the reports artifacts of the parent.

Registered (:func:`register`, called through ``evalsuite.integrations.register``) when ``--eval-mlflow
[TRACKING_URI]`` or the ini key ``eval_mlflow`` is set, and only in the controller: it implements
``pytest_evalsuite_session_result``, which runs once there with every item's result (xdist workers' included),
so each item is logged exactly once, whatever ``-n`` says (``pytest_evalsuite_item_result`` runs in the
workers: not used).

- Parent run (the session): tags ``evalsuite.version``, ``evalsuite.record_mode``, ``evalsuite.git_commit`` (also
  MLflow's ``mlflow.source.git.commit``), ``evalsuite.baseline`` and ``evalsuite.baseline_sha256``,
  ``evalsuite.command``, MLflow's own context tags (user; notebook, job and cluster on Databricks); metrics
  ``items.<outcome>``; the report files as artifacts under ``reports/``, logged once they are written.
- Nested run per item (named by its item id): params ``model.*``, the sampling ``params.*``,
  ``dataset_fingerprint``, ``prompt_hash``, ``n``, ``repeats``; metrics ``<metric>`` and ``<metric>.ci_low``,
  ``.ci_high``, ``.baseline``, ``.delta``, ``.p_value``, plus ``errors``, ``unparsed``, ``cost_usd``,
  ``flakiness``; tags ``evalsuite.verdict`` (the item's outcome) and ``evalsuite.verdict.<metric>``; the
  per-example table ``examples.json`` (``log_table``).
- Each item's ``meta["mlflow"]`` names its runs (and the parent run's URL where there is one), so report.json
  links to them.

Everything logged as text goes through the reports' secret rule (:class:`evalsuite._util.secrets.Scrubber`, with
``eval_redact``). MLflow is talked to with an ``MlflowClient`` bound to the tracking URI, never the global
fluent state, so a notebook's own active run and tracking URI are left alone. A logging failure is one line in
the summary and fails the session, like a report that cannot be written.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    from evalsuite._util.secrets import Scrubber
    from evalsuite.records import ItemResult
    from evalsuite.runner import RunSettings

AUTO = "auto"  # --eval-mlflow without a URI: MLFLOW_TRACKING_URI, else databricks on a Databricks cluster
PLUGIN_NAME = "evalsuite-mlflow"  # -p no:evalsuite-mlflow switches it off for one run
DEFAULT_EXPERIMENT = "evalsuite"
DATABRICKS_EXPERIMENT = "/Shared/evalsuite"  # a workspace path: Databricks names experiments by path
TABLE_FILE = "examples.json"
MAX_TEXT = 5000  # MLflow's limit on a tag value (params allow 6000)
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_METRIC_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /:]")
_GIT_COMMIT_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION")  # GitHub, GitLab, Azure Pipelines


def register(config: pytest.Config) -> None:
    """Register the logger when ``--eval-mlflow`` / ``eval_mlflow`` asks for it (the controller only).

    A usage error names the fix: a value that is not a tracking URI (``pytest --eval-mlflow cases`` takes
    ``cases`` as the URI), no URI anywhere, MLflow not installed.
    """
    if hasattr(config, "workerinput"):  # an xdist worker: its results are logged by the controller
        return
    value = config.getoption("eval_mlflow", None)
    if value in (None, ""):
        value = str(config.getini("eval_mlflow") or "").strip()
    if not value:
        return
    uri = tracking_uri(value)
    if importlib.util.find_spec("mlflow") is None:
        raise pytest.UsageError("--eval-mlflow: MLflow is not installed: pip install 'evalsuite[mlflow]'")
    name = config.getoption("eval_mlflow_experiment", None) or str(config.getini("eval_mlflow_experiment") or "")
    config.pluginmanager.register(MlflowLogger(config, uri, name.strip() or None), PLUGIN_NAME)


def tracking_uri(value: str) -> str:
    """The tracking URI an option value means (``auto``: the environment's); ``UsageError`` naming the fix."""
    if value == AUTO:
        on_databricks = bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))
        uri = os.environ.get("MLFLOW_TRACKING_URI") or ("databricks" if on_databricks else "")
        if not uri:
            raise pytest.UsageError(
                "--eval-mlflow: no tracking URI: give one (--eval-mlflow=sqlite:///mlflow.db, "
                "--eval-mlflow=databricks, --eval-mlflow=http://host:5000) or set MLFLOW_TRACKING_URI")
        return uri
    if value.startswith("databricks") or _URI_SCHEME.match(value):
        return value
    raise pytest.UsageError(
        f"--eval-mlflow: {value!r} is not a tracking URI (e.g. sqlite:///mlflow.db, http://host:5000, databricks); "
        "to give test paths after the option, write --eval-mlflow=URI or --eval-mlflow=auto")


def display_uri(uri: str) -> str:
    """``uri`` without a password or query (a database URI may carry them), fit for messages and tags."""
    parts = urlsplit(uri)
    if not parts.netloc:
        return uri
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    netloc = f"{user}{host}:{parts.port}" if parts.port else f"{user}{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class MlflowLogger:
    """The pytest plugin object: logs in ``pytest_evalsuite_session_result``, adds the reports at session end."""

    def __init__(self, config: pytest.Config, uri: str, experiment: str | None) -> None:
        self.config = config
        self.uri = uri
        self.experiment = experiment
        self.parent: str | None = None  # the session's run id, once created
        self.experiment_id: str | None = None
        self.url: str | None = None  # the parent run in a web UI, where the tracking server has one
        self.logged = 0
        self.error: str | None = None
        self.redact: tuple[str, ...] = ()  # the eval_redact lines, once the settings are read
        self._reports_before: dict[Path, tuple[int, int] | None] = {}
        self._client: Any = None

    # -- hooks ------------------------------------------------------------------------------------

    def pytest_evalsuite_session_result(self, config: pytest.Config, items: list[ItemResult]) -> None:
        from evalsuite.plugin import run_settings

        settings = run_settings(config)
        self.redact = settings.redact
        self._reports_before = {path: _stamp(path) for path in _report_files(settings)}
        try:
            with _library_deprecations_hidden():
                self._log_session(settings, items)
        except Exception as exc:  # noqa: BLE001 - MLflow, its store or the network: one line, never a traceback
            self._failed(exc)

    @pytest.hookimpl(trylast=True)  # after evalsuite's session report wrote report.json/.md/.html
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.parent is not None:
            try:
                with _library_deprecations_hidden():
                    self._finish(int(session.exitstatus))
            except Exception as exc:  # noqa: BLE001 - as above
                self._failed(exc)
        if self.error is not None:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(trylast=True)  # under the score report
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.error is not None:
            terminalreporter.write_line(self.error, red=True)
        elif self.parent is not None:
            where = self.url or f"{display_uri(self.uri)} (mlflow ui --backend-store-uri {display_uri(self.uri)})"
            terminalreporter.write_line(f"mlflow: {self.logged} items logged to run {self.parent} of experiment "
                                        f"{self.experiment_id}: {where}")

    # -- logging ----------------------------------------------------------------------------------

    def _log_session(self, settings: RunSettings, items: list[ItemResult]) -> None:
        from mlflow import MlflowClient
        from mlflow.tracking.context.registry import resolve_tags
        from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID

        from evalsuite._util.secrets import Scrubber

        scrub = Scrubber(redact=settings.redact)
        client = self._client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = experiment_id = self._experiment_id(client)
        tags = self._session_tags(settings)
        if tags.get("evalsuite.git_commit"):
            tags[MLFLOW_GIT_COMMIT] = tags["evalsuite.git_commit"]
        suites = ", ".join(sorted({item.suite for item in items}))
        parent = client.create_run(experiment_id, run_name=_clip(scrub.text(f"evalsuite: {suites}"), 250),
                                   tags=_scrubbed(resolve_tags(tags), scrub))
        self.parent = parent_id = parent.info.run_id
        self.url = run_url(self.uri, experiment_id, parent_id)
        from evalsuite.report._common import summary

        outcomes = {name: n for name, n in summary(items)["outcomes"].items() if n}  # the reports' counts
        for item in items:
            child = client.create_run(experiment_id, run_name=_clip(scrub.text(item.item_id), 250),
                                      tags={MLFLOW_PARENT_RUN_ID: parent_id, **_scrubbed(item_tags(item), scrub)})
            run_id = child.info.run_id
            _log_batch(client, run_id, metrics=item_metrics(item), params=_scrubbed(item_params(item), scrub))
            if item.records:
                client.log_table(run_id, data=scrub.structure(example_table(item)), artifact_file=TABLE_FILE)
            client.set_terminated(run_id)
            item.meta["mlflow"] = {"experiment_id": experiment_id, "parent_run_id": parent_id, "run_id": run_id,
                                   **({"url": self.url} if self.url else {})}
            self.logged += 1
        _log_batch(client, parent_id, metrics={f"items.{name}": float(n) for name, n in outcomes.items()}, params={})

    def _experiment_id(self, client: Any) -> str:
        if self.experiment is None and os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        name = self.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or (
            DATABRICKS_EXPERIMENT if self.uri.startswith("databricks") else DEFAULT_EXPERIMENT)
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            return str(client.create_experiment(name))
        if experiment.lifecycle_stage == "deleted":
            raise ValueError(f"experiment {name!r} is deleted: restore it (mlflow experiments restore) or log to "
                             "another one (--eval-mlflow-experiment)")
        return str(experiment.experiment_id)

    def _session_tags(self, settings: RunSettings) -> dict[str, str]:
        from evalsuite import __version__

        tags = {"evalsuite.version": __version__, "evalsuite.record_mode": settings.record_mode,
                "evalsuite.command": " ".join(["pytest", *map(_shown_arg, self.config.invocation_params.args)])}
        commit = git_commit(settings.rootdir)
        if commit:
            tags["evalsuite.git_commit"] = commit
        if settings.baseline_path is not None:
            tags["evalsuite.baseline"] = settings.baseline_path.as_posix()
            path = settings.rootdir / settings.baseline_path
            if path.is_file():
                tags["evalsuite.baseline_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        return tags

    def _finish(self, exit_status: int) -> None:
        client, parent = self._client, self.parent
        for path, before in self._reports_before.items():
            if path.is_file() and _stamp(path) != before:  # written by this session (not a stale one)
                client.log_artifact(parent, str(path), artifact_path="reports")
        client.set_tag(parent, "evalsuite.exit_status", str(exit_status))
        client.set_terminated(parent)

    def _failed(self, exc: Exception) -> None:
        from evalsuite._util.secrets import Scrubber

        first = (str(exc).strip().splitlines() or [""])[0]
        where = display_uri(self.uri)
        self.error = _clip(Scrubber(redact=self.redact).text(
            f"evalsuite: MLflow logging to {where} failed: {type(exc).__name__}: {first}"), 400)
        if self.parent is not None and self._client is not None:
            try:  # the parent run would otherwise stay "running" forever in the UI
                self._client.set_terminated(self.parent, status="FAILED")
            except Exception:  # noqa: BLE001, S110 - the store is what failed: the first error is the one to show
                pass


# -- what is logged, as plain data (tested without MLflow) -------------------------------------------


def item_params(item: ItemResult) -> dict[str, str]:
    from evalsuite.verdict.baseline import prompt_fingerprint

    params = {f"model.{k}": v for k, v in item.model.items()}
    params.update({f"params.{k}": v for k, v in item.params.items()})
    params.update(dataset_fingerprint=item.dataset_fingerprint, n=item.n_examples,
                  prompt_hash=prompt_fingerprint(r.prompt_hash for r in item.records),
                  repeats=item.meta.get("repeats", 1), record_mode=item.record_mode, cassette=item.cassette or "")
    return {key: _text(value) for key, value in params.items() if value not in (None, "")}


def item_metrics(item: ItemResult) -> dict[str, float]:
    metrics: dict[str, Any] = {}
    for m in item.metrics:
        key = metric_key(m.name)
        metrics.update({key: m.value, f"{key}.ci_low": m.ci_low, f"{key}.ci_high": m.ci_high,
                        f"{key}.baseline": m.baseline, f"{key}.delta": m.delta, f"{key}.p_value": m.p_value})
    metrics.update(errors=item.errors, unparsed=item.unparsed, cost_usd=item.cost_usd, flakiness=item.flakiness)
    return {key: float(value) for key, value in metrics.items() if isinstance(value, (int, float))}


def item_tags(item: ItemResult) -> dict[str, str]:
    tags = {"evalsuite.verdict": item.outcome, "evalsuite.item": item.identity, "evalsuite.nodeid": item.nodeid,
            "evalsuite.source": item.source}
    tags.update({f"evalsuite.verdict.{metric_key(m.name)}": m.verdict for m in item.metrics})
    if item.message:
        tags["evalsuite.message"] = item.message
    return tags


def example_table(item: ItemResult) -> dict[str, list[Any]]:
    """One row per example and sample: what report.json's records hold, per-metric values as ``score.<name>``."""
    names = sorted({name for r in item.records for name in r.scores})
    columns: dict[str, list[Any]] = {column: [] for column in (
        "example_id", "sample", "input", "expected", "answer", "prediction", "parsed", "error")}
    columns.update({f"score.{name}": [] for name in names})
    for r in item.records:
        for column, value in (("example_id", r.example_id), ("sample", r.sample), ("input", r.input_excerpt),
                              ("expected", r.expected), ("answer", r.answer), ("prediction", r.prediction),
                              ("parsed", r.parsed), ("error", r.error)):
            columns[column].append(_cell(value))
        for name in names:
            columns[f"score.{name}"].append(_cell(r.scores.get(name)))
    return columns


def metric_key(name: str) -> str:
    """A metric name as an MLflow key (letters, digits and ``_-. /:`` only)."""
    return _METRIC_KEY_UNSAFE.sub("_", name)


def run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    """Where the run opens in a browser: the workspace for ``databricks``, the server's UI for http(s)."""
    if uri.startswith("databricks"):
        try:
            from mlflow.utils.databricks_utils import get_databricks_host_creds

            host = str(get_databricks_host_creds(uri).host).rstrip("/")
        except Exception:  # noqa: BLE001 - no workspace host known: the ids are printed instead
            return None
        return f"{host}/ml/experiments/{experiment_id}/runs/{run_id}"
    if uri.startswith(("http://", "https://")):
        return f"{display_uri(uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return None


def git_commit(rootdir: Path) -> str | None:
    """The checked-out commit of ``rootdir`` (git), else the CI's variable for it."""
    try:
        done = subprocess.run(["git", "-C", str(rootdir), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):  # no git here (a Databricks Git folder has no git binary)
        pass
    return next((os.environ[name] for name in _GIT_COMMIT_VARIABLES if os.environ.get(name)), None)


@contextmanager
def _library_deprecations_hidden() -> Iterator[None]:
    """MLflow's own deprecation warnings (about its SQLAlchemy or pandas use) are not the user's to act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _report_files(settings: RunSettings) -> list[Path]:
    from evalsuite.report import WRITERS

    return [settings.rootdir / settings.report_dir / f"report.{fmt}" for fmt in WRITERS]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _log_batch(client: Any, run_id: str, *, metrics: dict[str, float], params: dict[str, str]) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
                     params=[Param(key, value) for key, value in params.items()])


def _scrubbed(values: dict[str, str], scrub: Scrubber) -> dict[str, str]:
    """Scrubbed, then cut to what MLflow takes (a cut first could leave part of a secret)."""
    return {key: _clip(scrub.text(value), MAX_TEXT) for key, value in values.items()}


def _shown_arg(arg: str) -> str:
    """A command-line argument as logged: a URI without its password or query (``--eval-mlflow=postgresql://...``)."""
    option, equals, value = arg.partition("=") if arg.startswith("-") else ("", "", arg)
    return f"{option}{equals}{display_uri(value)}" if "://" in value else arg


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _cell(value: Any) -> Any:
    """A table cell: scalars as they are, anything else (a list of labels, a dict) as JSON text."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value, default=str)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
