"""Integrations with other tools, each a pytest plugin object on evalsuite's hooks, registered only when asked for.

``mlflow``: ``--eval-mlflow [TRACKING_URI]`` (ini ``eval_mlflow``) logs the session as an MLflow run with a nested
run per item. :func:`register` is the one call ``evalsuite.plugin`` makes: it reads the options and imports an
integration's module only when the run asks for it, and that module imports the tool (``mlflow``) only when it
logs, so a run that does not ask pays nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

__all__ = ["register"]


def register(config: pytest.Config) -> None:
    """Register the integrations this run asks for (a bad value is a ``pytest.UsageError`` naming the fix)."""
    if config.getoption("eval_mlflow", None) or config.getini("eval_mlflow"):
        from evalsuite.integrations import mlflow

        mlflow.register(config)
