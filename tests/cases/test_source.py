"""Reading case files with the line of every key: YAML syntax errors and duplicate keys at their line."""

from __future__ import annotations

from pathlib import Path

from tests._support.case_files import CASE, error


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    message = error(tmp_path, CASE.replace("metrics: [accuracy]", "metrics: [accuracy"))
    assert message.startswith("cases/x.yaml:8: invalid YAML: while parsing a flow sequence")
    assert "check the indentation" in message


def test_duplicate_keys_are_an_error_not_a_silent_last_wins(tmp_path: Path) -> None:
    assert error(tmp_path, CASE.replace("    metrics:", "    prompt: {user: x}\n    metrics:")) == (
        "cases/x.yaml:7: cases[0].prompt: duplicate key; keep only one"
    )
