"""Providers: env-only credentials, replay placeholders, Azure deployment paths, and the registry seam."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest

from evalsuite.cases.schema import ModelSettings
from evalsuite.cassettes import open_cassette
from evalsuite.errors import EvalsuiteError, MissingCredentials, UnknownName
from evalsuite.model import (EngineSettings, Failure, Provider, answer_calls, finish_cassette, get_provider, make_client,
                             make_sync_client, provider, run_calls_sync)
from evalsuite.model._providers import REPLAY_API_KEY, AzureOpenAIProvider, _databricks_config, _providers
from evalsuite.records import Answer, Call
from tests._support.case_files import CASE, error, load
from tests._support.chat_server import ChatServer

ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN",
       "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION", "MINE_URL", "MINE_KEY")
DATABRICKS_ENV = ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_FILE", "DATABRICKS_CONFIG_PROFILE",
                  "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_AUTH_TYPE", "DATABRICKS_RUNTIME_VERSION",
                  "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "ARM_CLIENT_ID")
CALL = Call("ex1", 0, "chat", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV + DATABRICKS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.databrickscfg or Azure CLI login of this machine
    _databricks_config.cache_clear()


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
    expected = r"unknown provider 'opnai'; did you mean 'openai'\? valid: azure_openai, databricks, openai"
    with pytest.raises(UnknownName, match=expected):
        get_provider("opnai")


def test_a_misspelt_provider_fails_at_load_on_its_line(tmp_path: Path) -> None:
    text = CASE.replace("model: {name: m, temperature: 0}", "model: {name: m, provider: opnai}")
    assert error(tmp_path, text) == (
        "cases/x.yaml:4: model.provider: unknown provider 'opnai'; did you mean 'openai'? valid: azure_openai, databricks, openai"
    )


def test_registering_something_that_is_not_a_provider_says_what_to_register(registry) -> None:
    _providers.add("fn", lambda: None)  # what a misdeclared entry point would load
    with pytest.raises(EvalsuiteError, match="'fn' .* not a subclass of evalsuite.model.Provider"):
        get_provider("fn")


@pytest.mark.parametrize(("name", "hint"), [
    ("openai", "set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server)"),
    ("azure_openai", "set AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT"),
    ("databricks", "set DATABRICKS_HOST and DATABRICKS_TOKEN (or configure the Databricks SDK's authentication)"),
])
def test_each_built_in_provider_says_what_to_set_to_record(name: str, hint: str) -> None:
    assert get_provider(name).record_hint(ModelSettings(provider=name)) == hint


def test_a_provider_may_give_a_token_function_called_before_each_request(registry) -> None:
    issued = iter(f"token-{i}" for i in range(100))

    @provider("rotating")
    class Rotating(Provider):
        def options(self, model: ModelSettings, *, replay: bool) -> dict[str, Any]:
            return {"base_url": model.base_url, "api_key": lambda: next(issued)}

    with ChatServer() as server:
        model = ModelSettings(provider="rotating", base_url=server.base_url)
        run_calls_sync([CALL, Call("ex2", 0, "chat", CALL.body)], model)  # the async client
        make_sync_client(model, replay=False).chat.completions.create(**CALL.body)
        sent = sorted(h["Authorization"] for h in server.headers)
    assert sent == ["Bearer token-0", "Bearer token-1", "Bearer token-2"]


# -- Databricks model serving -------------------------------------------------------------------------


def test_databricks_calls_the_serving_endpoint_of_the_workspace_with_its_token(monkeypatch) -> None:
    with ChatServer() as server:
        monkeypatch.setenv("DATABRICKS_HOST", server.databricks_host)
        monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-0123456789abcdef")
        [answer] = run_calls_sync([CALL], ModelSettings(provider="databricks", name="my-llama-endpoint"))
        sent = headers_of(server)
    assert answer.ok and answer.text == "hello"
    assert server.paths == ["/serving-endpoints/chat/completions"] and server.requests[0]["model"] == "gpt-4o"
    assert sent["authorization"] == "Bearer dapi-0123456789abcdef"


def test_databricks_host_without_a_scheme_is_https_and_base_url_wins(monkeypatch) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", "adb-1234.5.azuredatabricks.net/")
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-x")
    client = make_client(ModelSettings(provider="databricks", name="ep"), replay=False)
    assert str(client.base_url) == "https://adb-1234.5.azuredatabricks.net/serving-endpoints/"
    own = make_client(ModelSettings(provider="databricks", base_url="https://gw.example/serving-endpoints"), replay=False)
    assert str(own.base_url) == "https://gw.example/serving-endpoints/"


def test_databricks_without_a_token_signs_in_through_the_databricks_sdk(tmp_path: Path, monkeypatch) -> None:
    """A ~/.databrickscfg profile (what `databricks configure` writes); on a cluster the SDK uses the notebook's identity."""
    pytest.importorskip("databricks.sdk")
    with ChatServer() as server:
        profile = tmp_path / "databrickscfg"
        profile.write_text(f"[DEFAULT]\nhost = {server.databricks_host}\ntoken = dapi-from-the-profile-42\n")
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(profile))
        [answer] = run_calls_sync([CALL], ModelSettings(provider="databricks", name="my-endpoint"))
        sent = headers_of(server)
    assert answer.ok and server.paths == ["/serving-endpoints/chat/completions"]
    assert sent["authorization"] == "Bearer dapi-from-the-profile-42"


def test_databricks_live_without_credentials_names_the_variables(monkeypatch) -> None:
    with pytest.raises(MissingCredentials, match=r"DATABRICKS_HOST and DATABRICKS_TOKEN are not set.*--record-mode=none"):
        make_client(ModelSettings(provider="databricks", name="ep"), replay=False)


def test_databricks_replay_needs_no_host_and_no_token() -> None:
    client = make_client(ModelSettings(provider="databricks", name="ep"), replay=True)
    assert client.api_key == REPLAY_API_KEY and str(client.base_url).endswith("/serving-endpoints/")


def _answered(calls: list[Call], model: ModelSettings, cassette: Path, mode: str) -> list[Answer]:
    """The calls answered as a metric's own calls are: replayed from ``cassette``, the rest sent and recorded."""
    handle = open_cassette(cassette, mode, metadata={})
    answers = answer_calls(calls, model, handle, get_provider(model.provider).endpoint(model))
    finish_cassette(handle, calls, answers)
    return answers


def test_a_databricks_recording_replays_anywhere_without_host_or_token(tmp_path: Path, monkeypatch) -> None:
    cassette, model = tmp_path / "serving.json", ModelSettings(provider="databricks", name="my-endpoint")
    calls = [Call(f"e{i}", 0, "chat", {"model": "my-endpoint", "messages": [{"role": "user", "content": f"row {i}"}]})
             for i in range(3)]
    with ChatServer() as server:
        monkeypatch.setenv("DATABRICKS_HOST", server.databricks_host)
        monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-recording-secret-1")
        live = _answered(calls, model, cassette, "once")
    monkeypatch.delenv("DATABRICKS_HOST")
    monkeypatch.delenv("DATABRICKS_TOKEN")
    replayed = _answered(calls, model, cassette, "none")  # server gone, no credentials
    assert [a.text for a in replayed] == [a.text for a in live] == ["row 0", "row 1", "row 2"]
    stored = cassette.read_text()
    assert "dapi-recording-secret-1" not in stored and stored.count('"authorization": [\n') == 3
    assert all(i["request"]["headers"]["authorization"] == ["[REDACTED]"] for i in json.loads(stored)["interactions"])


# -- Azure OpenAI with Microsoft Entra ID (auth: entra) --------------------------------------------------


try:
    from azure.core.credentials import AccessToken
except ImportError:  # the azure extra is not installed: the Entra tests skip
    AccessToken = Any  # type: ignore[misc,assignment]


class IssuedTokens:
    """A credential as azure-identity defines one (``get_token``), issuing numbered tokens valid for ``lifetime_s``.

    It stands where ``DefaultAzureCredential`` signs in to Entra ID; azure-core's token cache and refresh run as is.
    """

    def __init__(self, lifetime_s: float) -> None:
        self.lifetime_s = lifetime_s
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(f"entra-token-{len(self.scopes)}", int(time.time() + self.lifetime_s))


AZURE_ENTRA = ModelSettings(provider="azure_openai", name="my-gpt4o", auth="entra")


def test_entra_sends_a_bearer_token_for_cognitive_services_and_no_key(monkeypatch) -> None:
    pytest.importorskip("azure.identity")
    credential = IssuedTokens(lifetime_s=3600)
    monkeypatch.setattr(AzureOpenAIProvider, "credential", credential)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "a-key-that-must-not-be-sent")  # auth: entra ignores it
    with ChatServer() as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
        answers = run_calls_sync([Call(f"e{i}", 0, "chat", CALL.body) for i in range(4)], AZURE_ENTRA)
        make_sync_client(AZURE_ENTRA, replay=False).chat.completions.create(**CALL.body)
    assert all(a.ok for a in answers)
    assert server.paths == ["/openai/deployments/my-gpt4o/chat/completions"] * 5
    assert [h.get("Authorization") for h in server.headers] == ["Bearer entra-token-1"] * 5  # cached: asked once
    assert not any("api-key" in {k.lower() for k in h} for h in server.headers)
    assert credential.scopes == [("https://cognitiveservices.azure.com/.default",)]


def test_entra_tokens_about_to_expire_are_refreshed(monkeypatch) -> None:
    pytest.importorskip("azure.identity")
    monkeypatch.setattr(AzureOpenAIProvider, "credential", IssuedTokens(lifetime_s=60))  # inside azure-core's 5 min window
    with ChatServer() as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
        run_calls_sync([Call(f"e{i}", 0, "chat", CALL.body) for i in range(3)], AZURE_ENTRA,
                       settings=EngineSettings(concurrency=1))
    assert [h.get("Authorization") for h in server.headers] == [f"Bearer entra-token-{i}" for i in (1, 2, 3)]


def test_an_entra_recording_is_redacted_and_replays_anywhere_without_a_credential(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("azure.identity")
    cassette = tmp_path / "entra.json"
    calls = [Call(f"e{i}", 0, "chat", {"model": "my-gpt4o", "messages": [{"role": "user", "content": f"say entra-token-1 {i}"}]})
             for i in range(3)]  # an answer echoing the token is scrubbed too
    monkeypatch.setattr(AzureOpenAIProvider, "credential", IssuedTokens(lifetime_s=3600))
    with ChatServer() as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
        live = _answered(calls, AZURE_ENTRA, cassette, "once")
    assert all(a.ok for a in live) and server.headers[0]["Authorization"] == "Bearer entra-token-1"

    class NoSignIn:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            raise AssertionError("replay asked for a token")

    monkeypatch.setattr(AzureOpenAIProvider, "credential", NoSignIn())
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT")
    replayed = _answered(calls, AZURE_ENTRA, cassette, "none")
    assert [a.text for a in live] == [f"say entra-token-1 {i}" for i in range(3)]
    assert [a.text for a in replayed] == [f"say [REDACTED:authorization] {i}" for i in range(3)]  # stored redacted
    stored = cassette.read_text()
    assert "entra-token-1" not in stored and "[REDACTED:authorization]" in stored  # the echoed token, scrubbed
    assert all(i["request"]["headers"]["authorization"] == ["[REDACTED]"] for i in json.loads(stored)["interactions"])


def test_entra_that_cannot_sign_in_is_an_error_naming_how_to(monkeypatch) -> None:
    pytest.importorskip("azure.identity")
    from azure.core.exceptions import ClientAuthenticationError

    class SignedOut:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.\nAttempted: ...")

    monkeypatch.setattr(AzureOpenAIProvider, "credential", SignedOut())
    with ChatServer() as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
        [answer] = run_calls_sync([CALL], AZURE_ENTRA, settings=EngineSettings(max_retries=0))
    assert not server.received
    assert answer.error is not None and answer.error.startswith(
        "model.auth: entra: no Microsoft Entra ID token (DefaultAzureCredential failed to retrieve a token.); "
        "sign in with az login")


def test_entra_is_refused_at_load_for_a_provider_without_it(tmp_path: Path) -> None:
    text = CASE.replace("model: {name: m, temperature: 0}", "model: {name: m, auth: entra}")
    assert error(tmp_path, text) == ("cases/x.yaml:4: model.auth: provider 'openai' does not support auth 'entra'; "
                                     "valid: key; entra is for provider azure_openai")
    text = CASE.replace("model: {name: m, temperature: 0}", "model: {name: m, provider: azure_openai, auth: entar}")
    assert error(tmp_path, text) == "cases/x.yaml:4: model.auth: 'entar' is not allowed; did you mean 'entra'? choices: key, entra"
    assert load(tmp_path, CASE.replace("model: {name: m, temperature: 0}",
                                       "model: {name: m, provider: azure_openai, auth: entra}"))[0].case.model.auth == "entra"


def test_entra_record_hint_names_the_sign_in() -> None:
    assert "az login" in get_provider("azure_openai").record_hint(AZURE_ENTRA)
