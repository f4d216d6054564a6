"""The match key: what makes a recording answer a request, whichever way the request arrives."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.cassettes import is_not_recorded, use_cassette
from tests._support.chat_server import ChatServer
from tests._support.cassette_calls import META, OFFLINE, answer_text, ask, azure_client, call, openai_client


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
