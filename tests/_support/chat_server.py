"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions and completions protocol.

Tests and benchmarks drive the unmodified ``openai`` SDK against it. It answers deterministically
(``responder(body) -> text``), reports usage and logprobs, serves the Azure deployment path too, and
injects latency, 429s (with ``Retry-After``) and 500s on demand. ``fault`` makes every request fail
one way (``FAULTS``): "trickle" (a byte every ``trickle_delay_s``), "hang" (never answers), "404" and
"401" (JSON errors), "html200" and "html502" (a proxy's HTML page).
"""

from __future__ import annotations

import asyncio
import hashlib
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
HTML_PAGE = "<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"


def echo_responder(body: dict[str, Any]) -> str:
    """Answer with the last user message (or prompt), so a test can see what was sent."""
    if "messages" in body:
        return str(body["messages"][-1]["content"])
    return str(body.get("prompt", ""))


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
    ) -> None:
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
        if self.fault is not None:
            return await self._faulty(request)
        body = await request.json()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        fault = self._fault()
        if fault is not None:
            return fault
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.statuses[200] += 1
        chat = request.path.endswith("/chat/completions")
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
        created = int(time.time())
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
            choice["logprobs"] = (
                {"content": [{"token": w, "logprob": lp, "bytes": None, "top_logprobs": []} for w, lp in zip(words, logprobs)]}
                if body.get("logprobs")
                else None
            )
            obj = "chat.completion"
        else:
            choice["text"] = text
            choice["logprobs"] = (
                {"tokens": words, "token_logprobs": logprobs, "top_logprobs": None, "text_offset": []}
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
        for path in ("/v1/chat/completions", "/v1/completions", "/openai/deployments/{deployment}/chat/completions",
                     "/openai/deployments/{deployment}/completions"):
            app.router.add_post(path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, backlog=1024)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()
        self._loop.close()


def perplexity_of(logprobs: list[float]) -> float:
    return math.exp(-sum(logprobs) / len(logprobs))


def closed_port_url() -> str:
    """A base URL nothing listens on: connections are refused (a dead endpoint)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
