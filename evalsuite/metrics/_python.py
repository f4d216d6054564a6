"""``python: "local_metrics.py:score"``: a one-off metric (a function or a Metric class) beside the case file.

The file is found and imported by the one ``python:`` loader that parsers use too (``_util/python_ref``).
"""

from __future__ import annotations

from pathlib import Path

from evalsuite._util.python_ref import load_function
from evalsuite.errors import MetricParamError


def load_python(name: str, target: str, base_dir: Path | None) -> object:
    """The object ``target`` ("<file>.py:<attribute>") names, the file resolved against ``base_dir``."""
    folder = base_dir or Path.cwd()
    try:
        return load_function(target, folder, rootdir=folder)  # paths shown as the case file writes them
    except ValueError as exc:
        raise MetricParamError(f"{name}: python: {exc}") from None
