"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions, completions, Responses and embeddings
protocols.

Tests and benchmarks drive the unmodified ``openai`` SDK against it. It answers deterministically
(``responder(body) -> text``), reports usage and logprobs (tokens are the answer's words, each after its
space, so they spell the text; ``alternatives(token, body) -> {token: logprob}`` adds each token's
``top_logprobs``), embeds texts as hashed bags of words (``/v1/embeddings``: texts sharing words point the same
way; ``per_token_embeddings`` answers one vector per word, as llama.cpp does for a model without pooling), serves
the Azure deployment paths (and Azure's ``/openai/responses``) and Databricks' ``/serving-endpoints`` too, and
injects latency, 429s (with ``Retry-After``) and 500s on demand. It counts the requests it holds at once
(``in_flight``, ``max_in_flight``: a budget shared across items is seen here, not in timings); ``barrier``
holds every request until that many have arrived (10 s at most), so a test knows they were in flight
together; ``latency_for(body)`` gives a request its own latency. A request with ``tools`` (and ``tool_choice``
other than "none") is answered with tool calls: ``tool_caller(body)`` gives ``[(name, arguments JSON text)]`` (default: the forced or first
tool, its required arguments filled with the last user message), in chat's ``message.tool_calls`` or the
Responses API's ``function_call`` items. ``fault`` makes every request fail
one way (``FAULTS``): "trickle" (a byte every ``trickle_delay_s``), "hang" (never answers), "404" and
"401" (JSON errors), "html200" and "html502" (a proxy's HTML page).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import json
import math
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

FAULTS = ("trickle", "hang", "404", "401", "html200", "html502")
EMBEDDING_DIMENSIONS = 32
HTML_PAGE = "<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"


def echo_responder(body: dict[str, Any]) -> str:
    """Answer with the last user message (or prompt, or Responses input), so a test can see what was sent."""
    messages = body.get("messages", body.get("input"))
    if isinstance(messages, list):
        return str(messages[-1].get("content", messages[-1]))
    return str(body.get("prompt", messages or ""))


def default_tool_caller(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The forced tool (tool_choice), else the first one, its required arguments set to the last user message."""
    choice = body.get("tool_choice")
    forced = (choice.get("function") or choice).get("name") if isinstance(choice, dict) else None
    tools = [tool.get("function", tool) for tool in body["tools"]]
    tool = next((t for t in tools if t["name"] == forced), tools[0])
    required = (tool.get("parameters") or {}).get("required", [])
    return [(tool["name"], json.dumps({name: echo_responder(body) for name in required}))]


def sentiment_responder(body: dict[str, Any]) -> str:
    """A toy classifier: 'positive' when the text has more good words than bad ones."""
    text = echo_responder(body).lower()
    good = sum(text.count(w) for w in ("good", "great", "love", "excellent", "wonderful", "best"))
    bad = sum(text.count(w) for w in ("bad", "awful", "hate", "worst", "boring", "terrible"))
    return "Positive" if good >= bad else "Negative"


class ChatServer:
    """Run with ``with ChatServer(...) as server:``; ``server.base_url`` ends in ``/v1``."""

    def __init__(
        self,
        responder: Callable[[dict[str, Any]], str] = echo_responder,
        *,
        latency_s: float = 0.0,
        rate_limit_fraction: float = 0.0,
        rate_limit_first: int = 0,
        server_error_fraction: float = 0.0,
        retry_after_s: float = 1.0,
        seed: int = 0,
        port: int = 0,
        fault: str | None = None,
        trickle_delay_s: float = 0.2,
        dumps: Callable[[Any], str] = json.dumps,
        tool_caller: Callable[[dict[str, Any]], list[tuple[str, str]] | None] = default_tool_caller,
        alternatives: Callable[[str, dict[str, Any]], dict[str, float]] | None = None,
        per_token_embeddings: bool = False,
        barrier: int = 0,
        latency_for: Callable[[dict[str, Any]], float] | None = None,
    ) -> None:
        self.tool_caller = tool_caller
        self.alternatives = alternatives
        self.per_token_embeddings = per_token_embeddings
        self.barrier = barrier
        self.latency_for = latency_for
        self.in_flight = 0
        self.max_in_flight = 0
        self.dumps = dumps  # how answers are JSON-encoded: a test may escape every character, as some servers do
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault {fault!r}: choose one of {FAULTS}")
        self.fault = fault
        self.trickle_delay_s = trickle_delay_s
        self.received = 0  # every request, answered or not
        self._closing = False  # tells hanging and trickling handlers to end, so stop() does not wait on them
        self.responder = responder
        self.latency_s = latency_s
        self.rate_limit_fraction = rate_limit_fraction
        self.rate_limit_first = rate_limit_first  # the first N requests get a 429 whatever the fraction
        self.server_error_fraction = server_error_fraction
        self.retry_after_s = retry_after_s
        self._random = random.Random(seed)
        self._port = port
        self.requests: list[dict[str, Any]] = []  # every accepted JSON body, in arrival order
        self.headers: list[dict[str, str]] = []  # the request headers, in arrival order
        self.paths: list[str] = []  # the request paths, in arrival order
        self.arrivals: list[float] = []  # time.monotonic() of every request, on arrival: the rate the server sees
        self.statuses: Counter[int] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def azure_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def databricks_host(self) -> str:
        """What DATABRICKS_HOST would be: the workspace URL, under which ``/serving-endpoints`` answers."""
        return f"http://127.0.0.1:{self.port}"

    # -- protocol -------------------------------------------------------------------------------

    def _fault(self) -> web.Response | None:
        roll = self._random.random()
        if self.statuses[429] < self.rate_limit_first or roll < self.rate_limit_fraction:
            self.statuses[429] += 1
            return web.json_response(
                {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": "429"}},
                status=429,
                headers={"Retry-After": f"{self.retry_after_s:g}", "x-ratelimit-remaining-requests": "0"},
            )
        if roll < self.rate_limit_fraction + self.server_error_fraction:
            self.statuses[500] += 1
            return web.json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)
        return None

    async def _faulty(self, request: web.Request) -> web.StreamResponse:
        if self.fault == "hang":
            while not self._closing:
                await asyncio.sleep(0.05)
            return web.Response(status=503)
        if self.fault == "trickle":
            payload = json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": "slow " * 40}}]}).encode()
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = len(payload)
            await response.prepare(request)
            for i in range(len(payload)):
                if self._closing:
                    break
                try:
                    await response.write(payload[i:i + 1])
                except (ConnectionError, RuntimeError):  # the client gave up
                    break
                await asyncio.sleep(self.trickle_delay_s)
            return response
        status = int((self.fault or "").removeprefix("html"))
        self.statuses[status] += 1
        if self.fault == "404":
            error = {"message": "The model does not exist or you do not have access to it.", "code": "model_not_found"}
            return web.json_response({"error": error}, status=404)
        if self.fault == "401":
            error = {"message": "Incorrect API key provided.", "code": "invalid_api_key"}
            return web.json_response({"error": error}, status=401)
        title = "Sign in" if status == 200 else "502 Bad Gateway"
        return web.Response(text=HTML_PAGE.format(title=title), status=status, content_type="text/html")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.received += 1
        self.arrivals.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if self.fault is not None:
            return await self._faulty(request)
        body = await request.json()
        waited = 0.0
        while self.received < self.barrier and waited < 10 and not self._closing:
            await asyncio.sleep(0.01)
            waited += 0.01
        latency = self.latency_for(body) if self.latency_for is not None else self.latency_s
        if latency:
            await asyncio.sleep(latency)
        fault = self._fault()
        if fault is not None:
            return fault
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.paths.append(request.path)
        self.statuses[200] += 1
        if request.path.endswith("/embeddings"):
            return self._embeddings(body)
        chat = request.path.endswith("/chat/completions")
        calls = self.tool_caller(body) if body.get("tools") and body.get("tool_choice") != "none" else None
        if request.path.endswith("/responses"):
            return self._response(body, calls)
        text = self.responder(body)
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        words = text.split(" ")
        if max_tokens is not None:
            words = words[: max(int(max_tokens), 1)]
        text = " ".join(words)
        prompt_text = json.dumps(body.get("messages", body.get("prompt", "")))
        usage = {
            "prompt_tokens": max(1, len(prompt_text) // 4),
            "completion_tokens": len(words),
            "total_tokens": max(1, len(prompt_text) // 4) + len(words),
        }
        digest = hashlib.sha256(text.encode()).digest()
        logprobs = [-(1 + digest[i % len(digest)]) / 256 for i in range(len(words))]
        tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]  # they spell the text, as real tokens do
        tops = [self.alternatives(token, body) if self.alternatives else {} for token in tokens]
        logprobs = [top.get(token, lp) for token, top, lp in zip(tokens, tops, logprobs)]
        created = int(time.time())
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
            if calls:
                choice["finish_reason"] = "tool_calls"
                choice["message"] = {"role": "assistant", "content": None, "tool_calls": [
                    {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": arguments}}
                    for i, (name, arguments) in enumerate(calls)]}
            choice["logprobs"] = (
                {"content": [{"token": t, "logprob": lp, "bytes": None,
                              "top_logprobs": [{"token": k, "logprob": v, "bytes": None} for k, v in top.items()]}
                             for t, lp, top in zip(tokens, logprobs, tops)]}
                if body.get("logprobs")
                else None
            )
            obj = "chat.completion"
        else:
            choice["text"] = text
            choice["logprobs"] = (
                {"tokens": tokens, "token_logprobs": logprobs,
                 "top_logprobs": tops if self.alternatives else None, "text_offset": []}
                if body.get("logprobs") is not None
                else None
            )
            obj = "text_completion"
        return web.json_response(
            {
                "id": "cmpl-" + digest.hex()[:12],
                "object": obj,
                "created": created,
                "model": body.get("model", "test-model"),
                "system_fingerprint": "fp_test",
                "choices": [choice],
                "usage": usage,
            },
            headers={"x-ratelimit-remaining-requests": "1000", "set-cookie": "__cf_bm=secret-cookie; path=/"},
            dumps=self.dumps,
        )

    def _response(self, body: dict[str, Any], calls: list[tuple[str, str]] | None) -> web.Response:
        """A Responses API answer: output_text (cut at max_output_tokens: status incomplete) or function calls."""
        words = self.responder(body).split(" ")
        limit = body.get("max_output_tokens")
        cut = limit is not None and len(words) > int(limit)
        words = words[: int(limit)] if cut else words
        text = " ".join(words)
        digest = hashlib.sha256(text.encode()).digest()
        part: dict[str, Any] = {"type": "output_text", "text": text, "annotations": []}
        if "message.output_text.logprobs" in (body.get("include") or []):
            part["logprobs"] = [{"token": w, "logprob": -(1 + digest[i % len(digest)]) / 256, "bytes": [],
                                 "top_logprobs": []} for i, w in enumerate(words)]
        output: list[dict[str, Any]] = [
            {"type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}", "name": name, "arguments": arguments,
             "status": "completed"} for i, (name, arguments) in enumerate(calls or [])]
        if not calls:
            output = [{"type": "message", "id": "msg_" + digest.hex()[:12], "status": "completed", "role": "assistant",
                       "content": [part]}]
        input_tokens = max(1, len(json.dumps([body.get("instructions"), body.get("input")])) // 4)
        return web.json_response(
            {
                "id": "resp_" + digest.hex()[:12], "object": "response", "created_at": int(time.time()),
                "model": body.get("model", "test-model"), "status": "incomplete" if cut else "completed",
                "incomplete_details": {"reason": "max_output_tokens"} if cut else None, "output": output,
                "store": body.get("store", True), "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
                "usage": {"input_tokens": input_tokens, "output_tokens": len(words),
                          "total_tokens": input_tokens + len(words), "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}},
            },
            headers={"x-ratelimit-remaining-requests": "1000", "set-cookie": "__cf_bm=secret-cookie; path=/"},
            dumps=self.dumps,
        )

    def _embeddings(self, body: dict[str, Any]) -> web.Response:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for index, text in enumerate(texts):
            vectors = [embed(word) for word in words_of(text)] if self.per_token_embeddings else [embed(text)]
            value: Any = vectors if self.per_token_embeddings else vectors[0]
            data.append({"object": "embedding", "index": index, "embedding": value})
        tokens = sum(len(words_of(text)) for text in texts)
        return web.json_response({"object": "list", "data": data, "model": body.get("model", "test-model"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}, dumps=self.dumps)

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> ChatServer:
        self._thread = threading.Thread(target=self._serve, name="chat-server", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("chat server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        self._closing = True
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        for path in ("/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings",
                     "/openai/deployments/{deployment}/chat/completions", "/openai/deployments/{deployment}/completions",
                     "/openai/deployments/{deployment}/embeddings", "/openai/responses",
                     "/serving-endpoints/chat/completions", "/serving-endpoints/completions"):
            app.router.add_post(path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, backlog=1024)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()
        self._loop.close()


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def embed(text: str) -> list[float]:
    """A hashed bag of words: each word adds +1 or -1 to one of ``EMBEDDING_DIMENSIONS`` coordinates, so the
    cosine of two texts grows with the words they share (1.0 for the same words; empty text: all zeros)."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in words_of(text):
        digest = hashlib.sha256(word.encode()).digest()
        vector[digest[0] % EMBEDDING_DIMENSIONS] += 1.0 if digest[1] % 2 else -1.0
    return vector


def perplexity_of(logprobs: list[float]) -> float:
    return math.exp(-sum(logprobs) / len(logprobs))


def closed_port_url() -> str:
    """A base URL nothing listens on: connections are refused (a dead endpoint)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
