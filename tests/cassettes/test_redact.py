"""What is stored of an interaction: no secret, no volatile header, no throttled attempt."""

from __future__ import annotations

import os
from pathlib import Path

import openai
import pytest

from evalsuite.cassettes import use_cassette
from tests._support.chat_server import ChatServer
from tests._support.cassette_calls import META, OFFLINE, ask, azure_client, call, interactions, openai_client


def test_secrets_are_found_nowhere_in_the_cassette_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "sk-canary-7f3a9c2e51"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-canary-88d1e0")
    with ChatServer() as server:
        with use_cassette(tmp_path / "openai.json", "once", metadata=META):
            client = openai.OpenAI(
                base_url=server.base_url, api_key=os.environ["OPENAI_API_KEY"], max_retries=0,
                organization="org-canary-4411", project="proj-canary-9932", default_query={"key": "query-canary-1234"},
                default_headers={"x-trace": "Bearer tok-canary-88d1e0", "Cookie": "session=cookie-canary-55"},
            )
            ask(client, call("e1", "hi"))
        with use_cassette(tmp_path / "azure.json", "once", metadata=META):
            azure = azure_client(server.azure_endpoint, "dep1", api_key="azure-canary-6622",
                                 default_query={"api_key": "query-canary-1234"})
            ask(azure, call("e1", "hi"))
    for path in (tmp_path / "openai.json", tmp_path / "azure.json"):
        data = path.read_bytes()
        for secret in (canary, "tok-canary", "org-canary", "proj-canary", "query-canary", "azure-canary",
                       "cookie-canary", "secret-cookie"):
            assert secret.encode() not in data, f"{secret} leaked into {path.name}"
        assert interactions(path)[0]["request"]["headers"]["x-evalsuite-example"] == ["e1#0"]
    request = interactions(tmp_path / "openai.json")[0]["request"]
    assert request["headers"]["authorization"] == ["[REDACTED]"]
    assert request["headers"]["x-trace"] == ["Bearer [REDACTED:MY_SERVICE_TOKEN]"]  # names the variable to set
    assert "key=%5BREDACTED%5D" in request["uri"]
    with use_cassette(tmp_path / "openai.json", "none", metadata=META):  # redaction keeps matching
        assert ask(openai_client(OFFLINE), call("e1", "hi")) == "hi"


def test_a_secret_echoed_in_an_answer_is_replaced_in_every_written_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = 'pw-"quoted"-8a7d6c'
    monkeypatch.setenv("DB_PASSWORD", secret)
    path = tmp_path / "item.json"
    with ChatServer(lambda body: f"the password is {secret}") as server, use_cassette(path, "once", metadata=META):
        ask(openai_client(server.base_url), call("e1", "tell me"))
    assert b"8a7d6c" not in path.read_bytes()  # the response body holds it JSON-escaped: \"quoted\"
    answer = interactions(path)[0]["response"]["body"]["json"]["choices"][0]["message"]["content"]
    assert answer == "the password is [REDACTED:DB_PASSWORD]"


def test_volatile_headers_are_not_stored(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        ask(openai_client(server.base_url), call("e1", "hi"))
    stored = interactions(path)[0]
    request_headers = {name.lower() for name in stored["request"]["headers"]}
    assert not {"user-agent", "x-evalsuite-sent-at", "host", "content-length", "accept-encoding"} & request_headers
    assert not any(name.startswith("x-stainless-") for name in request_headers)
    assert not {"date", "content-length"} & {name.lower() for name in stored["response"]["headers"]}


def test_rate_limited_attempts_retried_by_the_caller_are_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "throttled.json"
    calls = [call(f"e{i}", f"text {i}") for i in range(8)]
    with ChatServer(rate_limit_fraction=0.5, retry_after_s=0, seed=3) as server:
        with use_cassette(path, "once", metadata=META):
            client = openai_client(server.base_url)
            for c in calls:
                while True:
                    try:
                        ask(client, c)
                        break
                    except openai.RateLimitError:
                        continue
        assert server.statuses[429] > 0
    stored = interactions(path)
    assert len(stored) == len(calls)
    assert {i["response"]["status"]["code"] for i in stored} == {200}  # so replay never waits on a Retry-After
    with use_cassette(path, "none", metadata=META):
        client = openai_client(OFFLINE)
        assert [ask(client, c) for c in calls] == [f"text {i}" for i in range(8)]
