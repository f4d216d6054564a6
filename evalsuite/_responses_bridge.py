"""``serve-local --responses``: the Responses API (``/v1/responses``) in front of a chat-completions-only server.

llama-cpp-python's server has no ``/v1/responses``. To record ``api: responses`` cases from the local model, this
bridge answers it by translating: a Responses request becomes a chat-completions request to the same server and
model, and the chat answer becomes a Responses API response (``output_text`` or ``function_call`` items, usage,
status), as LiteLLM's bridge does for chat-only providers. Every other path is forwarded unchanged, so one URL
serves both. Translated: ``instructions``, ``input`` (text, or role/content messages), ``temperature``,
``top_p``, ``max_output_tokens``, ``tools``, ``tool_choice``, ``text.format`` (a JSON Schema is sent as
llama.cpp's ``{type: json_object, schema}``), output-text logprobs; ``store`` is accepted and nothing is stored.
Anything else (``previous_response_id``, tool-call items in ``input``, ...) is a 400 naming it, never ignored.
Standard library only: it runs where ``serve-local`` runs.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOGPROBS = "message.output_text.logprobs"
_SAME = ("model", "temperature", "top_p", "top_logprobs")
_KNOWN = {*_SAME, "input", "instructions", "max_output_tokens", "tools", "tool_choice", "text", "include", "store",
          "stream"}
FORWARDED_HEADERS = ("content-type", "authorization")


class Unsupported(ValueError):
    """A Responses request the bridge cannot translate faithfully: answered with HTTP 400."""


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body that asks the same thing as a Responses API body."""
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise Unsupported(f"the serve-local Responses bridge does not translate {', '.join(unknown)}")
    if body.get("stream"):
        raise Unsupported("the serve-local Responses bridge does not stream; send stream: false")
    chat: dict[str, Any] = {key: body[key] for key in _SAME if key in body}
    messages = [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
    given = body.get("input", [])
    messages += [{"role": "user", "content": given}] if isinstance(given, str) else [_message(item) for item in given]
    chat["messages"] = messages
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        chat["tools"] = [{"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
                         for tool in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif choice is not None:
        chat["tool_choice"] = choice
    form = (body.get("text") or {}).get("format") or {"type": "text"}
    if form["type"] in ("json_schema", "json_object"):
        chat["response_format"] = {"type": "json_object", **({"schema": form["schema"]} if "schema" in form else {})}
    if LOGPROBS in (body.get("include") or []):
        chat["logprobs"] = True
    return chat


def _message(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or item.get("type", "message") != "message" or "role" not in item:
        kind = item.get("type") if isinstance(item, dict) else type(item).__name__
        raise Unsupported(f"the serve-local Responses bridge translates role/content messages only, not {kind!r} items")
    content = item.get("content")
    if isinstance(content, list):  # input_text / output_text parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return {"role": item["role"], "content": content}


def response_body(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """The Responses API response for a chat completion."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = [
        {"type": "function_call", "id": f"fc_{call.get('id', index)}", "call_id": call.get("id", f"call_{index}"),
         "name": call["function"]["name"], "arguments": call["function"]["arguments"], "status": "completed"}
        for index, call in enumerate(message.get("tool_calls") or [])]
    if message.get("content") is not None or not output:
        tokens = (choice.get("logprobs") or {}).get("content")
        part: dict[str, Any] = {"type": "output_text", "text": message.get("content") or "", "annotations": []}
        if tokens is not None:
            part["logprobs"] = [{"token": t.get("token", ""), "logprob": t["logprob"], "bytes": t.get("bytes") or [],
                                 "top_logprobs": t.get("top_logprobs") or []} for t in tokens]
        output.insert(0, {"type": "message", "id": f"msg_{chat.get('id', '')}", "status": "completed",
                          "role": "assistant", "content": [part]})
    cut = choice.get("finish_reason") == "length"
    usage = chat.get("usage") or {}
    return {
        "id": f"resp_{chat.get('id', '')}", "object": "response", "created_at": chat.get("created"),
        "model": chat.get("model", model), "status": "incomplete" if cut else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None, "output": output, "store": False,
        "usage": {"input_tokens": usage.get("prompt_tokens"), "output_tokens": usage.get("completion_tokens"),
                  "total_tokens": usage.get("total_tokens")},
    }


def serve(port: int, upstream: str, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A bridge on ``host:port`` in front of ``upstream`` (``http://host:port``, no ``/v1``); call ``serve_forever``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
            self._forward(None)

        def do_POST(self) -> None:  # noqa: N802
            data = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path.split("?")[0].rstrip("/").endswith("/responses"):
                self._responses(data)
            else:
                self._forward(data)

        def _responses(self, data: bytes) -> None:
            try:
                body = json.loads(data)
                chat = chat_request(body)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self._reply(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
                return
            status, answer = self._upstream("POST", "/v1/chat/completions", json.dumps(chat).encode())
            if status != 200:
                self._reply(status, answer)
                return
            self._reply(200, response_body(json.loads(answer), str(body.get("model", ""))))

        def _forward(self, data: bytes | None) -> None:
            status, answer = self._upstream(self.command, self.path, data)
            self._reply(status, answer)

        def _upstream(self, method: str, path: str, data: bytes | None) -> tuple[int, bytes]:
            headers = {name: value for name in FORWARDED_HEADERS if (value := self.headers.get(name))}
            request = urllib.request.Request(upstream + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=600) as reply:
                    return reply.status, reply.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()
            except OSError as exc:
                return 502, json.dumps({"error": {"message": f"serve-local: the model server at {upstream} did not "
                                                             f"answer ({exc}); is it still loading?"}}).encode()

        def _reply(self, status: int, answer: Any) -> None:
            payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # quiet, like the model server
            return

    return ThreadingHTTPServer((host, port), Handler)
