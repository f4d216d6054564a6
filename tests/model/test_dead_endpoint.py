"""A dead or wrong endpoint fails an item in seconds, names the URL, and leaves nothing in the cassette."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.cases.schema import ModelSettings
from evalsuite.cassettes import use_cassette
from evalsuite.model import EngineSettings, _breaker, run_calls_sync
from evalsuite.records import Answer, Call
from tests._support.cassette_calls import META
from tests._support.chat_server import ChatServer, closed_port_url

SMALL = EngineSettings(concurrency=4, max_retries=30, backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def calls(n: int) -> list[Call]:
    return [Call(f"e{i}", 0, "chat", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}]})
            for i in range(n)]


def run(base_url: str, n: int, settings: EngineSettings = SMALL) -> list[Answer]:
    return run_calls_sync(calls(n), ModelSettings(base_url=base_url), settings=settings)


def test_a_refused_port_fails_the_item_at_once_naming_the_url_and_the_fix() -> None:
    url = closed_port_url()
    answers = run(url, 300, EngineSettings())  # the default backoff: ~130 s per example without the breaker
    assert all(a.error_kind == "connection" and url in a.error and "model gpt-4o-mini" in a.error for a in answers)
    not_sent = [a for a in answers if a.error.startswith("not sent")]
    assert len(not_sent) >= 250
    assert "cannot be reached" in not_sent[0].error and "OPENAI_BASE_URL" in not_sent[0].error
    later = run(url, 20)  # a later item on the same endpoint fails fast too
    assert all(a.error.startswith("not sent") and a.retries == 0 for a in later)


@pytest.mark.parametrize(("fault", "fix"), [("404", "model or deployment name"), ("401", "check the key")])
def test_404_and_401_stop_the_item_after_a_handful_of_requests(fault: str, fix: str) -> None:
    with ChatServer(fault=fault) as server:
        answers = run(server.base_url, 100)
        first_item = server.received
        later = run(server.base_url, 100)
    assert first_item <= SMALL.concurrency + _breaker.TRIP_AFTER["auth"]
    assert server.received == first_item  # the later item sent nothing
    assert all(a.retries == 0 for a in answers + later)  # never retried
    sent = [a for a in answers if not a.error.startswith("not sent")]
    not_sent = [a for a in answers + later if a.error.startswith("not sent")]
    assert len(sent) == first_item and len(not_sent) == 200 - first_item
    assert all(a.error_kind == "endpoint" and f"HTTP {fault}: " in a.error for a in sent)
    assert f"POST {server.base_url}/chat/completions, model gpt-4o-mini" in sent[0].error
    # unsent: "connection" (nothing reached the endpoint), so a re-recording keeps what the cassette had
    assert all(a.error_kind == "connection" and server.base_url in a.error and fix in a.error for a in not_sent)


def test_an_html_page_with_200_is_an_api_error_showing_the_page() -> None:
    with ChatServer(fault="html200") as server:
        [answer] = run(server.base_url, 1)
    assert answer.error_kind == "endpoint" and answer.error.startswith("the endpoint answered HTTP 200 with HTML")
    assert "<title>Sign in</title>" in answer.error and server.base_url in answer.error


def test_a_run_of_server_errors_opens_the_breaker_but_rate_limits_never_do() -> None:
    with ChatServer(fault="html502") as server:
        answers = run(server.base_url, 50)
    assert server.received <= _breaker.TRIP_AFTER["server"] + SMALL.concurrency
    assert all(not a.ok for a in answers) and "keeps failing with server errors" in answers[-1].error
    assert len(answers[-1].error) < 600  # the HTML error page is not pasted in whole
    with ChatServer(rate_limit_first=40, retry_after_s=0.01) as server:
        assert all(a.ok for a in run(server.base_url, 5))


def test_after_a_pause_one_probe_lets_a_fixed_endpoint_answer_again(monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer(fault="404") as server:
        run(server.base_url, 20)
        server.fault = None  # the deployment was created
        assert not any(a.ok for a in run(server.base_url, 5))  # still within the pause
        monkeypatch.setattr(_breaker, "PROBE_AFTER_S", 0.0)
        assert all(a.ok for a in run(server.base_url, 5))


@pytest.mark.parametrize("fault", ["404", "401", "html200"])
def test_only_completions_are_recorded(tmp_path: Path, fault: str) -> None:
    path = tmp_path / "item.json"
    with ChatServer(fault=fault) as server, use_cassette(path, "new_episodes", metadata=META):
        answers = run(server.base_url, 2)
    assert not any(a.ok for a in answers)
    assert not path.exists()  # nothing was recorded, so nothing was written
