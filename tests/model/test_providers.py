"""Providers: env-only credentials, replay placeholders, Azure deployment paths, and the registry seam."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest

from evalsuite.cases.schema import ModelSettings
from evalsuite.errors import EvalsuiteError, MissingCredentials, UnknownName
from evalsuite.model import (EngineSettings, Failure, Provider, get_provider, make_client, make_sync_client, provider,
                             run_calls_sync)
from evalsuite.model._providers import REPLAY_API_KEY, _providers
from evalsuite.records import Call
from tests._support.case_files import CASE, error
from tests._support.chat_server import ChatServer

ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN",
       "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION", "MINE_URL", "MINE_KEY")
CALL = Call("ex1", 0, "chat", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Providers registered by a test stay in that test."""
    monkeypatch.setattr(_providers, "_entries", dict(_providers._entries))


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
    for client in (make_client(ModelSettings(timeout=7.5), replay=False),
                   make_sync_client(ModelSettings(timeout=7.5), replay=False)):
        assert client.max_retries == 0 and client.timeout == 7.5


def test_replay_needs_no_key() -> None:
    with ChatServer() as server:
        client = make_sync_client(ModelSettings(base_url=server.base_url), replay=True)
        client.chat.completions.create(**CALL.body)
        sent = headers_of(server)
    assert isinstance(client, openai.OpenAI) and sent["authorization"] == f"Bearer {REPLAY_API_KEY}"
    assert make_client(ModelSettings(), replay=True).api_key == REPLAY_API_KEY


def test_live_without_a_key_names_the_variable_to_set() -> None:
    with pytest.raises(MissingCredentials, match="export OPENAI_API_KEY"):
        make_client(ModelSettings(), replay=False)
    with pytest.raises(MissingCredentials, match="export AZURE_OPENAI_API_KEY"):
        make_client(ModelSettings(provider="azure_openai", name="dep"), replay=False)
    with pytest.raises(MissingCredentials, match="export AZURE_OPENAI_API_KEY"):
        make_sync_client(ModelSettings(provider="azure_openai", name="dep"), replay=False)


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
    assert isinstance(make_sync_client(model, replay=False), openai.AzureOpenAI)
    assert get_provider("azure_openai").endpoint(model) == "deployments/my-gpt4o/chat/completions"
    assert get_provider("openai").endpoint(ModelSettings(api="completions")) == "completions"


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


# -- the registry seam --------------------------------------------------------------------------


def register_mine() -> type[Provider]:
    @provider("mine")
    class Mine(Provider):
        """Reads its own endpoint and key variables; sends a header of its own."""

        def options(self, model: ModelSettings, *, replay: bool) -> dict[str, Any]:
            import os

            return {"base_url": os.environ.get("MINE_URL"), "api_key": os.environ.get("MINE_KEY"),
                    "default_headers": {"x-mine": "1"}, "max_retries": 5}

    return Mine


def test_a_registered_provider_builds_the_clients_of_its_cases(registry, monkeypatch) -> None:
    mine = register_mine()
    assert isinstance(get_provider("mine"), mine) and "mine" in _providers.names()
    model = ModelSettings(provider="mine", name="local-model")
    with ChatServer() as server:
        monkeypatch.setenv("MINE_URL", server.base_url)
        monkeypatch.setenv("MINE_KEY", "mine-secret")
        [answer] = run_calls_sync([CALL], model)
        sent = headers_of(server)
    assert answer.text == "hello"
    assert sent["authorization"] == "Bearer mine-secret" and sent["x-mine"] == "1" and sent["accept-encoding"] == "gzip"
    assert sent["x-stainless-retry-count"] == "0" and make_client(model, replay=False).max_retries == 0  # forced
    assert get_provider("mine").endpoint(model) == "chat/completions"


def test_a_registered_provider_replays_without_its_key_and_names_the_problem_live(registry) -> None:
    register_mine()
    model = ModelSettings(provider="mine")
    assert make_sync_client(model, replay=True).api_key == REPLAY_API_KEY
    with pytest.raises(MissingCredentials, match=r"provider .*Mine: .*api_key.*--record-mode=none"):
        make_client(model, replay=False)


def test_a_provider_may_classify_its_own_failures(registry, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live")

    @provider("strict")
    class Strict(Provider):
        def classify(self, exc: Exception) -> Failure:
            failure = super().classify(exc)
            return Failure("api", f"strict: {failure.message}", retry=False) if failure.kind == "api" else failure

    with ChatServer(server_error_fraction=1.0) as server:
        [default] = run_calls_sync([CALL], lambda: make_client(ModelSettings(base_url=server.base_url), replay=True),
                                   settings=EngineSettings(max_retries=2, backoff_base=0.01))
        assert server.statuses == Counter({500: 3})
        [strict] = run_calls_sync([CALL], ModelSettings(provider="strict", base_url=server.base_url),
                                  settings=EngineSettings(max_retries=2, backoff_base=0.01))
        assert server.statuses == Counter({500: 4})  # one try: the provider said not to retry
    assert default.retries == 2 and strict.retries == 0 and strict.error == "strict: HTTP 500: boom"


def test_unknown_providers_get_a_did_you_mean() -> None:
    expected = r"unknown provider 'opnai'; did you mean 'openai'\? valid: azure_openai, openai"
    with pytest.raises(UnknownName, match=expected):
        get_provider("opnai")


def test_a_misspelt_provider_fails_at_load_on_its_line(tmp_path: Path) -> None:
    text = CASE.replace("model: {name: m, temperature: 0}", "model: {name: m, provider: opnai}")
    assert error(tmp_path, text) == (
        "cases/x.yaml:4: model.provider: unknown provider 'opnai'; did you mean 'openai'? valid: azure_openai, openai"
    )


def test_registering_something_that_is_not_a_provider_says_what_to_register(registry) -> None:
    _providers.add("fn", lambda: None)  # what a misdeclared entry point would load
    with pytest.raises(EvalsuiteError, match="'fn' .* not a subclass of evalsuite.model.Provider"):
        get_provider("fn")


@pytest.mark.parametrize(("name", "hint"), [
    ("openai", "set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server)"),
    ("azure_openai", "set AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT"),
])
def test_each_built_in_provider_says_what_to_set_to_record(name: str, hint: str) -> None:
    assert get_provider(name).record_hint(ModelSettings(provider=name)) == hint
