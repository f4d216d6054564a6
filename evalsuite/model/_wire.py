"""The OpenAI wire format -> Answer: one reader for live responses and for recorded ones.

Live and replayed answers must be identical field by field (text, tool calls, logprobs, usage, latency), so
both paths go through :func:`answer_from_body`; the recorded latency travels in ``LATENCY_HEADER``. Three
bodies are read: chat completions, legacy completions and Responses API responses (whose ``output_text``
parts make the text, ``function_call`` items the tool calls, ``input_tokens``/``output_tokens`` the usage and
``status`` the finish reason, in chat's words: ``stop``, ``tool_calls``, ``length``). :func:`endpoint_methods`
is the other direction: which SDK method sends a call of each API.
A 2xx body that is not a completion (a proxy's HTML page, a login form) is an error, never an empty
answer: :func:`completion_body` says what came instead, scrubbed of secrets and cut short. A completion
with a value of the wrong type (``"text": 5``) is such an error too, naming the field: the same check
a cassette passes when it is loaded, repeated here for live bodies and journal-recovered ones.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import orjson

from evalsuite._util.secrets import scrub
from evalsuite.cassettes import LATENCY_HEADER
from evalsuite.cassettes._embeddings import check_embeddings, is_embeddings
from evalsuite.cassettes._format import ShapeError, check_completion, is_completion, recorded_latency_ms
from evalsuite.model._alternatives import token_alternatives
from evalsuite.model._embeddings import EMBEDDINGS, embeddings_answer
from evalsuite.records import Answer, Call

EXCERPT_CHARS = 200  # of a body that is not what the API sends, in an error message


def endpoint_methods(client: openai.AsyncOpenAI) -> dict[str, Callable[..., Awaitable[Any]]]:
    """The SDK's raw-response ``create`` for each ``Call.api``; the engine passes each call's body through as is
    (the SDK's overloads are per parameter set)."""
    return {
        "chat": client.chat.completions.with_raw_response.create,
        "completions": client.completions.with_raw_response.create,
        "responses": client.responses.with_raw_response.create,
        "embeddings": client.embeddings.with_raw_response.create,  # a metric's call (semantic_similarity)
    }


class NotACompletion(ValueError):
    """A 2xx response whose body is not a completion's JSON; the message says what it is instead."""


def excerpt(body: bytes | str) -> str:
    """The start of a body for an error message: secrets scrubbed, whitespace folded, cut short."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    folded = " ".join(scrub(html.unescape(text)).split())  # an HTML page may spell a key as &#115;&#107;...
    return repr(folded[:EXCERPT_CHARS] + ("..." if len(folded) > EXCERPT_CHARS else ""))


def completion_body(content: bytes | str, status: int = 200, api: str = "chat") -> dict[str, Any]:
    """The decoded body of a completion (of an embeddings list for ``api="embeddings"``); ``NotACompletion`` when
    it is HTML, other text or other JSON."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        what = "HTML" if content.lstrip()[:1] in (b"<", "<") else "non-JSON text"
        raise NotACompletion(f"the endpoint answered HTTP {status} with {what}, not the API's JSON: "
                             f"{excerpt(content)}") from None
    if api == EMBEDDINGS:
        return _checked(data, content, status, is_embeddings, check_embeddings,
                        "an embeddings list (no 'data' list of embeddings)", "embeddings")
    return _checked(data, content, status, is_completion, check_completion,
                    "a completion (no 'choices' or 'output' list)", "a completion")


def _checked(data: Any, content: bytes | str, status: int, looks_right: Callable[[Any], bool],
             check: Callable[[Any, str], None], expected: str, what: str) -> dict[str, Any]:
    if not looks_right(data):
        raise NotACompletion(f"the endpoint answered HTTP {status} with JSON that is not {expected}: {excerpt(content)}")
    try:
        check(data, "body")
    except ShapeError as exc:
        raise NotACompletion(f"the endpoint answered HTTP {status} with {what} evalsuite cannot read: {exc}") from None
    result: dict[str, Any] = data
    return result


def answer_from_body(call: Call, data: dict[str, Any], latency_s: float | None, retries: int) -> Answer:
    """An Answer from a completion's JSON body (chat, legacy completions, or a Responses API response), or an
    embeddings list's."""
    if call.api == EMBEDDINGS:
        return embeddings_answer(call, data, latency_s, retries)
    if "choices" not in data and "output" in data:
        return _from_response(call, data, latency_s, retries)
    usage = data.get("usage") or {}
    text = finish = None
    logprobs: list[float] | None = None
    tool_calls: list[dict[str, str]] | None = None
    alternatives = None
    choices = data.get("choices") or []
    if choices:
        choice = choices[0]
        finish = choice.get("finish_reason")
        recorded_logprobs = choice.get("logprobs") or {}
        alternatives = token_alternatives(call.api, call.body, recorded_logprobs)
        if call.api != "completions":
            message = choice.get("message") or {}
            text = message.get("content")
            tool_calls = _chat_tool_calls(message)
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
        tokens=alternatives[0] if alternatives else None,
        top_logprobs=alternatives[1] if alternatives else None,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_s=latency_s,
        finish_reason=finish,
        system_fingerprint=data.get("system_fingerprint"),
        retries=retries,
        tool_calls=tool_calls,
    )


def _chat_tool_calls(message: dict[str, Any]) -> list[dict[str, str]] | None:
    """``message.tool_calls`` as ``[{name, arguments}]`` (the legacy ``function_call`` when it is all there is)."""
    calls = message.get("tool_calls")
    functions = [call.get("function") for call in calls or ()]
    if not calls and message.get("function_call") is not None:
        functions = [message["function_call"]]
    found = [{"name": f["name"], "arguments": f["arguments"]} for f in functions if isinstance(f, dict)]
    return found or None


def _from_response(call: Call, data: dict[str, Any], latency_s: float | None, retries: int) -> Answer:
    """A Responses API body: the text is every ``output_text`` part joined (the SDK's ``output_text``)."""
    texts: list[str] = []
    logprobs: list[float] = []
    tool_calls = []
    for item in data.get("output") or ():
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    texts.append(part["text"])
                    logprobs += [token["logprob"] for token in part.get("logprobs") or ()]
        elif item.get("type") == "function_call":
            tool_calls.append({"name": item["name"], "arguments": item["arguments"]})
    status = data.get("status")
    if status == "incomplete":
        reason = (data.get("incomplete_details") or {}).get("reason")
        finish = "length" if reason == "max_output_tokens" else reason or status
    elif status == "completed":
        finish = "tool_calls" if tool_calls else "stop"
    else:
        finish = status
    usage = data.get("usage") or {}
    return Answer(
        example_id=call.example_id,
        sample=call.sample,
        text="".join(texts) if texts else None,
        token_logprobs=logprobs or None,
        prompt_tokens=usage.get("input_tokens"),
        completion_tokens=usage.get("output_tokens"),
        latency_s=latency_s,
        finish_reason=finish,
        retries=retries,
        tool_calls=tool_calls or None,
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
        data = completion_body(content, status, call.api)
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
    messages = body.get("messages", body.get("input"))
    if isinstance(messages, list):
        chars = sum(len(m.get("content") or "") if isinstance(m.get("content"), str) else len(str(m.get("content")))
                    for m in messages if isinstance(m, dict))
        chars += len(str(body.get("instructions") or ""))
    else:
        prompt = body.get("prompt", messages or "")
        chars = len(prompt) if isinstance(prompt, str) else len(str(prompt))
    cap = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens") or 0
    return chars / 4, float(cap)
