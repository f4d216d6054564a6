"""MLflow logging end to end: a real sqlite tracking store in a temp dir, read back with MlflowClient."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evalsuite.integrations.mlflow import display_uri, example_table, item_metrics, metric_key, run_url
from evalsuite.records import ItemResult
from tests._support.builders import make_item
from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, SENTIMENT_ITEMS, make_project, report_json, run

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
from mlflow import MlflowClient  # noqa: E402

EXPERIMENT = "sentiment-evals"


def tracking_store(tmp_path: Path) -> tuple[str, str]:
    """A sqlite store with the experiment created beforehand, so artifacts go to the temp dir (not ./mlruns)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = MlflowClient(uri).create_experiment(EXPERIMENT, artifact_location=(tmp_path / "artifacts").as_uri())
    return uri, experiment_id


def runs(uri: str, experiment_id: str) -> tuple[Any, dict[str, Any]]:
    """The parent (session) run and the nested runs by their evalsuite.item tag."""
    found = MlflowClient(uri).search_runs([experiment_id], max_results=1000)
    [parent] = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.tags["evalsuite.item"]: r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert len(children) == len(found) - 1
    return parent, children


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    make_project(pytester)
    data = pytester.path / "cases" / "data" / "reviews.jsonl"
    rows = data.read_text().replace("A great film, I love it", f"A great film, I love it (key {CANARY})")
    data.write_text(rows)  # a secret in a row: reports are scrubbed of it, and so is what MLflow gets
    return pytester


def test_an_xdist_session_is_one_parent_run_with_a_nested_run_per_item_equal_to_report_json(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    uri, experiment_id = tracking_store(tmp_path)
    with ChatServer(sentiment_responder) as server:
        result = run(project, "cases", "--record-mode=once", "-n", "2", f"--eval-mlflow={uri}",
                     f"--eval-mlflow-experiment={EXPERIMENT}", "--eval-baseline=baseline.json", "--eval-update-baseline",
                     env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert result.returncode == 0, result.stdout + result.stderr
    parent, children = runs(uri, experiment_id)
    assert f"mlflow: 4 items logged to run {parent.info.run_id} of experiment {experiment_id}" in result.stdout
    report = report_json(project)
    assert {item["item_id"] for item in report["items"]} == SENTIMENT_ITEMS and len(children) == 4  # logged once each

    tags = parent.data.tags
    assert tags["evalsuite.record_mode"] == "once" and tags["evalsuite.version"] == report["run"]["packages"]["evalsuite"]
    assert tags["evalsuite.baseline"] == "baseline.json" and "evalsuite.baseline_sha256" not in tags  # none existed yet
    assert tags["evalsuite.exit_status"] == "0" and parent.info.status == "FINISHED"
    assert parent.data.metrics == {"items.passed": 4.0}

    client = MlflowClient(uri)
    for item in report["items"]:
        child = children[f"reviews::{item['item_id']}"]
        assert child.info.run_name == item["item_id"] and child.info.status == "FINISHED"
        assert child.data.tags["evalsuite.verdict"] == item["outcome"] == "passed"
        assert item["meta"]["mlflow"] == {"experiment_id": experiment_id, "parent_run_id": parent.info.run_id,
                                          "run_id": child.info.run_id}
        params = child.data.params
        assert params["model.name"] == "test-model" and params["model.provider"] == "openai"
        assert params["params.temperature"] == json.dumps(item["params"]["temperature"])
        assert params["dataset_fingerprint"] == item["dataset_fingerprint"] and params["n"] == "8"
        assert len(params["prompt_hash"]) == 16
        for metric in item["metrics"]:
            name = metric["name"]
            assert child.data.metrics[name] == metric["value"]
            assert (child.data.metrics[f"{name}.ci_low"], child.data.metrics[f"{name}.ci_high"]) == (
                metric["ci_low"], metric["ci_high"])
            assert child.data.tags[f"evalsuite.verdict.{name}"] == metric["verdict"]
        records = item["records"]
        assert len(client.load_table(experiment_id, "examples.json", run_ids=[child.info.run_id])) == len(records)
        stored = json.loads(Path(client.download_artifacts(child.info.run_id, "examples.json", str(tmp_path))).read_text())
        table = {column: [row[i] for row in stored["data"]] for i, column in enumerate(stored["columns"])}
        assert table["example_id"] == [r["example_id"] for r in records]
        assert table["answer"] == [r["answer"] for r in records]
        assert table["input"] == [r["input_excerpt"] for r in records]
        assert table["score.accuracy"] == [r["scores"]["accuracy"] for r in records]

    reports = client.download_artifacts(parent.info.run_id, "reports", str(tmp_path / "downloaded"))
    assert sorted(p.name for p in Path(reports).iterdir()) == ["report.html", "report.json", "report.md"]
    assert (Path(reports) / "report.json").read_bytes() == (project.path / "reports" / "report.json").read_bytes()
    logged = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert CANARY.encode() not in logged and b"[REDACTED:OPENAI_API_KEY]" in logged  # the db and every artifact

    # a replay against the baseline just written, logging through the ini keys: deltas, p-values, the baseline's sha
    project.makeini(f"[pytest]\neval_mlflow = {uri}\neval_mlflow_experiment = {EXPERIMENT}\neval_baseline = baseline.json\n")
    replay = run(project, "cases", "-k", "plain")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    [second] = [r for r in MlflowClient(uri).search_runs([experiment_id]) if "mlflow.parentRunId" not in r.data.tags
                and r.info.run_id != parent.info.run_id]
    baseline = (project.path / "baseline.json").read_bytes()
    assert second.data.tags["evalsuite.baseline_sha256"] == hashlib.sha256(baseline).hexdigest()
    assert second.data.tags["evalsuite.record_mode"] == "none"
    report = report_json(project)
    assert len(report["items"]) == 2
    for item in report["items"]:
        [child] = MlflowClient(uri).search_runs([experiment_id], f"tags.mlflow.parentRunId = '{second.info.run_id}' "
                                                                 f"and tags.`evalsuite.item` = 'reviews::{item['item_id']}'")
        for metric in item["metrics"]:
            assert metric["delta"] == 0 and metric["p_value"] is not None  # the same answers as the baseline's
            for field in ("delta", "p_value", "baseline"):
                assert child.data.metrics[f"{metric['name']}.{field}"] == metric[field]


@pytest.mark.parametrize(("args", "message"), [
    (["--eval-mlflow", "cases"], "--eval-mlflow: 'cases' is not a tracking URI (e.g. sqlite:///mlflow.db, "
                                     "http://host:5000, databricks); to give test paths after the option, write "
                                     "--eval-mlflow=URI or --eval-mlflow=auto"),
    (["--eval-mlflow"], "--eval-mlflow: no tracking URI: give one (--eval-mlflow=sqlite:///mlflow.db, "
                            "--eval-mlflow=databricks, --eval-mlflow=http://host:5000) or set MLFLOW_TRACKING_URI"),
], ids=["a-path-taken-as-the-uri", "no-uri-anywhere"])
def test_an_unusable_tracking_uri_is_a_usage_error_naming_the_fix(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    result = project.runpytest_inprocess(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: {message}" in result.stderr.str()


def test_without_the_option_mlflow_is_never_imported_and_a_store_that_fails_fails_the_session_in_one_line(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    select = ["-k", "plain and t0 and not t0.7"]
    code = ("import sys, pytest\n"
            f"code = pytest.main(['cases', '-q', '-p', 'no:cacheprovider', '--record-mode=once', *{select!r}])\n"
            "print('exit', int(code), 'mlflow imported:', any(m in sys.modules for m in ('mlflow', 'evalsuite.integrations.mlflow')))")
    with ChatServer(sentiment_responder) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test"}
        done = subprocess.run([sys.executable, "-c", code], cwd=project.path, env=env, capture_output=True, text=True,
                              timeout=300)
    assert done.stdout.strip().endswith("exit 0 mlflow imported: False"), done.stdout + done.stderr

    (tmp_path / "store").write_text("a file where the database folder should be")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    result = run(project, "cases", *select, f"--eval-mlflow={uri}")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED
    assert "1 passed" in result.stdout  # the item passed: the session fails for the missing log
    [line] = [line for line in result.stdout.splitlines() if "MLflow" in line]
    assert line.startswith(f"evalsuite: MLflow logging to {uri} failed: ") and "Traceback" not in result.stdout


# -- what is logged, as plain data --------------------------------------------------------------------


def test_metric_keys_and_values_are_what_mlflow_accepts() -> None:
    assert metric_key("rouge1") == "rouge1" and metric_key("bert score@f1") == "bert score_f1"
    item = make_item()
    item.metrics[0].delta, item.metrics[0].p_value, item.cost_usd = -0.25, 0.03, None
    metrics = item_metrics(item)
    assert metrics["accuracy"] == item.metrics[0].value and metrics["accuracy.delta"] == -0.25
    assert metrics["accuracy.p_value"] == 0.03 and all(isinstance(v, float) for v in metrics.values())
    assert "accuracy.mde" not in metrics and "cost_usd" not in metrics  # None values are left out


def test_the_example_table_keeps_structured_values_as_json_text() -> None:
    item: ItemResult = make_item()
    item.records[0].expected = ["positive", "neutral"]
    table = example_table(item)
    assert table["expected"][0] == '["positive", "neutral"]'
    assert {len(column) for column in table.values()} == {len(item.records)}


def test_links_name_no_credentials() -> None:
    assert display_uri("postgresql://evals:s3cret@db.internal:5432/mlflow?sslmode=require") == \
        "postgresql://evals@db.internal:5432/mlflow"
    assert run_url("https://user:pw@mlflow.example:5000/", "7", "abc") == "https://user@mlflow.example:5000/#/experiments/7/runs/abc"
    assert run_url("sqlite:///mlflow.db", "1", "abc") is None
