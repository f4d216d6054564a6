"""The Databricks notebook as a Job gate, run off Databricks: its cells' code with ``dbutils`` stubbed.

Each run is a fresh process (``tests/_support/notebook.py``) started from an unrelated working directory, on a
temporary copy of the project, replaying the committed cassettes. The report folder is a "Volume": a folder that
refuses appends and renames (``tests/_support/volume.py``), named in ``EVALSUITE_WHOLE_FILE_WRITES``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = Path("examples/databricks/evalsuite_notebook.py")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """What a Git folder holds: the case files, the cassettes, the ini, the baseline, the notebook."""
    root = tmp_path / "Users" / "someone@example.com" / "evalsuite"
    for name in ("cases", "cassettes/sentiment", "examples/databricks"):
        shutil.copytree(REPO / name, root / name)
    for name in ("pytest.ini", "baseline.json"):
        shutil.copy(REPO / name, root / name)
    return root


def run_notebook(checkout: Path, tmp_path: Path, **params: str) -> dict[str, Any]:
    volume = tmp_path / "Volumes"
    experiment = "/Shared/evalsuite-gate"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow = pytest.importorskip("mlflow")
    if not (tmp_path / "mlflow.db").exists():  # the experiment with its artifacts in the temp dir (not ./mlruns)
        mlflow.MlflowClient(uri).create_experiment(experiment, artifact_location=(tmp_path / "artifacts").as_uri())
    params = {"select": "terse", "report_dir": str(volume / "main" / "evals" / "reports"),
              "mlflow_tracking_uri": uri, "mlflow_experiment": experiment, **params}
    elsewhere = tmp_path / "elsewhere"  # the working directory has nothing to do with the checkout
    elsewhere.mkdir(exist_ok=True)
    out = tmp_path / "outcome.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "MLFLOW_"))}
    env.update(PYTHONPATH=str(REPO), EVALSUITE_WHOLE_FILE_WRITES=str(volume))
    done = subprocess.run(
        [sys.executable, "-m", "tests._support.notebook", str(checkout / NOTEBOOK),
         str(checkout / NOTEBOOK.with_suffix("")), json.dumps(params), str(out), str(volume)],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and out.exists(), done.stdout + done.stderr
    outcome: dict[str, Any] = json.loads(out.read_text())
    outcome["stdout"] = done.stdout
    return outcome


def test_a_passing_suite_passes_the_job_reading_no_secret_and_linking_its_mlflow_run(checkout: Path, tmp_path: Path) -> None:
    outcome = run_notebook(checkout, tmp_path)
    assert outcome["raised"] is None, outcome["raised"] and outcome["raised"]["traceback"]
    assert outcome["exit_code"] == 0 and "evalsuite: the suite passed" in outcome["stdout"]
    assert outcome["secrets_read"] == [] and not outcome["restarted"]  # replay: no secret; evalsuite was installed
    report_dir = Path(outcome["report_dir"])
    assert report_dir.parent == tmp_path / "Volumes" / "main" / "evals" / "reports"
    assert sorted(p.name for p in report_dir.iterdir()) == ["report.html", "report.json", "report.md"]
    assert outcome["volume"]["appends"] == [] and outcome["volume"]["renames"] == []  # written whole, once each
    assert sorted(Path(p).name for p in outcome["volume"]["written"]) == ["report.html", "report.json", "report.md"]
    [item] = json.loads((report_dir / "report.json").read_text())["items"]
    assert item["item_id"] == "sentiment[terse]" and item["outcome"] == "passed"
    [shown] = outcome["displayed"]
    assert shown.startswith(f"<p>MLflow run {item['meta']['mlflow']['parent_run_id']} in experiment ")
    assert shown.endswith((report_dir / "report.html").read_text())


def test_a_failing_suite_raises_so_the_job_fails(checkout: Path, tmp_path: Path) -> None:
    case = checkout / "cases" / "sentiment.yaml"
    case.write_text(case.read_text().replace("accuracy: {min: 0.79}", "accuracy: {min: 0.99}"))  # recorded: 0.958
    outcome = run_notebook(checkout, tmp_path)
    raised = outcome["raised"]
    assert raised is not None and raised["type"] == "RuntimeError"
    assert raised["message"] == (f"evalsuite: the suite failed (pytest exit code 1); "
                                 f"report: {outcome['report_dir']}/report.html")
    assert outcome["exit_code"] == 1 and len(outcome["displayed"]) == 1  # the report is shown before the gate raises
    assert outcome["secrets_read"] == []


def test_recording_reads_the_secrets_first(checkout: Path, tmp_path: Path) -> None:
    """Recording against a dead endpoint: the secrets are read, the calls fail, the gate raises (nothing spent here)."""
    outcome = run_notebook(checkout, tmp_path, record_mode="new_episodes", azure_deployment="gpt-4o", select="terse",
                           mlflow_tracking_uri="")
    assert outcome["secrets_read"] == [["evalsuite", "azure-openai-api-key"], ["evalsuite", "azure-openai-endpoint"]]
    assert outcome["raised"] is not None and "pytest exit code 1" in outcome["raised"]["message"]
    report = (Path(outcome["report_dir"]) / "report.json").read_text()
    assert "sentiment[terse]" in report and "secret-azure-openai-api-key" not in report


def test_the_notebook_finds_its_checkout_under_workspace_from_the_path_databricks_gives() -> None:
    from tests._support.notebook import Dbutils, cells

    source = next(cell for cell in cells(REPO / NOTEBOOK) if "def checkout_root" in cell)
    namespace: dict[str, Any] = {"dbutils": Dbutils("/Users/me@example.com/evalsuite/examples/databricks/evalsuite_notebook", {})}
    exec(compile(source.split("ROOT = checkout_root()")[0], "cell", "exec"), namespace)  # noqa: S102 - the notebook's code
    assert namespace["checkout_root"]() == Path("/Workspace/Users/me@example.com/evalsuite")


def test_the_bundle_job_runs_this_notebook_with_parameters_it_reads() -> None:
    import yaml

    from tests._support.notebook import Dbutils, cells

    job_file = REPO / "examples" / "databricks" / "resources" / "evalsuite_gate.job.yml"
    [job] = yaml.safe_load(job_file.read_text())["resources"]["jobs"].values()
    [task] = job["tasks"]
    assert (job_file.parent / task["notebook_task"]["notebook_path"]).resolve() == REPO / NOTEBOOK
    source = next(cell for cell in cells(REPO / NOTEBOOK) if "WIDGETS = {" in cell)
    namespace: dict[str, Any] = {"dbutils": Dbutils("/x/examples/databricks/evalsuite_notebook", {})}
    exec(compile(source.split("def checkout_root")[0], "cell", "exec"), namespace)  # noqa: S102 - the notebook's code
    assert {p["name"] for p in job["parameters"]} <= set(namespace["WIDGETS"])  # each reaches a widget
    assert job["schedule"]["quartz_cron_expression"]


def test_a_volume_file_is_a_dataset_like_any_local_path(tmp_path: Path) -> None:
    """`dataset.path: /Volumes/<catalog>/<schema>/<volume>/...`: an absolute path, read through the FUSE mount."""
    from evalsuite.cases.schema import DatasetSpec
    from evalsuite.dataset import load_examples, preview

    volume_file = tmp_path / "Volumes" / "main" / "evals" / "raw" / "reviews.jsonl"
    volume_file.parent.mkdir(parents=True)
    volume_file.write_text("".join(json.dumps({"id": f"r{i}", "text": f"review {i}", "label": i % 2}) + "\n"
                                   for i in range(5)))
    spec = DatasetSpec(path=str(volume_file), id="id", expected="label", label_names=["negative", "positive"])
    case_folder = tmp_path / "checkout" / "cases"  # the case file's folder plays no part for an absolute path
    examples = load_examples(spec, case_folder)
    assert [(e.id, e.expected) for e in examples] == [(f"r{i}", ["negative", "positive"][i % 2]) for i in range(5)]
    assert [e.id for e in preview(spec, case_folder) or []] == ["r0", "r1", "r2"]  # what collection checks
