"""The live progress line: redrawn on a terminal, plain lines elsewhere, through pytest's terminal in a run."""

from __future__ import annotations

import io

import pytest

from evalsuite.model._progress import Progress, StreamSink, TerminalSink, terminal_sink
from evalsuite.records import Answer
from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, make_project, run

ONE_ITEM = ("-k", "plain and t0 and not t0.7")
PROGRESS_LINE = "sentiment[plain-t0]  8/8"  # label and done/total of the final line


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Unthrottled(Progress):
    """Shows on every answer the rules allow, so a test needs no clock."""

    MIN_REDRAW_S = 0.0
    MIN_LINE_S = 0.0


def test_on_a_terminal_the_line_is_redrawn_with_eta_retries_tokens_and_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the terminal's width: room for every part
    tty = FakeTTY()
    with Unthrottled("sentiment", 3, model="gpt-4o", sink=StreamSink(tty)) as progress:
        progress.add(Answer("a", 0, text="x", prompt_tokens=1000, completion_tokens=100, retries=2))
        progress.add(Answer("b", 0, error="boom", error_kind="api"))
        progress.add(Answer("c", 0, text="y"))
    out = tty.getvalue()
    *drawn, final = out.rstrip("\n").split("\r")[1:]
    assert drawn[0].startswith("sentiment  1/3") and "ETA " in drawn[0] and "2 retries" in drawn[0]
    assert final.startswith("sentiment  3/3") and " in " in final and "ETA" not in final
    assert "1 errors" in final and "1,100 tokens" in final and "~$0.0035" in final
    assert out.endswith("\n") and "\n" not in out[:-1]  # one line, redrawn in place


def test_a_redrawn_line_never_wraps_it_leaves_off_the_least_telling_parts() -> None:
    progress = Progress("sentiment[a-long-variant-name]", 200, model="gpt-4o")
    progress.concurrency = 16
    for _ in range(150):
        progress.add(Answer("a", 0, text="x", prompt_tokens=10_000, completion_tokens=10, retries=1))
    full = progress.line()
    short = progress.line(width=79)
    assert len(full) > 79 and len(short) <= 79
    assert "concurrency" in full and "concurrency" not in short
    assert short.startswith("sentiment[a-long-variant-name]  150/200") and "ETA" in short and "~$" in short


def test_elsewhere_a_plain_line_per_tenth_and_a_final_one() -> None:
    log = io.StringIO()  # CI logs, notebooks, pipes: not a terminal
    with Unthrottled("sentiment", 100, sink=StreamSink(log)) as progress:
        for i in range(100):
            progress.add(Answer(f"e{i}", 0, text="x"))
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [line.split()[1] for line in lines] == [f"{n}/100" for n in range(10, 100, 10)] + ["100/100"]
    assert " in " in lines[-1]


def test_without_a_sink_it_only_counts() -> None:
    with Progress("sentiment", 1) as progress:
        progress.add(Answer("a", 0, text="x", prompt_tokens=3))
    assert progress.done == 1 and progress.prompt_tokens == 3 and progress.sink is None


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_project(pytester)


def test_a_captured_pytest_run_shows_the_progress_line_and_replay_shows_none(project: pytest.Pytester) -> None:
    with ChatServer(sentiment_responder) as server:
        live = run(project, "cases", *ONE_ITEM, "--record-mode=once",
                   env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert live.returncode == 0, live.stdout + live.stderr
    lines = [line for line in live.stdout.splitlines() if line.startswith(PROGRESS_LINE)]
    assert len(lines) == 1 and "calls/s" in lines[0] and "tokens" in lines[0], live.stdout
    assert "cases/reviews.yaml ." in live.stdout  # pytest's own line carries on below it
    replay = run(project, "cases", *ONE_ITEM)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "calls/s" not in replay.stdout + replay.stderr


def test_xdist_workers_stay_silent(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfigure("-p", "no:benchmark")
    assert isinstance(terminal_sink(config), TerminalSink)
    config.workerinput = {"workerid": "gw0"}  # type: ignore[attr-defined]  # what xdist sets on a worker's config
    assert terminal_sink(config) is None  # the worker's terminal is not the user's
