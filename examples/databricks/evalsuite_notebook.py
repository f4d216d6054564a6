# Databricks notebook source
# MAGIC %md
# MAGIC # evalsuite gate
# MAGIC
# MAGIC Runs the case files of the checkout this notebook lives in (a Git folder, or the files a bundle deployed) and
# MAGIC **raises when the suite fails**, so the Databricks Job running it fails on a regression.
# MAGIC
# MAGIC * Paths come from this notebook's own location (`examples/databricks/` of the checkout), never from the working
# MAGIC   directory.
# MAGIC * `record_mode = none` (the default) replays the committed cassettes: no model call, no secret read, nothing spent.
# MAGIC   Any other mode records, and only then are the credentials read from the secret scope (`secret_scope`):
# MAGIC   `databricks secrets put-secret evalsuite azure-openai-api-key` and `azure-openai-endpoint` for Azure OpenAI.
# MAGIC   A case with `model.provider: databricks` needs no secret: on a cluster it calls the workspace's serving
# MAGIC   endpoints as the notebook's (or the job's) own identity.
# MAGIC * Reports go to a Unity Catalog Volume (`report_dir`), one folder per run; evalsuite writes files there whole
# MAGIC   (Volumes refuse appends and renames).
# MAGIC * The session is logged to MLflow (`mlflow_experiment`), and the run is linked below the report.
# MAGIC
# MAGIC The parameters are widgets: set them at the top of the notebook, or as the job's parameters.

# COMMAND ----------

# Install evalsuite from this checkout, unless the job already did (the bundle in this folder installs its wheel).
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("evalsuite") is None:
    _notebook = dbutils.notebook.entry_point.getDbutils().notebook().getContext().notebookPath().get()  # noqa: F821
    _notebook = _notebook if os.path.exists(os.path.dirname(_notebook)) else "/Workspace" + _notebook
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet",
                           os.path.dirname(os.path.dirname(os.path.dirname(_notebook))) + "[mlflow,azure]"])
    dbutils.library.restartPython()  # noqa: F821  (the next cells start in a fresh interpreter)

# COMMAND ----------

import json
import os
import time
from pathlib import Path

WIDGETS = {  # name -> default; a job's parameters override them
    "record_mode": "none",  # none replays; rewrite / new_episodes call the model (and read the secrets)
    "select": "",  # a pytest -k expression, e.g. "sentiment and not sweep"; empty: every case
    "report_dir": "/Volumes/main/evals/reports",  # a Unity Catalog Volume folder; each run writes a subfolder
    "mlflow_tracking_uri": "databricks",  # empty: no MLflow logging
    "mlflow_experiment": "/Shared/evalsuite",
    "secret_scope": "evalsuite",  # read only when recording
    "azure_deployment": "",  # e.g. "gpt-4o": run every case against this Azure deployment (chat endpoint)
}
for name, default in WIDGETS.items():
    dbutils.widgets.text(name, default)  # noqa: F821
params = {name: dbutils.widgets.get(name).strip() for name in WIDGETS}  # noqa: F821


def checkout_root() -> Path:
    """The checkout this notebook belongs to: its path as the driver sees it (under /Workspace), up two folders."""
    context = dbutils.notebook.entry_point.getDbutils().notebook().getContext()  # noqa: F821
    notebook = context.notebookPath().get()  # "/Users/me/evalsuite/examples/databricks/evalsuite_notebook"
    folder = Path(notebook).parent
    if not folder.exists():  # the workspace path; the driver mounts the workspace under /Workspace
        folder = Path("/Workspace" + notebook).parent
    return folder.parent.parent


ROOT = checkout_root()
REPORT_DIR = f"{params['report_dir'].rstrip('/')}/{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
print(f"checkout: {ROOT}\nreports:  {REPORT_DIR}")

# COMMAND ----------

if params["record_mode"] != "none":  # recording calls the model: only now are credentials needed
    # Cassettes are written into the checkout under /Workspace: whole files there too, journals on local disk (the
    # workspace file system's support for appends and renames is not documented; /Volumes is covered by default).
    os.environ.setdefault("EVALSUITE_WHOLE_FILE_WRITES", "/Workspace")
    scope = params["secret_scope"]
    os.environ["AZURE_OPENAI_API_KEY"] = dbutils.secrets.get(scope, "azure-openai-api-key")  # noqa: F821
    os.environ["AZURE_OPENAI_ENDPOINT"] = dbutils.secrets.get(scope, "azure-openai-endpoint")  # noqa: F821
    os.environ.setdefault("OPENAI_API_VERSION", "2024-10-21")

# COMMAND ----------

import pytest

args = [
    str(ROOT / "cases"),
    f"--rootdir={ROOT}",
    f"--record-mode={params['record_mode']}",
    "--eval-report", REPORT_DIR,
    "-p", "no:cacheprovider",  # nothing but reports and cassettes is written into the checkout
]
if params["select"]:
    args += ["-k", params["select"]]
if params["mlflow_tracking_uri"]:
    args += [f"--eval-mlflow={params['mlflow_tracking_uri']}", f"--eval-mlflow-experiment={params['mlflow_experiment']}"]
if params["azure_deployment"]:
    args += ["--eval-model", f"azure_openai:{params['azure_deployment']}", "--eval-api", "chat"]
exit_code = int(pytest.main(args))

# COMMAND ----------

report_json = Path(REPORT_DIR, "report.json")
if report_json.exists():
    items = json.loads(report_json.read_text())["items"]
    logged = next((item["meta"]["mlflow"] for item in items if "mlflow" in item.get("meta", {})), None)
    link = ""
    if logged:  # the session's MLflow run (each item's nested run is under it)
        text = f"MLflow run {logged['parent_run_id']} in experiment {logged['experiment_id']}"
        link = f'<p><a href="{logged["url"]}" target="_blank">{text}</a></p>' if logged.get("url") else f"<p>{text}</p>"
    displayHTML(link + Path(REPORT_DIR, "report.html").read_text())  # noqa: F821
else:
    print(f"no report: pytest stopped before running the suite (exit code {exit_code}); its output above says why")

# COMMAND ----------

# The gate: a failed suite fails this notebook, and so the job's run (a job task fails on an uncaught exception).
if exit_code != 0:
    raise RuntimeError(f"evalsuite: the suite failed (pytest exit code {exit_code}); report: {REPORT_DIR}/report.html")
print(f"evalsuite: the suite passed; report: {REPORT_DIR}/report.html")
