"""The OpenAI wire format -> Answer: one reader for live responses and for recorded ones.

Live and replayed answers must be identical field by field (text, logprobs, usage, latency), so both
paths go through :func:`answer_from_body`; the recorded latency travels in ``LATENCY_HEADER``.
"""

from __future__ import annotations

from typing import Any

import orjson

from evalsuite.cassettes import LATENCY_HEADER
from evalsuite.records import Answer, Call


def answer_from_body(call: Call, data: dict[str, Any], latency_s: float | None, retries: int) -> Answer:
    """An Answer from a completion's JSON body (chat or legacy completions)."""
    usage = data.get("usage") or {}
    text = finish = None
    logprobs: list[float] | None = None
    choices = data.get("choices") or []
    if choices:
        choice = choices[0]
        finish = choice.get("finish_reason")
        recorded_logprobs = choice.get("logprobs") or {}
        if call.api == "chat":
            text = (choice.get("message") or {}).get("content")
            if recorded_logprobs.get("content") is not None:
                logprobs = [item["logprob"] for item in recorded_logprobs["content"]]
        else:
            text = choice.get("text")
            if recorded_logprobs.get("token_logprobs") is not None:
                logprobs = [lp for lp in recorded_logprobs["token_logprobs"] if lp is not None]
    return Answer(
        example_id=call.example_id,
        sample=call.sample,
        text=text,
        token_logprobs=logprobs,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_s=latency_s,
        finish_reason=finish,
        system_fingerprint=data.get("system_fingerprint"),
        retries=retries,
    )


def recorded_answer(call: Call, response: dict[str, Any]) -> Answer:
    """An Answer from a cassette's recorded response dict (status, headers, body)."""
    status = response["status"]["code"]
    body = orjson.loads(response["body"]["string"] or b"null")
    if status >= 400:
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message", error) if isinstance(error, dict) else error
        return Answer(call.example_id, call.sample, error=f"HTTP {status}: {message}", error_kind="api")
    latency = response["headers"].get(LATENCY_HEADER)
    return answer_from_body(call, body, float(latency[0]) / 1000 if latency else None, 0)


def estimate_tokens(call: Call) -> float:
    """Tokens a call will use, before sending: prompt chars / 4 plus the completion cap."""
    body = call.body
    if "messages" in body:
        chars = sum(len(m.get("content") or "") if isinstance(m.get("content"), str) else len(str(m.get("content")))
                    for m in body["messages"])
    else:
        prompt = body.get("prompt", "")
        chars = len(prompt) if isinstance(prompt, str) else len(str(prompt))
    return chars / 4 + (body.get("max_tokens") or body.get("max_completion_tokens") or 0)
