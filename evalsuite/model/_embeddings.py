"""Embeddings calls (``client.embeddings.create``): the endpoint they go to and the Answer they give.

Why a call kind of its own: ``semantic_similarity`` embeds answers through the same engine, cassettes and
replay as every other call, so its recordings are matched, redacted and replayed offline alike. The body
names ``encoding_format`` itself: the SDK would otherwise add ``base64`` to the request, which the replay
path (keyed on the body as built) would not know about; ``float`` keeps the recorded vectors readable. A vector
may come back as a list of floats, or as one vector per token (llama.cpp's server for a model without pooling),
which is mean-pooled here, so the metric always sees one vector per input.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from evalsuite.cases.schema import ModelSettings
from evalsuite.model._providers import get_provider
from evalsuite.records import Answer, Call

EMBEDDINGS: Final = "embeddings"


def embeddings_call(example_id: str, sample: int, texts: list[str], model: ModelSettings) -> Call:
    """One request embedding ``texts`` (one vector each, in order), for one sample of one example."""
    return Call(example_id, sample, EMBEDDINGS, {"model": model.name, "input": texts, "encoding_format": "float"})


def embeddings_endpoint(model: ModelSettings) -> str:
    """The URL path tail of ``model``'s embeddings: its provider's chat endpoint with ``embeddings`` as the tail
    (``embeddings``, or ``deployments/<name>/embeddings`` on Azure)."""
    chat = get_provider(model.provider).endpoint(model.model_copy(update={"api": "chat"}))
    return chat[: -len("chat/completions")] + EMBEDDINGS if chat.endswith("chat/completions") else EMBEDDINGS


def embeddings_answer(call: Call, data: dict[str, Any], latency_s: float | None, retries: int) -> Answer:
    """An Answer holding one vector per input, in input order, from an embeddings body already checked."""
    items = sorted(data.get("data") or [], key=lambda item: item.get("index") or 0)
    usage = data.get("usage") or {}
    return Answer(call.example_id, call.sample, embeddings=[vector(item["embedding"]) for item in items],
                  prompt_tokens=usage.get("prompt_tokens"), latency_s=latency_s, retries=retries)


def vector(value: Any) -> list[float]:
    """One input's vector, from floats or per-token vectors (mean-pooled)."""
    if value and isinstance(value[0], list):
        return np.asarray(value, dtype=float).mean(axis=0).tolist()
    return [float(v) for v in value]
