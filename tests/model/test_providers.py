"""Client construction: env-only credentials, replay placeholders, Azure deployment paths."""

from __future__ import annotations

import pytest

from evalsuite.cases.schema import ModelSettings
from evalsuite.model.providers import REPLAY_API_KEY, MissingCredentials, make_client
from evalsuite.model._engine import EngineSettings, run_calls_sync
from evalsuite.records import Call
from tests._support.chat_server import ChatServer

ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN",
       "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION")
CALL = Call("ex1", 0, "chat", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def headers_of(server: ChatServer) -> dict[str, str]:
    return {k.lower(): v for k, v in server.headers[-1].items()}


def test_openai_client_reads_key_and_base_url_from_env_and_sends_gzip_only(monkeypatch) -> None:
    with ChatServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-live")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        [answer] = run_calls_sync([CALL], ModelSettings(name="gpt-4o"))
        sent = headers_of(server)
    assert answer.text == "hello"
    assert sent["authorization"] == "Bearer sk-live"
    assert sent["accept-encoding"] == "gzip"
    assert sent["x-evalsuite-example"] == "ex1#0" and float(sent["x-evalsuite-sent-at"]) > 0
    assert sent["x-stainless-retry-count"] == "0"


def test_sdk_retries_are_off_and_timeout_comes_from_the_case(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live")
    client = make_client(ModelSettings(timeout=7.5), replay=False)
    assert client.max_retries == 0 and client.timeout == 7.5


def test_replay_needs_no_key(monkeypatch) -> None:
    with ChatServer() as server:
        [answer] = run_calls_sync([CALL], ModelSettings(base_url=server.base_url), replay=True)
        sent = headers_of(server)
    assert answer.ok and sent["authorization"] == f"Bearer {REPLAY_API_KEY}"


def test_live_without_a_key_names_the_variable_to_set() -> None:
    with pytest.raises(MissingCredentials, match="export OPENAI_API_KEY"):
        make_client(ModelSettings(), replay=False)
    with pytest.raises(MissingCredentials, match="export AZURE_OPENAI_API_KEY"):
        make_client(ModelSettings(provider="azure_openai", name="dep"), replay=False)


def test_azure_client_calls_the_deployment_path(monkeypatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-secret")
    with ChatServer() as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
        model = ModelSettings(provider="azure_openai", name="my-gpt4o")
        client = make_client(model, replay=False)
        assert str(client.base_url) == f"{server.azure_endpoint}/openai/deployments/my-gpt4o/"
        [answer] = run_calls_sync([CALL], model, settings=EngineSettings(max_retries=0))
        sent = headers_of(server)
    assert answer.ok and answer.text == "hello"  # the server only serves /openai/deployments/<dep>/...
    assert sent["api-key"] == "azure-secret" and "authorization" not in sent


def test_azure_api_version_from_case_then_env_then_default(monkeypatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    model = ModelSettings(provider="azure_openai", name="dep")
    assert make_client(model, replay=False)._custom_query["api-version"] == "2024-10-21"
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-01-01-preview")
    assert make_client(model, replay=False)._custom_query["api-version"] == "2025-01-01-preview"
    model = ModelSettings(provider="azure_openai", name="dep", api_version="2024-06-01")
    assert make_client(model, replay=False)._custom_query["api-version"] == "2024-06-01"


def test_azure_replay_needs_neither_key_nor_endpoint() -> None:
    client = make_client(ModelSettings(provider="azure_openai", name="dep"), replay=True)
    assert client.api_key == REPLAY_API_KEY
    assert str(client.base_url).endswith("/openai/deployments/dep/")
