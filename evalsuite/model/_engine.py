"""Send every call, get exactly one Answer back per call.

A plain function from calls to answers (no pytest, no globals it depends on), so the same code runs
in the pytest runner, a script or a Spark partition. Design choices, and why:

- **Bounded worker pool.** A fixed number of workers pull examples from one iterator, so 25k
  examples never become 25k tasks, and only Answers (no response objects) are kept.
- **Repeats in order.** All samples of one example go to one worker and are sent one after
  another, so replaying N identical recorded requests returns them in recorded order.
- **Admission** (adaptive concurrency, rate-limit pauses, budgets) is the gate's (``_admission``).
- **Retries live here only** (the SDK client has ``max_retries=0``): the provider classifies a
  failure (by default 429/408/409/5xx, timeouts and connection errors are retried), the engine waits
  (``Retry-After`` or jittered exponential backoff with a cap), then gives an error Answer. A
  request missing from a cassette is "not_recorded", never retried. Failures of the endpoint itself
  (connection, timeout, 401/403/404, not JSON) name the URL and model: a wrong one is seen as such.
- **A deadline per attempt.** ``model.timeout`` bounds each read only (httpx), so a server that
  trickles a byte at a time would hold a call forever; the whole attempt (connect and all reads)
  must finish within ``deadline`` (default ``DEADLINE_PER_TIMEOUT`` x the timeout) or it is a
  "timeout".
- **Fail fast** (``_breaker``): an endpoint that cannot answer any call (refused, 401/403/404, HTML
  instead of JSON, a run of 5xx) opens its breaker after a few failures in a row; the calls left are
  answered as errors at once instead of each retrying for minutes.
- **Work is never lost.** ``on_answer`` sees each answer as it completes. On interrupt
  (Ctrl-C/cancellation) the calls still pending become "interrupted" answers, ``on_answer`` gets
  them too, and the interrupt is re-raised.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import openai

from evalsuite.cases.schema import ModelSettings
from evalsuite.cassettes import EXAMPLE_HEADER, LATENCY_HEADER, SENT_AT_HEADER, is_not_recorded, not_recorded_reason
from evalsuite.model._admission import Gate
from evalsuite.model._breaker import WAIT, Breaker, Trip, breaker_for, public_url
from evalsuite.model._progress import Progress
from evalsuite.model._providers import Failure, Provider, get_provider
from evalsuite.model._wire import (
    NotACompletion,
    answer_from_body,
    completion_body,
    endpoint_methods,
    estimate_tokens,
    excerpt,
)
from evalsuite.records import Answer, Call

WORKERS_PER_SLOT = 4  # examples in progress per request slot: covers workers sleeping before a retry
DEADLINE_PER_TIMEOUT = 3.0  # default deadline of one attempt, in per-read timeouts
# failures that are the endpoint's (not the request's, nor a passing overload): their messages say where it is
NAMES_THE_ENDPOINT: frozenset[Trip | None] = frozenset({"connection", "timeout", "auth", "not_found", "not_json"})
PROBE_POLL_S = 0.05  # how often calls waiting for an open breaker's probe look at its outcome
MESSAGE_CHARS = 300  # a failure message longer than this is a body (an HTML page), cut short


@dataclass(frozen=True)
class EngineSettings:
    """How hard to push one endpoint."""

    concurrency: int = 16  # maximum requests in flight
    max_retries: int = 10  # per call, after the first attempt (backoff capped)
    requests_per_minute: float | None = None  # optional budget, paced before sending
    tokens_per_minute: float | None = None  # estimate chars/4 + max_tokens before, actual usage after
    timeout: float | None = None  # per-read seconds; None: the client's (model.timeout)
    deadline: float | None = None  # seconds for a whole attempt; None: DEADLINE_PER_TIMEOUT x timeout
    backoff_base: float = 0.5  # seconds before the first retry, doubled per retry, jittered
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0  # a longer server-directed wait ends the call as rate_limited
    adaptive: bool = True  # AIMD concurrency; False: always `concurrency`

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"deadline must be > 0 seconds, got {self.deadline}")


class _Sender:
    """One call, with retries: acquire a slot, send, classify a failure, wait, try again or give up."""

    def __init__(self, client: openai.AsyncOpenAI, settings: EngineSettings, gate: Gate, provider: Provider) -> None:
        self.settings = settings
        self.gate = gate
        self.classify = provider.classify
        self.base_url = str(client.base_url)
        self.methods = endpoint_methods(client)  # which SDK method sends a call, per Call.api
        self.extra = {} if settings.timeout is None else {"timeout": settings.timeout}
        read = settings.timeout if settings.timeout is not None else _read_timeout(client.timeout)
        self.deadline = settings.deadline or (DEADLINE_PER_TIMEOUT * read if read else None)
        self.deadline_source = ("EngineSettings.deadline" if settings.deadline or not read else
                                f"{DEADLINE_PER_TIMEOUT:g} x the {read:g} s model.timeout, which bounds each read only")

    async def send(self, call: Call) -> Answer:
        breaker = breaker_for(self.base_url, str(call.body.get("model", "")))
        try:
            return await self._send(call, breaker)
        except BaseException:  # interrupted: a probe that never finished must not keep others waiting
            breaker.abandon(call)
            raise

    async def _send(self, call: Call, breaker: Breaker) -> Answer:
        create = self.methods[call.api]
        tag = str(call.key)
        estimate = estimate_tokens(call) if self.gate.tokens is not None else 0.0
        retries = 0
        failure: Failure | None
        while True:
            refused = await _admitted(breaker, call)
            if refused is None:
                await self.gate.acquire(estimate)
                if breaker.refusal(call) is not None:  # it opened while this call waited for a slot
                    self.gate.release()
                    continue
            if refused is not None:
                return Answer(call.example_id, call.sample, retries=retries, error=refused, error_kind="connection")
            started = time.perf_counter()
            try:
                headers = {EXAMPLE_HEADER: tag, SENT_AT_HEADER: repr(time.time())}
                raw = await asyncio.wait_for(create(**call.body, extra_headers=headers, **self.extra), self.deadline)
                data = completion_body(raw.content, raw.status_code, call.api)
            except Exception as exc:  # every failure becomes a retry or an error Answer
                failure = self._failure(exc, call, breaker)
            else:
                failure = None
            finally:
                self.gate.release()
            if failure is None:
                breaker.alive()
                recorded = raw.headers.get(LATENCY_HEADER)
                latency = float(recorded) / 1000 if recorded is not None else time.perf_counter() - started
                answer = answer_from_body(call, data, latency, retries)
                used = None if answer.prompt_tokens is None else answer.prompt_tokens + (answer.completion_tokens or 0)
                self.gate.succeeded(raw.headers, used, estimate)
                return answer
            if failure.kind == "rate_limited":
                self.gate.rate_limited(failure.headers, failure.retry_after)
            delay = retry_delay(self.settings, retries, failure.retry_after) if failure.retry else None
            if delay is None or retries >= self.settings.max_retries:
                if failure.retry and delay is None:
                    failure.message += (f" (Retry-After {failure.retry_after:g} s exceeds the "
                                        f"{self.settings.max_retry_after:g} s this run waits)")
                elif failure.retry and retries:
                    failure.message += f" (gave up after {retries} retries)"
                return Answer(call.example_id, call.sample, retries=retries, error=failure.message,
                              error_kind=failure.kind)
            retries += 1
            await asyncio.sleep(delay)

    def _failure(self, exc: Exception, call: Call, breaker: Breaker) -> Failure:
        """The failure classified, told to the breaker, its message naming where the call went."""
        if is_not_recorded(exc):  # the cassette's business, whatever the provider
            breaker.failed(call, None, "")
            return Failure("not_recorded", f"request not in the cassette: {not_recorded_reason(exc)}", retry=False)
        if isinstance(exc, asyncio.TimeoutError):
            failure = Failure("timeout", f"no complete answer within the {self.deadline:g} s deadline of one attempt "
                              f"({self.deadline_source}); raise model.timeout for slower answers", retry=True)
        elif isinstance(exc, NotACompletion):
            failure = Failure("api", str(exc), retry=False)
        else:
            failure = self.classify(exc)
            if len(failure.message) > MESSAGE_CHARS:  # the SDK puts a non-JSON error body (HTML) in its message
                failure.message = excerpt(failure.message)
        status = _status(exc)
        trip = _trip(failure, exc, status)
        if trip is not None:
            breaker.failed(call, trip, failure.message)
            if failure.kind == "api":  # not this request's fault: a re-recording keeps the example's old recording
                failure.kind = "endpoint"
        elif status is not None:
            breaker.alive()  # it answered: the problem is this request (400) or the rate (429)
        else:
            breaker.failed(call, None, failure.message)
        if trip in NAMES_THE_ENDPOINT:
            failure.message += f" [{_request_line(exc) or breaker.url}, {breaker.what}]"
        return failure


async def _admitted(breaker: Breaker, call: Call) -> str | None:
    """None: send; else the error to answer with. While another call probes, its outcome decides."""
    while True:
        refused = breaker.refusal(call)
        if refused != WAIT:
            return refused
        await asyncio.sleep(PROBE_POLL_S)


def _read_timeout(timeout: object) -> float | None:
    """Seconds of the client's per-read timeout (a number or an httpx ``Timeout``), None for none."""
    if isinstance(timeout, (int, float)):
        return float(timeout)
    read = getattr(timeout, "read", None)
    return float(read) if isinstance(read, (int, float)) else None


def _status(exc: Exception) -> int | None:
    """The HTTP status of a failed attempt that got a response; None when none came back."""
    if isinstance(exc, NotACompletion):
        return 200
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _trip(failure: Failure, exc: Exception, status: int | None) -> Trip | None:
    """Which failure-in-a-row count this attempt adds to; None: the endpoint is not at fault."""
    if isinstance(exc, NotACompletion):
        return "not_json"
    if status is None:
        return "connection" if failure.kind == "connection" else "timeout" if failure.kind == "timeout" else None
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    return "server" if status >= 500 else None


def _request_line(exc: Exception) -> str | None:
    """``POST <url>`` of the failed request (query string and credentials left out), when the SDK kept it."""
    request = getattr(exc, "request", None)
    url, method = getattr(request, "url", None), getattr(request, "method", None)
    return f"{method} {public_url(str(url))}" if url is not None and method else None


def retry_delay(settings: EngineSettings, retries: int, retry_after: float | None) -> float | None:
    """Seconds before the next try: the server's Retry-After (None if longer than this run waits), else backoff."""
    if retry_after is not None and retry_after > 0:
        if retry_after > settings.max_retry_after:
            return None
        return retry_after * random.uniform(1.0, 1.1)  # never earlier than asked; spread the herd
    backoff = min(settings.backoff_cap, settings.backoff_base * 2**retries)
    return backoff * random.uniform(0.5, 1.0)


def _by_example(calls: Sequence[Call]) -> list[list[int]]:
    """Call indices grouped per example (first-appearance order), samples in ascending order."""
    groups: dict[str, list[int]] = {}
    for index, call in enumerate(calls):
        groups.setdefault(call.example_id, []).append(index)
    for indices in groups.values():
        if len(indices) > 1:
            indices.sort(key=lambda i: calls[i].sample)
    return list(groups.values())


async def run_calls(
    calls: Sequence[Call],
    client: openai.AsyncOpenAI,
    *,
    settings: EngineSettings | None = None,
    on_answer: Callable[[Answer], None] | None = None,
    progress: Progress | None = None,
    provider: Provider | None = None,
) -> list[Answer]:
    """One Answer per call, in the order of ``calls``; failures are error Answers, never dropped.

    ``provider`` classifies failures (None: the OpenAI rules). On cancellation or KeyboardInterrupt,
    calls without an answer get ``error_kind="interrupted"`` answers (delivered to ``on_answer``
    like the rest) and the interrupt propagates.
    """
    settings = settings or EngineSettings()
    answers: list[Answer | None] = [None] * len(calls)
    groups: Iterator[list[int]] = iter(_by_example(calls))
    gate = Gate(str(client.base_url), concurrency=settings.concurrency, adaptive=settings.adaptive,
                requests_per_minute=settings.requests_per_minute, tokens_per_minute=settings.tokens_per_minute,
                on_limit=progress.set_concurrency if progress is not None else None)
    sender = _Sender(client, settings, gate, provider or Provider())

    def deliver(index: int, answer: Answer) -> None:
        answers[index] = answer
        if progress is not None:
            progress.add(answer)
        if on_answer is not None:
            on_answer(answer)

    async def worker() -> None:
        for group in groups:
            for index in group:
                deliver(index, await sender.send(calls[index]))

    n_workers = min(settings.concurrency * WORKERS_PER_SLOT, len(calls))
    tasks = [asyncio.create_task(worker()) for _ in range(n_workers)]
    try:
        await asyncio.gather(*tasks)
    except BaseException as exc:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
            for index, call in enumerate(calls):
                if answers[index] is None:
                    deliver(index, Answer(call.example_id, call.sample, error="interrupted before an answer arrived",
                                          error_kind="interrupted"))
        raise
    return answers  # type: ignore[return-value]  # every slot is filled once gather returns


ClientFactory = Callable[[], openai.AsyncOpenAI]


def run_calls_sync(
    calls: Sequence[Call],
    model: ModelSettings | ClientFactory,
    *,
    settings: EngineSettings | None = None,
    on_answer: Callable[[Answer], None] | None = None,
    progress: Progress | None = None,
) -> list[Answer]:
    """Blocking ``run_calls``, live: builds the client inside its own event loop and closes it there.

    ``model`` is the case's ModelSettings (client and failure rules from its provider) or a
    zero-argument client factory (OpenAI failure rules). Works whether or not the calling thread
    already runs an event loop (notebooks, Databricks): then the run gets a thread of its own.
    """
    provider = get_provider(model.provider) if isinstance(model, ModelSettings) else Provider()

    async def main() -> list[Answer]:
        client = provider.client(model, replay=False) if isinstance(model, ModelSettings) else model()
        async with client:
            return await run_calls(calls, client, settings=settings, on_answer=on_answer, progress=progress,
                                   provider=provider)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    outcome: dict[str, Any] = {}

    def in_thread() -> None:
        try:
            outcome["answers"] = asyncio.run(main())
        except BaseException as exc:  # handed to the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=in_thread, name="evalsuite-engine")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    answers: list[Answer] = outcome["answers"]
    return answers
