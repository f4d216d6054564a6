"""Stage 4: build the SDK client for one case's model settings.

Credentials and endpoints come only from the environment variables the ``openai`` SDK itself reads
(``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``AZURE_OPENAI_API_KEY``, ``AZURE_OPENAI_AD_TOKEN``,
``AZURE_OPENAI_ENDPOINT``, ``OPENAI_API_VERSION``), never from case files. Replaying cassettes must
work on a machine without any of them, so replay fills in placeholders that are never sent anywhere.

Why the fixed options:
- ``max_retries=0``: the engine owns retries (adaptive concurrency, Retry-After, error answers);
  the SDK's own retries would stack on top of them and replay recorded 429s with their delay.
- ``Accept-Encoding: gzip``: httpx2 advertises zstd when a decoder is installed and vcrpy cannot
  decode zstd, which would store unreadable binary bodies in cassettes.
- Create the client inside the event loop that uses it and close it there: an ``AsyncOpenAI``
  reused across ``asyncio.run`` calls fails with "Event loop is closed".
"""

from __future__ import annotations

import os

import openai

from evalsuite.cases.schema import ModelSettings
from evalsuite.errors import MissingCredentials

# The GA Azure OpenAI data-plane version used when neither the case nor OPENAI_API_VERSION names one.
DEFAULT_AZURE_API_VERSION = "2024-10-21"
REPLAY_API_KEY = "sk-evalsuite-replay-placeholder"
REPLAY_AZURE_ENDPOINT = "https://evalsuite-replay.openai.azure.com"
CLIENT_HEADERS = {"Accept-Encoding": "gzip"}


def endpoint(model: ModelSettings) -> str:
    """The path tail the SDK calls for ``model`` (what cassettes match on, with the body)."""
    tail = "chat/completions" if model.api == "chat" else "completions"
    return f"deployments/{model.name}/{tail}" if model.provider == "azure_openai" else tail


def make_client(model: ModelSettings, *, replay: bool) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` (or ``AsyncAzureOpenAI``) for ``model``; ``replay`` allows running without secrets.

    For ``provider: azure_openai`` ``model.name`` is the deployment and ``model.base_url``, when
    given, is the resource endpoint (``https://<resource>.openai.azure.com``).
    """
    if model.provider == "azure_openai":
        return _azure_client(model, replay=replay)
    api_key = None
    if not os.environ.get("OPENAI_API_KEY"):
        if not replay:
            raise MissingCredentials(
                "OPENAI_API_KEY is not set: export OPENAI_API_KEY to call the model live "
                "(any non-empty value for a local server that ignores keys), "
                "or replay recorded cassettes with --record-mode=none"
            )
        api_key = REPLAY_API_KEY
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=model.base_url,  # None -> OPENAI_BASE_URL -> api.openai.com
        timeout=model.timeout,
        max_retries=0,
        default_headers=CLIENT_HEADERS,
    )


def _azure_client(model: ModelSettings, *, replay: bool) -> openai.AsyncAzureOpenAI:
    has_credential = bool(os.environ.get("AZURE_OPENAI_API_KEY") or os.environ.get("AZURE_OPENAI_AD_TOKEN"))
    api_key = None
    if not has_credential:
        if not replay:
            raise MissingCredentials(
                "AZURE_OPENAI_API_KEY is not set: export AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN) to call "
                f"the Azure deployment {model.name!r} live, or replay recorded cassettes with --record-mode=none"
            )
        api_key = REPLAY_API_KEY
    endpoint = model.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
    if not endpoint:
        if not replay:
            raise MissingCredentials(
                "AZURE_OPENAI_ENDPOINT is not set: export AZURE_OPENAI_ENDPOINT=https://<resource>.openai.azure.com "
                "or give model.base_url in the case file"
            )
        endpoint = REPLAY_AZURE_ENDPOINT
    return openai.AsyncAzureOpenAI(
        api_key=api_key,
        azure_endpoint=endpoint,
        azure_deployment=model.name,
        api_version=model.api_version or os.environ.get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION,
        timeout=model.timeout,
        max_retries=0,
        default_headers=CLIENT_HEADERS,
    )
