"""Case files written into a temporary project, loaded with ``load_suite``, and their one-line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from evalsuite.cases import CaseFileError, CaseRun, load_suite

CASE = """\
suite: reviews
cases:
  - id: sentiment
    model: {name: m, temperature: 0}
    dataset: {examples: [{text: good, expected: positive}]}
    prompt: {system: Classify., user: "Review: {{ text }}"}
    metrics: [accuracy]
"""


def write(root: Path, text: str, name: str = "cases/x.yaml") -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(root: Path, text: str) -> list[CaseRun]:
    return load_suite(write(root, text), root)


def error(root: Path, text: str) -> str:
    """The load error of ``text`` as the user sees it: one line, no traceback."""
    with pytest.raises(CaseFileError) as info:
        load(root, text)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def with_parse(parse: str) -> str:
    """``CASE`` with a ``parse:`` line (line 7) before its metrics."""
    return CASE.replace("    metrics:", f"    parse: {parse}\n    metrics:")
