"""The match key: what makes a recording answer a request, whichever way the request arrives."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from evalsuite.cassettes import is_not_recorded, use_cassette
from evalsuite.records import Call
from tests._support.chat_server import ChatServer
from tests._support.cassette_calls import (
    META,
    OFFLINE,
    answer_text,
    ask,
    azure_client,
    call,
    headers,
    interactions,
    openai_client,
)


def test_ignored_fields_and_number_formats_still_match(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        ask(openai_client(server.base_url), call("e1", "hello", max_tokens=5))
    with use_cassette(path, "none", metadata=META):
        client = openai_client(OFFLINE)
        c = call("e1", "hello", max_tokens=5, temperature=0.0, user="someone", metadata={"run": "ci"}, n=1, store=False)
        assert ask(client, c) == "hello"


def test_azure_cassette_replays_against_another_host_and_api_version(tmp_path: Path) -> None:
    path = tmp_path / "azure.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        assert ask(azure_client(server.azure_endpoint, "gpt4o-eu"), call("e1", "bonjour")) == "bonjour"
    elsewhere = {"endpoint": "https://other-resource.openai.azure.com", "api_key": "different", "api_version": "2025-01-01"}
    with use_cassette(path, "none", metadata=META):
        assert ask(azure_client(deployment="gpt4o-eu", **elsewhere), call("e1", "bonjour")) == "bonjour"
        with pytest.raises(Exception) as caught:  # the deployment picks the model: it is part of the key
            ask(azure_client(deployment="gpt35", **elsewhere), call("e1", "bonjour"))
        assert is_not_recorded(caught.value)


@pytest.mark.parametrize("endpoint", ["chat/completions", "/v1/chat/completions", "/proxy/openai/v1/chat/completions"])
def test_direct_replay_finds_what_the_sdk_recorded_for_any_spelling_of_the_openai_path(
    tmp_path: Path, endpoint: str
) -> None:
    path = tmp_path / "item.json"
    recorded = [call("e1", "one"), call("e2", "two", seed=3)]
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        for c in recorded:
            ask(openai_client(server.base_url), c)
    with use_cassette(path, "none", metadata=META) as handle:
        assert [answer_text(handle.play(c, endpoint)) for c in recorded] == ["one", "two"]
        assert handle.play(recorded[0], endpoint) is None  # each recording plays once
        assert handle.play(call("e1", "one"), "completions") is None  # another endpoint is another request


@pytest.mark.parametrize(
    "endpoint", ["deployments/dep1/chat/completions", "/openai/deployments/dep1/chat/completions"]
)
def test_direct_replay_finds_what_the_sdk_recorded_on_an_azure_deployment(tmp_path: Path, endpoint: str) -> None:
    path = tmp_path / "azure.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        ask(azure_client(server.azure_endpoint, "dep1"), call("e1", "hallo"))
    with use_cassette(path, "none", metadata=META) as handle:
        assert handle.play(call("e1", "hallo"), "deployments/other/chat/completions") is None
        assert answer_text(handle.play(call("e1", "hallo"), endpoint)) == "hallo"


def test_direct_replay_and_the_transport_share_one_index(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    samples = [call("e1", "same", sample=s) for s in range(2)]
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        for c in samples:
            ask(openai_client(server.base_url), c)
    with use_cassette(path, "none", metadata=META) as handle:
        assert answer_text(handle.play(samples[1], "chat/completions")) == "same"
        assert ask(openai_client(OFFLINE), samples[0]) == "same"  # the one recording left
        with pytest.raises(Exception) as caught:
            ask(openai_client(OFFLINE), samples[1])
        assert is_not_recorded(caught.value)
        assert handle.n_played == 2


def respond(client: openai.OpenAI, c: Call) -> str:
    return client.responses.create(**c.body, extra_headers=headers(c)).output_text


def responses_call(example: str, text: str, **params: object) -> Call:
    body = {"model": "dep1", "input": [{"role": "user", "content": text}], "store": False, **params}
    return Call(example, 0, "responses", body)


@pytest.mark.parametrize(("azure", "endpoints"), [
    (False, ["responses", "/v1/responses", "/gateway/v1/responses"]),
    (True, ["openai/responses", "/openai/responses"]),
])
def test_direct_replay_finds_what_the_sdk_recorded_on_the_responses_api(
    tmp_path: Path, azure: bool, endpoints: list[str]
) -> None:
    """Azure's Responses API is /openai/responses (the deployment is the body's model), not a deployment path."""
    path = tmp_path / "responses.json"
    c = responses_call("e1", "hallo")
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        client = azure_client(server.azure_endpoint, "dep1", api_version="2025-04-01-preview") if azure \
            else openai_client(server.base_url)
        assert respond(client, c) == "hallo"
    [recorded] = interactions(path)
    assert recorded["request"]["uri"].split("?")[0].endswith("/openai/responses" if azure else "/v1/responses")
    for endpoint in endpoints:
        with use_cassette(path, "none", metadata=META) as handle:
            assert handle.play(c, "chat/completions") is None  # another API is another request
            assert handle.play(c, "deployments/dep1/responses" if azure else "openai/responses") is None
            assert json.loads(handle.play(c, endpoint)["body"]["string"])["output"][0]["content"][0]["text"] == "hallo"


def test_the_tools_and_the_output_schema_are_part_of_the_key_stored_state_is_not(tmp_path: Path) -> None:
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    answer = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": True}}
    recorded = [call("e1", "Paris", tools=[weather], tool_choice="required"), call("e2", "x", response_format=answer),
                responses_call("e3", "y", previous_response_id="resp_1")]
    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META) as handle:
        for c in recorded:
            (respond if c.api == "responses" else ask_any)(openai_client(server.base_url), c)
    renamed = {**weather, "function": {**weather["function"], "name": "weather"}}
    loose = {**answer, "json_schema": {**answer["json_schema"], "strict": False}}
    with use_cassette(path, "none", metadata=META) as handle:
        assert handle.play(call("e1", "Paris", tools=[renamed], tool_choice="required"), "chat/completions") is None
        assert handle.play(call("e1", "Paris", tools=[weather], tool_choice="auto"), "chat/completions") is None
        assert handle.play(call("e2", "x", response_format=loose), "chat/completions") is None
        assert handle.play(responses_call("e3", "y", previous_response_id="resp_2", store=True), "responses") is not None
        assert handle.play(recorded[0], "chat/completions") is not None and handle.play(recorded[1], "/v1/chat/completions")


def ask_any(client: openai.OpenAI, c: Call) -> object:
    """A chat call whose answer may be tool calls rather than text."""
    return client.chat.completions.create(**c.body, extra_headers=headers(c))
