"""The cassette file: readable JSON, loaded fast, written atomically, never silently replaced.

``{"version": 1, "metadata": {...}, "interactions": [{"request": {...}, "response": {...}}]}``,
indented, keys sorted; a JSON request body is stored parsed under ``body_json`` and a JSON response
body under ``body.json`` (plain text under ``body`` / ``body.string``, binary as base64), so diffs
are readable. Metadata: ``dataset_fingerprint``, ``item_id``, ``evalsuite_version``,
``recorded_at``. Files are loaded with orjson and written atomically (temp file with the pid in its
name, fsync, ``os.replace``). A cassette that cannot be parsed raises :class:`CassetteError` naming
the file: it is never silently re-recorded. Plugged into vcrpy as its serializer and persister.
"""

from __future__ import annotations

import base64
import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.request import Request

from evalsuite._util.atomic import write_atomic
from evalsuite._util.jsonable import compact_json
from evalsuite.cassettes._keys import BUILT_IN_KEYS
from evalsuite.errors import CassetteError

Interactions = tuple[list[Request], list[dict[str, Any]], dict[str, Any]]  # requests, responses, metadata


def _encode_body(body: Any) -> tuple[str, Any]:
    """(layout key, value): parsed JSON when the body is a JSON object/array, else text, else base64."""
    if body is None:
        return "string", None
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return "base64", base64.b64encode(body).decode("ascii")
    else:
        text = body
    if text.lstrip()[:1] in ("{", "["):
        with suppress(ValueError):
            return "json", orjson.loads(text)
    return "string", text


def _decode_body(layout: dict[str, Any]) -> bytes | None:
    if "json" in layout:
        return compact_json(layout["json"])
    if "base64" in layout:
        return base64.b64decode(layout["base64"])
    text = layout.get("string")
    return text.encode("utf-8") if isinstance(text, str) else text


def encode_interaction(request: Request, response: dict[str, Any]) -> dict[str, Any]:
    kind, value = _encode_body(request.body)
    req: dict[str, Any] = {
        "method": request.method,
        "uri": request.uri,
        "headers": {k: [v] for k, v in request.headers.items()},
        {"json": "body_json", "string": "body", "base64": "body_base64"}[kind]: value,
    }
    kind, value = _encode_body(response["body"]["string"])
    resp = {"status": response["status"], "headers": response["headers"], "body": {kind: value}}
    return {"request": req, "response": resp}


def decode_interaction(interaction: dict[str, Any]) -> tuple[Request, dict[str, Any]]:
    """The vcrpy request (keyed with the built-in key, from the already parsed body) and response."""
    req = interaction["request"]
    body: bytes | None
    if "body_json" in req:
        parsed = req["body_json"]
        body = compact_json(parsed)
    else:
        body = _decode_body({"base64": req["body_base64"]} if "body_base64" in req else {"string": req.get("body")})
        parsed = body
    request = Request(req["method"], req["uri"], body, req["headers"])
    BUILT_IN_KEYS.remember(request, BUILT_IN_KEYS.of(req["method"], req["uri"], parsed, req["headers"]))
    resp = interaction["response"]
    response = {"status": resp["status"], "headers": resp["headers"], "body": {"string": _decode_body(resp["body"])}}
    return request, response


class JsonSerializer:
    """vcrpy serializer: readable, diff-friendly JSON (2-space indent, sorted keys), parsed with orjson."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> bytes:
        interactions = [
            encode_interaction(request, response)
            for request, response in zip(cassette_dict["requests"], cassette_dict["responses"], strict=True)
        ]
        data = {"version": 1, "metadata": cassette_dict.get("metadata") or {}, "interactions": interactions}
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"

    @staticmethod
    def deserialize(data: bytes) -> Interactions:
        return JsonSerializer.decode(orjson.loads(data))

    @staticmethod
    def decode(parsed: Any) -> Interactions:
        """The interactions of a parsed file, each checked and decoded in turn (and dropped from ``parsed``)."""
        validate_layout(parsed)
        interactions = parsed["interactions"]
        requests, responses = [], []
        for index, interaction in enumerate(interactions):
            validate_interaction(index, interaction)
            request, response = decode_interaction(interaction)
            requests.append(request)
            responses.append(response)
            interactions[index] = None  # freed as it is decoded: the parsed file and its decoding never peak together
        return requests, responses, parsed.get("metadata") or {}


class ShapeError(ValueError):
    """A parsed cassette whose layout is not the one written here; ``where`` is e.g. ``interaction 3: response.status``."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where, self.problem = where, problem


def _expect(value: Any, kind: type | tuple[type, ...], where: str, example: str) -> None:
    if not isinstance(value, kind) or isinstance(value, bool) and (kind is int or kind == _NUMBER):
        raise ShapeError(where, f"expected {example}, got {type(value).__name__} {_short(value)}")


LATENCY_HEADER = "x-evalsuite-latency-ms"  # on each recorded response: the live latency, replayed as measured
_NUMBER = (int, float)
_TEXT_OR_NULL = (str, type(None))
_OBJECT_OR_NULL = (dict, type(None))
USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
RESPONSES_USAGE_COUNTS = ("input_tokens", "output_tokens", "total_tokens")


def is_completion(data: object) -> bool:
    """The shapes every reader relies on: an object with a list of choice objects (chat, completions), or with a
    list of output items and no choices (a Responses API response)."""
    if not isinstance(data, dict):
        return False
    items = data["choices"] if "choices" in data else data.get("output")
    return isinstance(items, list) and all(isinstance(item, dict) for item in items)


def check_completion(data: Any, where: str) -> None:
    """Raise :class:`ShapeError` unless ``data`` is a completion body as ``model._wire`` reads it.

    Why here and in the wire reader: a hand-edited value (``"text": 5``) would otherwise reach parsing
    or the token sums as a TypeError naming neither the file nor the field. Only what the reader uses
    is checked, with plain isinstance tests, so a 25k-interaction cassette still loads quickly."""
    _expect(data, dict, where, 'a completion object {"choices": [...], ...}')
    if "choices" not in data and "output" in data:
        _check_response(data, where)
        return
    choices = data.get("choices")
    _expect(choices, list, f"{where}.choices", "a list of choice objects")
    for index, choice in enumerate(choices):
        at = f"{where}.choices[{index}]"
        _expect(choice, dict, at, "a choice object")
        if "message" in choice:
            message = choice["message"]
            _expect(message, _OBJECT_OR_NULL, f"{at}.message", 'an object like {"content": "..."} or null')
            if message:
                _expect(message.get("content"), _TEXT_OR_NULL, f"{at}.message.content", "a string or null")
                _check_tool_calls(message, f"{at}.message")
        _expect(choice.get("text"), _TEXT_OR_NULL, f"{at}.text", "a string or null")
        _expect(choice.get("finish_reason"), _TEXT_OR_NULL, f"{at}.finish_reason", "a string or null")
        logprobs = choice.get("logprobs")
        _expect(logprobs, _OBJECT_OR_NULL, f"{at}.logprobs", "an object or null")
        if logprobs:
            _check_logprobs(logprobs, f"{at}.logprobs")
    usage = data.get("usage")
    _expect(usage, _OBJECT_OR_NULL, f"{where}.usage", "an object of token counts or null")
    for count in USAGE_COUNTS if usage else ():
        if usage.get(count) is not None:
            _expect(usage[count], int, f"{where}.usage.{count}", "an integer token count or null")
    _expect(data.get("system_fingerprint"), _TEXT_OR_NULL, f"{where}.system_fingerprint", "a string or null")


def _check_tool_calls(message: dict[str, Any], where: str) -> None:
    """A chat message's ``tool_calls`` (and the legacy ``function_call``): names and argument texts are strings."""
    calls = message.get("tool_calls")
    _expect(calls, (list, type(None)), f"{where}.tool_calls", "a list of tool calls or null")
    functions = [(f"{where}.tool_calls[{index}]", call) for index, call in enumerate(calls or ())]
    if message.get("function_call") is not None:
        functions.append((where, {"function": message["function_call"]}))
    for at, call in functions:
        _expect(call, dict, at, 'a tool call like {"type": "function", "function": {...}}')
        function = call.get("function")
        if function is None and call.get("type", "function") != "function":
            continue  # another kind of tool call (custom tools): not read
        at = f"{at}.function" if at.endswith("]") else f"{at}.function_call"
        _expect(function, dict, at, 'an object like {"name": "get_weather", "arguments": "{...}"}')
        _expect(function.get("name"), str, f"{at}.name", "the function's name")
        _expect(function.get("arguments"), str, f"{at}.arguments", "the arguments as JSON text")


def _check_response(data: dict[str, Any], where: str) -> None:
    """A Responses API body: output items (messages with output_text parts, function calls), usage, status."""
    for index, item in enumerate(data["output"]):
        at = f"{where}.output[{index}]"
        _expect(item, dict, at, 'an output item like {"type": "message", "content": [...]}')
        if item.get("type") == "message":
            content = item.get("content")
            _expect(content, (list, type(None)), f"{at}.content", "a list of content parts")
            for number, part in enumerate(content or ()):
                _expect(part, dict, f"{at}.content[{number}]", 'a content part like {"type": "output_text", ...}')
                if part.get("type") == "output_text":
                    _expect(part.get("text"), str, f"{at}.content[{number}].text", "a string")
                    logprobs, tokens_at = part.get("logprobs"), f"{at}.content[{number}].logprobs"
                    _expect(logprobs, (list, type(None)), tokens_at, "a list or null")
                    for token, item in enumerate(logprobs or ()):
                        _expect(item, dict, f"{tokens_at}[{token}]", 'an object like {"logprob": -0.1}')
                        _expect(item.get("logprob"), _NUMBER, f"{tokens_at}[{token}].logprob", "a number")
        elif item.get("type") == "function_call":
            _expect(item.get("name"), str, f"{at}.name", "the function's name")
            _expect(item.get("arguments"), str, f"{at}.arguments", "the arguments as JSON text")
    _expect(data.get("usage"), _OBJECT_OR_NULL, f"{where}.usage", "an object of token counts or null")
    usage = data.get("usage") or {}
    for count in RESPONSES_USAGE_COUNTS:
        if usage.get(count) is not None:
            _expect(usage[count], int, f"{where}.usage.{count}", "an integer token count or null")
    _expect(data.get("status"), _TEXT_OR_NULL, f"{where}.status", "a string or null")
    _expect(data.get("incomplete_details"), _OBJECT_OR_NULL, f"{where}.incomplete_details", "an object or null")


def _check_logprobs(logprobs: dict[str, Any], where: str) -> None:
    """Chat's ``content`` list of ``{"logprob": x}`` and legacy completions' ``token_logprobs`` list."""
    content = logprobs.get("content")
    _expect(content, (list, type(None)), f"{where}.content", 'a list of {"logprob": -0.1} objects or null')
    for index, item in enumerate(content or ()):
        _expect(item, dict, f"{where}.content[{index}]", 'an object like {"logprob": -0.1}')
        _expect(item.get("logprob"), _NUMBER, f"{where}.content[{index}].logprob", "a number")
    tokens = logprobs.get("token_logprobs")
    _expect(tokens, (list, type(None)), f"{where}.token_logprobs", "a list of numbers or null")
    for index, value in enumerate(tokens or ()):
        if value is not None:
            _expect(value, _NUMBER, f"{where}.token_logprobs[{index}]", "a number or null")


def recorded_latency_ms(headers: dict[str, Any], header: str, where: str) -> float | None:
    """The recorded latency header's value; :class:`ShapeError` unless it is a finite, non-negative number."""
    values = headers.get(header)
    if not values:
        return None
    try:
        latency = float(values[0])
    except (TypeError, ValueError):
        latency = math.nan
    if not 0 <= latency < math.inf:
        raise ShapeError(f"{where}.{header}", f"expected milliseconds as a number, e.g. [\"352.7\"], "
                                                      f"got {_short(values)}")
    return latency


def _response_body(body: dict[str, Any], where: str) -> Any:
    """The completion a 2xx response body holds (stored parsed under ``json``; text or base64 if hand-written)."""
    if "json" in body:
        return body["json"]
    key = "string" if "string" in body else "base64"
    try:
        return orjson.loads(_decode_body(body) or b"")
    except orjson.JSONDecodeError:
        raise ShapeError(f"{where}.{key}", "expected a completion's JSON (evalsuite records only "
                                           f"completions), got {_short(body[key])}") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _headers(headers: Any, where: str) -> None:
    _expect(headers, dict, where, 'an object of header lists, e.g. {"content-type": ["application/json"]}')
    for name, values in headers.items():
        _expect(values, list, f"{where}.{name}", 'a list of strings, e.g. ["application/json"]')
        for value in values:
            _expect(value, str, f"{where}.{name}", "a list of strings")


def _one_body(holder: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    present = [key for key in keys if key in holder]
    if len(present) != 1:
        raise ShapeError(where, f"expected exactly one of {', '.join(keys)}, found {', '.join(present) or 'none'}")
    key = present[0]
    value = holder[key]
    if key.endswith("base64"):
        _expect(value, str, f"{where}.{key}", "base64 text")
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            raise ShapeError(f"{where}.{key}", "not valid base64") from None
    elif key in ("body", "string"):
        _expect(value, (str, type(None)), f"{where}.{key}", "text or null")


def validate(parsed: Any) -> None:
    """Raise :class:`ShapeError` naming the interaction and field unless ``parsed`` has the layout written here."""
    validate_layout(parsed)
    for index, interaction in enumerate(parsed["interactions"]):
        validate_interaction(index, interaction)


def validate_layout(parsed: Any) -> None:
    """Raise :class:`ShapeError` unless ``parsed`` has the file layout written here; then each interaction is checked
    by :func:`validate_interaction` before it is decoded.

    Why before decoding: a hand-edited file (a status written as "200", an interaction as a string) would
    otherwise fail deep inside replay as a Python error that names neither the file nor the field."""
    _expect(parsed, dict, "the file", 'an object {"version": 1, "metadata": {...}, "interactions": [...]}')
    if "version" in parsed and parsed["version"] != 1:
        raise ShapeError("version", f"expected 1 (this evalsuite's cassette format), got {_short(parsed['version'])}")
    if "interactions" not in parsed:
        raise ShapeError("the file", "no 'interactions' list: not an evalsuite cassette")
    _expect(parsed["interactions"], list, "interactions", "a list of {request, response} objects")
    _expect(parsed.get("metadata") or {}, dict, "metadata", "an object")


def validate_interaction(index: int, interaction: Any) -> None:
    """Raise :class:`ShapeError` naming the interaction and field unless it has the layout written here."""
    from evalsuite.cassettes._embeddings import check_embeddings, is_embeddings  # it builds on this module

    where = f"interaction {index}"
    _expect(interaction, dict, where, "an object with 'request' and 'response'")
    for part in ("request", "response"):
        if part not in interaction:
            raise ShapeError(where, f"no '{part}'")
        _expect(interaction[part], dict, f"{where}: {part}", "an object")
    request, response = interaction["request"], interaction["response"]
    for field in ("method", "uri"):
        if field not in request:
            raise ShapeError(f"{where}: request", f"no '{field}'")
        _expect(request[field], str, f"{where}: request.{field}", "text, e.g. POST" if field == "method" else "a URL")
    _headers(request.get("headers", {}), f"{where}: request.headers")
    _one_body(request, ("body_json", "body", "body_base64"), f"{where}: request")
    for field in ("status", "headers", "body"):
        if field not in response:
            raise ShapeError(f"{where}: response", f"no '{field}'")
    status = response["status"]
    _expect(status, dict, f"{where}: response.status", 'an object like {"code": 200, "message": "OK"}')
    _expect(status.get("code"), int, f"{where}: response.status.code", "an integer HTTP status, e.g. 200")
    if not 200 <= status["code"] < 300:
        raise ShapeError(f"{where}: response.status.code", "expected a 2xx status (evalsuite records only "
                                                           f"successful completions), got {status['code']}")
    _headers(response["headers"], f"{where}: response.headers")
    recorded_latency_ms(response["headers"], LATENCY_HEADER, f"{where}: response.headers")
    _expect(response["body"], dict, f"{where}: response.body", 'an object like {"json": {...}} or {"string": "..."}')
    _one_body(response["body"], ("json", "string", "base64"), f"{where}: response.body")
    key = next(k for k in ("json", "string", "base64") if k in response["body"])
    body = _response_body(response["body"], f"{where}: response.body")
    (check_embeddings if is_embeddings(body) else check_completion)(body, f"{where}: response.body.{key}")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Loading creates ~10 objects per interaction and frees none: young collections would only re-scan them."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class AtomicPersister:
    """vcrpy persister: atomic writes; loading a corrupt file is an error, not an empty cassette."""

    @staticmethod
    def load_cassette(cassette_path: str | Path, serializer: Any) -> Interactions:
        path = Path(cassette_path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CassetteNotFoundError() from None
        try:
            parsed = orjson.loads(data)
            del data  # 86 MB for 25k interactions: not kept while they are decoded
            loaded: Interactions = serializer.decode(parsed)
        except ShapeError as exc:
            raise CassetteError(
                f"{path}: {exc}. Nothing was sent and the file is unchanged. Fix: correct that field by hand, "
                f"restore the file (git checkout -- '{path}'), or re-record it with --record-mode=rewrite."
            ) from None
        except Exception as exc:  # any parse or layout problem: name the file, never treat as empty
            raise CassetteError(
                f"{path}: cassette cannot be loaded ({exc}). It is not re-recorded silently: restore it "
                f"(git checkout -- '{path}') or re-record it with --record-mode=rewrite."
            ) from None
        return loaded

    @staticmethod
    def save_cassette(cassette_path: str | Path, cassette_dict: dict[str, Any], serializer: Any) -> None:
        write_atomic(Path(cassette_path), serializer.serialize(cassette_dict), what="cassette")


def load(path: Path) -> Interactions:
    """A cassette file's interactions; ``([], [], {})`` when there is no file."""
    try:
        return AtomicPersister.load_cassette(path, JsonSerializer)
    except CassetteNotFoundError:
        return [], [], {}
