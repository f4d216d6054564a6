"""Integrations with other tools, each a pytest plugin object on evalsuite's hooks, registered only when asked for.

``mlflow``: ``--eval-mlflow [TRACKING_URI]`` logs the session as an MLflow run with a nested run per item. Each
module here imports only the standard library and pytest at import time; the tool itself (``mlflow``) is imported
when the plugin logs, so a run that does not ask for it pays nothing.
"""

from __future__ import annotations

__all__: list[str] = []
