# Databricks notebook source
# MAGIC %md
# MAGIC # evalsuite on Databricks
# MAGIC
# MAGIC Runs the recorded sentiment cases of this Repo checkout and shows the HTML report.
# MAGIC
# MAGIC * `--record-mode=none` replays the cassettes committed under `cassettes/`: no model call is made and
# MAGIC   nothing is spent. To re-record against Azure OpenAI, set `RECORD_MODE` to `rewrite` below.
# MAGIC * Credentials come from a Databricks secret scope, never from the notebook or the case files:
# MAGIC   `databricks secrets put-secret evalsuite azure-openai-api-key` (and `azure-openai-endpoint`).
# MAGIC * Re-recording sends every case to your Azure deployment through the chat endpoint
# MAGIC   (`--eval-model azure_openai:<deployment> --eval-api chat`); replay of those cassettes needs the same flags.
# MAGIC
# MAGIC `%pip install ../..` installs the package from this Repo checkout: in a Repo, a notebook runs in its own
# MAGIC directory (`examples/databricks/`), so `../..` is the checkout root.

# COMMAND ----------

# MAGIC %pip install ../..

# COMMAND ----------

dbutils.library.restartPython()  # noqa: F821  (dbutils exists in a Databricks notebook)

# COMMAND ----------

import os

SECRET_SCOPE = "evalsuite"
RECORD_MODE = "none"  # "rewrite" records again (calls the model, costs money)
AZURE_DEPLOYMENT = ""  # e.g. "gpt-4": run every case against this deployment (chat endpoint)
REPORT_DIR = "/dbfs/tmp/evalsuite-report"

# Secrets -> the environment variables the openai SDK reads (AsyncAzureOpenAI).
os.environ["AZURE_OPENAI_API_KEY"] = dbutils.secrets.get(SECRET_SCOPE, "azure-openai-api-key")  # noqa: F821
os.environ["AZURE_OPENAI_ENDPOINT"] = dbutils.secrets.get(SECRET_SCOPE, "azure-openai-endpoint")  # noqa: F821
os.environ["OPENAI_API_VERSION"] = "2024-10-21"

# COMMAND ----------

import pytest

repo_root = os.path.abspath("../..")  # the notebook runs in examples/databricks/ of the checkout
os.chdir(repo_root)

exit_code = pytest.main(
    [
        "cases",
        "-k", "sentiment",
        f"--record-mode={RECORD_MODE}",
        "--eval-report", REPORT_DIR,
        "-p", "no:cacheprovider",  # the Workspace file system is read-only for .pytest_cache
    ]
    + (["--eval-model", f"azure_openai:{AZURE_DEPLOYMENT}", "--eval-api", "chat"] if AZURE_DEPLOYMENT else [])
)  # fmt: skip
print(f"pytest exit code: {int(exit_code)} (0 = all cases passed, 1 = a threshold or regression failed)")

# COMMAND ----------

displayHTML(open(os.path.join(REPORT_DIR, "report.html")).read())  # noqa: F821
