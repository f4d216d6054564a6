"""What is stored of an interaction: no secret, no volatile header, no throttled attempt."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from evalsuite.cassettes import use_cassette
from evalsuite.cassettes._keys import KeyMaker
from evalsuite.cassettes._redact import Redactor
from tests._support.cassette_calls import (
    META,
    OFFLINE,
    answer_text,
    ask,
    azure_client,
    call,
    interactions,
    openai_client,
)
from tests._support.chat_server import ChatServer


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


def every_char_escaped(value: Any) -> str:
    """JSON as some servers write it: every character of every string as a \\u escape."""
    if isinstance(value, str):
        return '"' + "".join(f"\\u{ord(c):04x}" for c in value) + '"'
    if isinstance(value, dict):
        return "{" + ",".join(f"{every_char_escaped(k)}:{every_char_escaped(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(every_char_escaped, value)) + "]"
    return json.dumps(value)


@pytest.mark.parametrize("dumps", [every_char_escaped, lambda value: json.dumps(value).replace("/", "\\/")],
                         ids=["unicode-escapes", "escaped-slashes"])
def test_a_secret_the_server_writes_escaped_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dumps: Callable[[Any], str]
) -> None:
    secret = 'pw/"q\\-8a7d6c'  # a quote and a backslash: escaped in raw JSON whatever the server does
    monkeypatch.setenv("DB_PASSWORD", secret)
    path = tmp_path / "item.json"
    with ChatServer(lambda body: f"the password is {secret}", dumps=dumps) as server, \
            use_cassette(path, "once", metadata=META):
        ask(openai_client(server.base_url), call("e1", "tell me"))
    assert b"8a7d6c" not in path.read_bytes()
    answer = interactions(path)[0]["response"]["body"]["json"]["choices"][0]["message"]["content"]
    assert answer == "the password is [REDACTED:DB_PASSWORD]"


def test_a_prompt_holding_a_secret_is_stored_redacted_and_still_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dataset row with the value of an environment secret: not in the file, and the row still replays."""
    secret = "tok-in-a-prompt-5e6f7a8b"
    monkeypatch.setenv("MY_API_TOKEN", secret)
    path = tmp_path / "item.json"
    calls = [call("e1", f"my token is {secret}"), call("e2", "nothing secret here")]
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        recorded = [ask(client, c) for c in calls]
        journal = path.with_name(path.name + ".journal.jsonl").read_bytes()
    assert secret.encode() not in journal  # what a killed recording leaves behind is redacted too
    assert secret.encode() not in path.read_bytes()
    first, second = interactions(path)
    assert first["request"]["body_json"]["messages"][0]["content"] == "my token is [REDACTED:MY_API_TOKEN]"
    assert "x-evalsuite-body-digest" not in second["request"]["headers"]  # unredacted bodies keep their key
    assert recorded == [f"my token is {secret}", "nothing secret here"]  # what the server said, live
    stored = ["my token is [REDACTED:MY_API_TOKEN]", "nothing secret here"]  # the echo is redacted too
    with use_cassette(path, "none", metadata=META):  # through the SDK and vcrpy's transport
        client = openai_client(OFFLINE)
        assert [ask(client, c) for c in calls] == stored
    with use_cassette(path, "none", metadata=META) as cassette:  # the engine's direct replay
        assert [answer_text(cassette.play(c, "chat/completions")) for c in calls] == stored
        assert cassette.stale(calls) == []


def test_organization_and_project_ids_echoed_in_a_body_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env-canary-31")  # the SDK sends it as openai-project
    path = tmp_path / "item.json"
    echo = "org org-code-canary-77 project proj-env-canary-31"
    with ChatServer(lambda body: echo) as server, use_cassette(path, "once", metadata=META):
        ask(openai_client(server.base_url, organization="org-code-canary-77"), call("e1", "who am I"))
    data = path.read_bytes()
    assert b"org-code-canary" not in data and b"proj-env-canary" not in data
    stored = interactions(path)[0]
    assert stored["request"]["headers"]["openai-organization"] == ["[REDACTED]"]
    answer = stored["response"]["body"]["json"]["choices"][0]["message"]["content"]
    assert answer == "org [REDACTED:openai-organization] project [REDACTED:OPENAI_PROJECT_ID]"


def test_error_bodies_streams_and_the_user_list_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-canary-0011")
    redactor = Redactor(KeyMaker(), redact=["acct-4242-canary", r"re:cust-\d{6}"])

    def stored_body(status: int, body: str) -> str:
        stored = redactor.response({"status": {"code": status, "message": ""}, "headers": {},
                                    "body": {"string": body.encode()}})
        assert stored is not None
        return str(stored["body"]["string"].decode())

    escaped = "".join(f"\\u{ord(c):04x}" for c in "sk-env-canary-0011")
    error = stored_body(401, f'{{"error": {{"message": "Incorrect API key provided: {escaped}"}}}}')
    assert json.loads(error)["error"]["message"] == "Incorrect API key provided: [REDACTED:OPENAI_API_KEY]"
    chunk = {"choices": [{"delta": {"content": "acct-4242-canary and cust-123456"}}]}
    first, done = stored_body(200, f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n").split("\n\n")[:2]
    content = json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["content"]
    assert (content, done) == ("[REDACTED:eval_redact] and [REDACTED:eval_redact]", "data: [DONE]")
    assert stored_body(200, "plain sk-env-canary-0011 cust-654321") == "plain [REDACTED:OPENAI_API_KEY] [REDACTED:eval_redact]"
