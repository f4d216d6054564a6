"""Calls as the engine sends them, through the real openai SDK, for the cassette tests."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import openai

from evalsuite.records import Call

META = {"dataset_fingerprint": "fp-1", "item_id": "sentiment"}
OFFLINE = "http://127.0.0.1:9/v1"  # nothing listens there: a replay that reached the network would fail


def call(example: str, text: str, sample: int = 0, **params: Any) -> Call:
    body = {"model": "test-model", "messages": [{"role": "user", "content": text}], "temperature": 0, **params}
    return Call(example, sample, "chat", body)


def headers(c: Call) -> dict[str, str]:
    return {"x-evalsuite-example": str(c.key), "x-evalsuite-sent-at": repr(time.time())}


def ask(client: openai.OpenAI, c: Call) -> str:
    return client.chat.completions.create(**c.body, extra_headers=headers(c)).choices[0].message.content


def openai_client(base_url: str, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, **kw)


def azure_client(endpoint: str, deployment: str, **kw: Any) -> openai.AzureOpenAI:
    options = {"api_key": "azure-test", "api_version": "2024-10-21", "max_retries": 0, **kw}
    return openai.AzureOpenAI(azure_endpoint=endpoint, azure_deployment=deployment, **options)


def interactions(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["interactions"]


def answer_text(response: dict[str, Any] | None) -> str:
    """The message content of a recorded response dict (what ``CassetteHandle.play`` returns)."""
    assert response is not None, "no recording played"
    return str(json.loads(response["body"]["string"])["choices"][0]["message"]["content"])


class Counting:
    """A responder whose answer changes on every call, so replay order is visible."""

    def __init__(self) -> None:
        self.counter = itertools.count()

    def __call__(self, body: dict[str, Any]) -> str:
        return f"answer {next(self.counter)}"
