"""Providers: how to reach one kind of OpenAI-compatible endpoint, registered by name.

``model.provider`` in a case file names a :class:`Provider` registered with ``@provider("name")``
(built in: ``openai``, ``azure_openai``, ``databricks``; a ``conftest.py`` or an installed package adds
more, the latter through the entry-point group ``evalsuite.providers``). A provider builds the SDK client,
names the endpoint the SDK calls (what replay matches on) and may classify its own failures into
retry decisions (Inspect AI's ``ModelAPI.should_retry``); the engine does the rest.

Built-in credentials and endpoints come only from the environment variables the ``openai`` SDK
itself reads (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``AZURE_OPENAI_API_KEY``,
``AZURE_OPENAI_AD_TOKEN``, ``AZURE_OPENAI_ENDPOINT``, ``OPENAI_API_VERSION``), Databricks' own
(``DATABRICKS_HOST``, ``DATABRICKS_TOKEN``, else the Databricks SDK's authentication), or a token
source (``model.auth: entra``: azure-identity's ``DefaultAzureCredential``), never from case files.
Tokens from a source are fetched before each request (the source caches and refreshes them). Replay
must work on a machine without any of them, so ``replay=True`` fills in placeholders that are never
sent anywhere, and asks no token source.

Options every client gets, whatever the provider says:
- ``max_retries=0``: the engine owns retries (adaptive concurrency, Retry-After, error answers);
  the SDK's own retries would stack on top of them and replay recorded 429s with their delay.
- ``Accept-Encoding: gzip``: httpx2 advertises zstd when a decoder is installed and vcrpy cannot
  decode zstd, which would store unreadable binary bodies in cassettes.
Create an async client inside the event loop that uses it and close it there: an ``AsyncOpenAI``
reused across ``asyncio.run`` calls fails with "Event loop is closed".
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import openai

from evalsuite._registry import Registry
from evalsuite.cases.schema import ModelSettings
from evalsuite.errors import EvalsuiteError, MissingCredentials
from evalsuite.model._admission import retry_after_seconds
from evalsuite.records import ErrorKind

# The GA Azure OpenAI data-plane version used when neither the case nor OPENAI_API_VERSION names one; the
# Responses API needs a newer (preview) one.
DEFAULT_AZURE_API_VERSION = "2024-10-21"
DEFAULT_AZURE_RESPONSES_API_VERSION = "2025-04-01-preview"
REPLAY_API_KEY = "sk-evalsuite-replay-placeholder"
REPLAY_AZURE_ENDPOINT = "https://evalsuite-replay.openai.azure.com"
REPLAY_DATABRICKS_HOST = "https://evalsuite-replay.cloud.databricks.com"
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"  # what an Entra token for Azure OpenAI is for
CLIENT_HEADERS = {"Accept-Encoding": "gzip"}
RETRYABLE_STATUS = frozenset({408, 409, 429})

_Client = TypeVar("_Client", openai.OpenAI, openai.AsyncOpenAI)


@dataclass
class Failure:
    """One failed attempt, classified: what kind, what to show, whether (and after how long) to retry."""

    kind: ErrorKind
    message: str
    retry: bool
    retry_after: float | None = None  # server-directed wait in seconds
    headers: Mapping[str, str] | None = None  # the response's, for rate-limit pauses


class Provider:
    """How to reach one kind of endpoint through the ``openai`` SDK.

    Subclass it, override :meth:`options` (and :meth:`endpoint` or :meth:`classify` when the
    endpoint differs from OpenAI's), and register it with ``@evalsuite.provider("name")``.
    """

    async_client_class: ClassVar[type[openai.AsyncOpenAI]] = openai.AsyncOpenAI
    sync_client_class: ClassVar[type[openai.OpenAI]] = openai.OpenAI
    auth_methods: ClassVar[tuple[str, ...]] = ("key",)  # the model.auth values this provider accepts

    def options(self, model: ModelSettings, *, replay: bool) -> dict[str, Any]:
        """Keyword arguments for the SDK client class (``api_key``, ``base_url``, ...).

        With ``replay=True`` nothing is sent anywhere: do not require secrets then (a missing
        ``api_key`` becomes a placeholder). Live without credentials, raise ``MissingCredentials``
        naming the variable to set. ``api_key`` may be a function returning the current token: it is
        called before each request, by the async client too.
        """
        return {"base_url": model.base_url}

    def endpoint(self, model: ModelSettings) -> str:
        """The URL path tail the SDK calls for ``model``: what cassettes match on, with the body."""
        return {"chat": "chat/completions", "responses": "responses"}.get(model.api, "completions")

    def classify(self, exc: Exception) -> Failure:
        """Turn a failed request into a retry decision (the OpenAI rules; override to add your own)."""
        return classify_openai_error(exc)

    def record_hint(self, model: ModelSettings) -> str:
        """What to set before recording ``model`` live, completing "To record them, <hint> and run: ...".

        Shown when a call is missing from a cassette; name the variables :meth:`options` reads.
        """
        return f"set the credentials provider {type(self).__qualname__} reads"

    def client(self, model: ModelSettings, *, replay: bool) -> openai.AsyncOpenAI:
        """An async client for ``model``; create and close it in the event loop that uses it."""
        return self._build(self.async_client_class, model, replay)

    def sync_client(self, model: ModelSettings, *, replay: bool) -> openai.OpenAI:
        """A blocking client for ``model`` (hand-written tests, scripts)."""
        return self._build(self.sync_client_class, model, replay)

    def _build(self, client_class: type[_Client], model: ModelSettings, replay: bool) -> _Client:
        options = {"timeout": model.timeout, **self.options(model, replay=replay)}
        if replay and options.get("api_key") is None and not options.get("azure_ad_token"):
            options["api_key"] = REPLAY_API_KEY
        if callable(options.get("api_key")) and issubclass(client_class, openai.AsyncOpenAI):
            options["api_key"] = _awaitable(options["api_key"])  # the async client awaits its key function
        options["max_retries"] = 0
        options["default_headers"] = {**(options.get("default_headers") or {}), **CLIENT_HEADERS}
        try:
            return client_class(**options)
        except openai.OpenAIError as exc:  # e.g. no api_key and no OPENAI_API_KEY
            problem = str(exc).rstrip(".")
            raise MissingCredentials(
                f"provider {type(self).__qualname__}: {problem}; or replay recorded cassettes with --record-mode=none"
            ) from None


def _awaitable(source: Callable[[], str]) -> Callable[[], Awaitable[str]]:
    async def key() -> str:
        return source()

    return key


_providers: Registry[type[Provider]] = Registry("provider")
_P = TypeVar("_P", bound=type[Provider])


def provider(name: str) -> Callable[[_P], _P]:
    """Class decorator: register a :class:`Provider` subclass as ``name`` (what ``model.provider`` says)."""

    def register(cls: _P) -> _P:
        _providers.add(name, cls)
        return cls

    return register


def get_provider(name: str) -> Provider:
    """The provider registered as ``name``; ``UnknownName`` (with a did-you-mean) if there is none."""
    cls = _providers.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise EvalsuiteError(
            f"provider {name!r} is registered as {cls!r}, which is not a subclass of evalsuite.model.Provider; "
            "register a class that subclasses it"
        )
    return cls()


def make_client(model: ModelSettings, *, replay: bool) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` (or subclass) for ``model`` from its provider; ``replay`` runs without secrets."""
    return get_provider(model.provider).client(model, replay=replay)


def make_sync_client(model: ModelSettings, *, replay: bool) -> openai.OpenAI:
    """An ``OpenAI`` (or subclass) for ``model`` from its provider; ``replay`` runs without secrets."""
    return get_provider(model.provider).sync_client(model, replay=replay)


def classify_openai_error(exc: Exception) -> Failure:
    """The OpenAI SDK's failures: timeouts, connection errors and 408/409/429/5xx are retried."""
    if isinstance(exc, openai.APITimeoutError):
        return Failure("timeout", "request timed out", retry=True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return Failure("connection", f"{exc.message} {type(cause).__name__}: {cause}" if cause else exc.message, True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        message = f"HTTP {status}: {body.get('message') or exc.message}"
        headers = exc.response.headers
        retry = status in RETRYABLE_STATUS or status >= 500
        should = headers.get("x-should-retry")
        if should in ("true", "false"):
            retry = should == "true"
        kind: ErrorKind = "rate_limited" if status == 429 else "timeout" if status == 408 else "api"
        return Failure(kind, message, retry, retry_after_seconds(headers), headers)
    if isinstance(exc, EvalsuiteError):  # ours (e.g. a token source that cannot sign in): already says what to do
        return Failure("api", str(exc), retry=False)
    return Failure("api", f"{type(exc).__name__}: {exc}", retry=False)


@provider("openai")
class OpenAIProvider(Provider):
    """api.openai.com, or any OpenAI-compatible server at ``model.base_url`` / ``OPENAI_BASE_URL``."""

    def options(self, model: ModelSettings, *, replay: bool) -> dict[str, Any]:
        key = os.environ.get("OPENAI_API_KEY")
        if not key and not replay:
            raise MissingCredentials(
                "OPENAI_API_KEY is not set: export OPENAI_API_KEY to call the model live "
                "(any non-empty value for a local server that ignores keys), "
                "or replay recorded cassettes with --record-mode=none"
            )
        return {"api_key": key or None, "base_url": model.base_url}  # None -> OPENAI_BASE_URL -> api.openai.com

    def record_hint(self, model: ModelSettings) -> str:
        return "set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server)"


@provider("azure_openai")
class AzureOpenAIProvider(Provider):
    """An Azure OpenAI deployment: ``model.name`` is the deployment, ``model.base_url`` the resource endpoint."""

    async_client_class = openai.AsyncAzureOpenAI
    sync_client_class = openai.AzureOpenAI
    auth_methods = ("key", "entra")
    # auth: entra signs in with this azure-identity credential; None: one DefaultAzureCredential per process
    credential: ClassVar[Any] = None

    def options(self, model: ModelSettings, *, replay: bool) -> dict[str, Any]:
        entra = model.auth == "entra"
        key, token = os.environ.get("AZURE_OPENAI_API_KEY"), os.environ.get("AZURE_OPENAI_AD_TOKEN")
        if entra:  # the Entra token is the credential: a key in the environment is not sent too
            key = token = None
        elif not (key or token) and not replay:
            raise MissingCredentials(
                "AZURE_OPENAI_API_KEY is not set: export AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN) to call "
                f"the Azure deployment {model.name!r} live, or replay recorded cassettes with --record-mode=none"
            )
        resource = model.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not resource:
            if not replay:
                raise MissingCredentials(
                    "AZURE_OPENAI_ENDPOINT is not set: export AZURE_OPENAI_ENDPOINT=https://<resource>.openai.azure.com "
                    "or give model.base_url in the case file"
                )
            resource = REPLAY_AZURE_ENDPOINT
        options: dict[str, Any] = {
            "api_key": key or None,
            "azure_ad_token": token or None,
            "azure_endpoint": resource,
            "azure_deployment": model.name,
            "api_version": model.api_version or os.environ.get("OPENAI_API_VERSION")
            or (DEFAULT_AZURE_RESPONSES_API_VERSION if model.api == "responses" else DEFAULT_AZURE_API_VERSION),
        }
        if entra and not replay:
            options["azure_ad_token_provider"] = entra_token_provider(self.credential)
        return options

    def record_hint(self, model: ModelSettings) -> str:
        if model.auth == "entra":
            return ("set AZURE_OPENAI_ENDPOINT and sign in to Microsoft Entra ID (az login, a managed identity, or "
                    "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET)")
        return "set AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT"

    def endpoint(self, model: ModelSettings) -> str:
        if model.api == "responses":  # not a deployment path: the deployment is the body's model
            return "openai/responses"
        return f"deployments/{model.name}/{super().endpoint(model)}"


@functools.lru_cache(maxsize=None)
def entra_token_provider(credential: Any = None) -> Callable[[], str]:
    """A bearer-token function for Azure OpenAI, one per credential and process (``None``: ``DefaultAzureCredential``).

    azure-identity's ``get_bearer_token_provider`` caches the token and asks the credential again shortly before it
    expires, so a long recording keeps a valid token. A credential that cannot sign in is ``MissingCredentials``
    with the ways to sign in, not the credential chain's report.
    """
    try:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider
    except ImportError:
        raise MissingCredentials("model.auth: entra needs azure-identity: pip install 'evalsuite[azure]'") from None
    bearer = get_bearer_token_provider(DefaultAzureCredential() if credential is None else credential,
                                       COGNITIVE_SERVICES_SCOPE)

    def token() -> str:
        try:
            return bearer()
        except ClientAuthenticationError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:100]
            raise MissingCredentials(
                f"model.auth: entra: no Microsoft Entra ID token ({first}); sign in with az login, a managed identity "
                "or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or use auth: key"
            ) from None

    return token


@provider("databricks")
class DatabricksProvider(Provider):
    """A Databricks model-serving endpoint (OpenAI-compatible): ``model.name`` is the serving endpoint's name.

    The base URL is ``model.base_url``, else ``$DATABRICKS_HOST/serving-endpoints``. The token is
    ``DATABRICKS_TOKEN`` (a personal access token) when it and the host are set; otherwise the Databricks SDK's
    authentication (a notebook's or job's own identity on a cluster, a ``~/.databrickscfg`` profile, OAuth),
    asked before each request so that expiring OAuth tokens are refreshed.
    """

    def options(self, model: ModelSettings, *, replay: bool) -> dict[str, Any]:
        if replay:
            return {"base_url": model.base_url or serving_endpoints(REPLAY_DATABRICKS_HOST)}
        host, token = os.environ.get("DATABRICKS_HOST"), os.environ.get("DATABRICKS_TOKEN")
        if token and (host or model.base_url):
            return {"base_url": model.base_url or serving_endpoints(host or ""), "api_key": token}
        config = _databricks_config()
        return {"base_url": model.base_url or serving_endpoints(config.host), "api_key": _sdk_token(config)}

    def record_hint(self, model: ModelSettings) -> str:
        return "set DATABRICKS_HOST and DATABRICKS_TOKEN (or configure the Databricks SDK's authentication)"


def serving_endpoints(host: str) -> str:
    """``adb-1.2.azuredatabricks.net`` or ``https://.../`` -> ``https://.../serving-endpoints`` (the SDK's rule)."""
    host = host.strip().rstrip("/")
    return f"{host if '://' in host else 'https://' + host}/serving-endpoints"


@functools.lru_cache(maxsize=1)
def _databricks_config() -> Any:
    """The Databricks SDK's resolved authentication, once per process; ``MissingCredentials`` naming what to set."""
    missing = ("DATABRICKS_HOST and DATABRICKS_TOKEN are not set: export them to call the serving endpoint live "
               "(or give model.base_url with DATABRICKS_TOKEN)")
    try:
        from databricks.sdk.core import Config
    except ImportError:
        raise MissingCredentials(f"{missing}, install databricks-sdk to use its authentication, "
                                 "or replay recorded cassettes with --record-mode=none") from None
    try:
        config = Config()
    except ValueError as exc:  # the SDK found no way to sign in
        first = (str(exc).strip().splitlines() or ["no credentials"])[0]
        raise MissingCredentials(f"{missing}; the Databricks SDK found no credentials either ({first}); "
                                 "or replay recorded cassettes with --record-mode=none") from None
    if not config.host:
        raise MissingCredentials(f"{missing}; the Databricks SDK knows no workspace host")
    return config


def _sdk_token(config: Any) -> Callable[[], str]:
    def token() -> str:
        header = str(config.authenticate().get("Authorization", ""))
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise MissingCredentials("the Databricks SDK gave no bearer token for the serving endpoint; "
                                     "set DATABRICKS_TOKEN")
        return value

    return token
