"""The OpenAI wire format -> Answer: one reader for live responses and for recorded ones.

Live and replayed answers must be identical field by field (text, logprobs, usage, latency), so both
paths go through :func:`answer_from_body`; the recorded latency travels in ``LATENCY_HEADER``.
A 2xx body that is not a completion (a proxy's HTML page, a login form) is an error, never an empty
answer: :func:`completion_body` says what came instead, scrubbed of secrets and cut short. A completion
with a value of the wrong type (``"text": 5``) is such an error too, naming the field: the same check
a cassette passes when it is loaded, repeated here for live bodies and journal-recovered ones.
"""

from __future__ import annotations

import html
from typing import Any

import orjson

from evalsuite._util.secrets import scrub
from evalsuite.cassettes import LATENCY_HEADER
from evalsuite.cassettes._format import ShapeError, check_completion, recorded_latency_ms
from evalsuite.records import Answer, Call

EXCERPT_CHARS = 200  # of a body that is not what the API sends, in an error message


class NotACompletion(ValueError):
    """A 2xx response whose body is not a completion's JSON; the message says what it is instead."""


def excerpt(body: bytes | str) -> str:
    """The start of a body for an error message: secrets scrubbed, whitespace folded, cut short."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    folded = " ".join(scrub(html.unescape(text)).split())  # an HTML page may spell a key as &#115;&#107;...
    return repr(folded[:EXCERPT_CHARS] + ("..." if len(folded) > EXCERPT_CHARS else ""))


def completion_body(content: bytes | str, status: int = 200) -> dict[str, Any]:
    """The decoded body of a completion; ``NotACompletion`` when it is HTML, other text or other JSON."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        what = "HTML" if content.lstrip()[:1] in (b"<", "<") else "non-JSON text"
        raise NotACompletion(f"the endpoint answered HTTP {status} with {what}, not the API's JSON: "
                             f"{excerpt(content)}") from None
    if not is_completion(data):
        raise NotACompletion(f"the endpoint answered HTTP {status} with JSON that is not a completion "
                             f"(no 'choices' list): {excerpt(content)}")
    try:
        check_completion(data, "body")
    except ShapeError as exc:
        raise NotACompletion(f"the endpoint answered HTTP {status} with a completion evalsuite cannot read: "
                             f"{exc}") from None
    return data


def is_completion(data: object) -> bool:
    """The shape every reader here relies on: an object with a list of choice objects."""
    choices = data.get("choices") if isinstance(data, dict) else None
    return isinstance(choices, list) and all(isinstance(choice, dict) for choice in choices)


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
    content = response["body"]["string"] or b"null"
    if status >= 400:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            return Answer(call.example_id, call.sample, error=f"HTTP {status}: {excerpt(content)}", error_kind="api")
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message", error) if isinstance(error, dict) else error
        return Answer(call.example_id, call.sample, error=f"HTTP {status}: {message}", error_kind="api")
    try:
        data = completion_body(content, status)
        latency_ms = recorded_latency_ms(response["headers"], LATENCY_HEADER, "the recorded response's headers")
    except (NotACompletion, ShapeError) as exc:  # recorded by an older evalsuite, which kept such responses
        return Answer(call.example_id, call.sample, error=str(exc), error_kind="api")
    return answer_from_body(call, data, None if latency_ms is None else latency_ms / 1000, 0)


def estimate_tokens(call: Call) -> float:
    """Tokens a call will use, before sending: prompt chars / 4 plus the completion cap."""
    prompt, completion = estimated_usage(call)
    return prompt + completion


def estimated_usage(call: Call) -> tuple[float, float]:
    """(prompt, completion) tokens before sending: prompt chars / 4, and the completion cap (0 when unset)."""
    body = call.body
    if "messages" in body:
        chars = sum(len(m.get("content") or "") if isinstance(m.get("content"), str) else len(str(m.get("content")))
                    for m in body["messages"])
    else:
        prompt = body.get("prompt", "")
        chars = len(prompt) if isinstance(prompt, str) else len(str(prompt))
    return chars / 4, float(body.get("max_tokens") or body.get("max_completion_tokens") or 0)
