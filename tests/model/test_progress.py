"""The live progress line: drawn on a terminal, silent in CI and when redirected, counting either way."""

from __future__ import annotations

import io

import pytest

from evalsuite.model._progress import Progress
from evalsuite.records import Answer


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_tty_and_silent_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    tty = FakeTTY()
    with Progress("sentiment", 2, model="gpt-4o", stream=tty) as progress:
        progress.add(Answer("a", 0, text="x", prompt_tokens=1000, completion_tokens=100, retries=2))
        progress.add(Answer("b", 0, error="boom", error_kind="api"))
    out = tty.getvalue()
    assert "sentiment  2/2" in out and "2 retries" in out and "1 errors" in out and "1,100 tokens" in out
    assert "~$0.0035" in out and out.endswith("\n")
    monkeypatch.setenv("CI", "true")
    quiet = FakeTTY()
    with Progress("sentiment", 1, stream=quiet) as progress:
        progress.add(Answer("a", 0, text="x"))
    assert quiet.getvalue() == "" and progress.done == 1
    assert Progress("x", 1, stream=io.StringIO()).enabled is False  # not a terminal
