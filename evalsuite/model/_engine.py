"""Send every call, get exactly one Answer back per call.

``run_calls`` is a plain function from calls to answers (no pytest, no globals it depends on), so the same
code runs in a script or a Spark partition; the session scheduler keeps one :class:`Engine` for a whole
pytest session and submits every item's calls to it as a :class:`Job`. Design choices, and why:

- **Bounded worker pool per endpoint.** A fixed number of workers pull example groups from one queue
  per endpoint, shared by every job in submission order, so 25k examples never become 25k tasks, the
  first item submitted is answered first, and only Answers (no response objects) are kept.
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
- **Work is never lost.** ``on_answer`` sees each answer as it completes, ``record`` each successful httpx
  response (a cassette records it before anything else happens). On interrupt (Ctrl-C/cancellation)
  the calls still pending become "interrupted" answers, ``on_answer`` gets them too, and the interrupt
  is re-raised.
- **Holding and stopping.** ``hold()`` lets no new request start (pytest runs a test that may patch
  the HTTP stack meanwhile) and returns once those in flight are answered; ``stop()`` answers every call
  not yet sent "interrupted" (``-x``); a spend guard answers the calls it refuses "not_run".
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import openai

from evalsuite.cases.schema import ModelSettings
from evalsuite.cassettes import EXAMPLE_HEADER, LATENCY_HEADER, SENT_AT_HEADER, is_not_recorded, not_recorded_reason
from evalsuite.model._admission import Gate
from evalsuite.model._breaker import WAIT, Breaker, Trip, breaker_for, public_url
from evalsuite.model._progress import Progress
from evalsuite.model._providers import Failure, Provider, get_provider
from evalsuite.model._spend import Hold, Price, SpendGuard
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
HOLD_POLL_S = 0.01  # how often a hold looks whether the requests in flight are done
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

    async def send(self, call: Call, record: Callable[[Any], None] | None = None,
                   ready: Callable[[], Answer | None] | None = None) -> Answer:
        """``record`` sees the httpx response of the attempt that succeeded (a cassette records it); ``ready`` is
        asked once, when the call holds a slot and is about to be sent first: an Answer it returns is given
        instead (the call is not sent), None sends it."""
        breaker = breaker_for(self.base_url, str(call.body.get("model", "")))
        try:
            return await self._send(call, breaker, record, ready)
        except BaseException:  # interrupted: a probe that never finished must not keep others waiting
            breaker.abandon(call)
            raise

    async def _send(self, call: Call, breaker: Breaker, record: Callable[[Any], None] | None,
                    ready: Callable[[], Answer | None] | None) -> Answer:
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
            if ready is not None:
                instead, ready = ready(), None
                if instead is not None:
                    self.gate.release()
                    breaker.abandon(call)  # were it the probe, another call may probe
                    return instead
            started = time.perf_counter()
            try:
                headers = {EXAMPLE_HEADER: tag, SENT_AT_HEADER: repr(time.time())}
                raw = await asyncio.wait_for(create(**call.body, extra_headers=headers, **self.extra), self.deadline)
                data = completion_body(raw.content, raw.status_code, call.api)
                if record is not None:
                    record(raw.http_response)
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


def interrupted(call: Call) -> Answer:
    return Answer(call.example_id, call.sample, error="interrupted before an answer arrived", error_kind="interrupted")


def not_run(call: Call) -> Answer:
    return Answer(call.example_id, call.sample, error="not sent: the spend guard (--eval-max-cost) was reached",
                  error_kind="not_run")


class Job:
    """One batch of calls (an item's) on an :class:`Engine`: each call answered exactly once, on the engine's loop.

    ``on_answer(index, answer)`` sees each answer as it completes (``index`` into ``calls``); ``on_fail(exc)`` the
    first error a callback raised, after which the job's other calls are not answered; ``record`` each
    successful httpx response; ``price`` (USD per 1k input/output tokens) is what the engine's spend guard charges.
    """

    def __init__(
        self,
        calls: Sequence[Call],
        sender: _Sender,
        *,
        on_answer: Callable[[int, Answer], None] | None = None,
        on_fail: Callable[[BaseException], None] | None = None,
        record: Callable[[Any], None] | None = None,
        progress: Progress | None = None,
        price: Price | None = None,
    ) -> None:
        self.calls = calls
        self.sender = sender
        self.on_answer = on_answer
        self.on_fail = on_fail
        self.record = record
        self.progress = progress
        self.price = price
        self.answers: list[Answer | None] = [None] * len(calls)
        self.stopped = False  # stop(): calls not yet sent are answered "interrupted"
        self.failure: BaseException | None = None  # a callback raised: handed to whoever waits for the job
        self.finished = asyncio.Event()
        self._left = len(calls)
        if not calls:
            self.finished.set()

    def deliver(self, index: int, answer: Answer) -> None:
        if self.answers[index] is not None:
            return
        self.answers[index] = answer
        self._left -= 1
        try:
            if self.progress is not None:
                self.progress.add(answer)
            if self.on_answer is not None:
                self.on_answer(index, answer)
        finally:
            if not self._left:
                self.finished.set()

    @property
    def complete(self) -> bool:
        """Every call has its answer."""
        return not self._left

    def fail(self, exc: BaseException) -> None:
        first = self.failure is None
        self.failure = self.failure or exc
        self.stopped = True
        self.finished.set()
        if first and self.on_fail is not None:
            self.on_fail(exc)

    async def wait(self) -> list[Answer]:
        """Every answer, in the order of ``calls``; raises what a callback raised."""
        await self.finished.wait()
        if self.failure is not None:
            raise self.failure
        return self.answers  # type: ignore[return-value]  # every slot is filled once finished without failure


class _Endpoint:
    """One endpoint (base URL) in an engine: its admission gate, and the example groups of every job waiting for it,
    in submission order, pulled by at most ``concurrency * WORKERS_PER_SLOT`` workers."""

    def __init__(self, url: str, settings: EngineSettings, sending: asyncio.Event) -> None:
        self.jobs: set[Job] = set()  # unfinished: their progress lines show the gate's limit
        self.gate = Gate(url, concurrency=settings.concurrency, adaptive=settings.adaptive,
                         requests_per_minute=settings.requests_per_minute, tokens_per_minute=settings.tokens_per_minute,
                         on_limit=self.show_limit, sending=sending)
        self.max_workers = settings.concurrency * WORKERS_PER_SLOT
        self.waiting: deque[tuple[Job, list[int]]] = deque()
        self.workers: set[asyncio.Task[None]] = set()

    def show_limit(self, limit: int) -> None:
        for job in self.jobs:
            if job.progress is not None:
                job.progress.set_concurrency(limit)


class Engine:
    """Calls of any number of jobs on one event loop, with one admission budget per endpoint shared by all of them.

    Each endpoint (a client's base URL) has one gate (concurrency with AIMD on 429, Retry-After and
    ``x-ratelimit-*`` pauses, rpm/tpm budgets) and one pool of workers pulling the example groups of every job
    in submission order, so the first job submitted is answered first while later ones fill the free slots.
    ``guard``: the spend guard every priced job is charged to. Create, use and close it on one event loop.
    """

    def __init__(self, settings: EngineSettings | None = None, *, guard: SpendGuard | None = None) -> None:
        self.settings = settings or EngineSettings()
        self.guard = guard
        self.sending = asyncio.Event()  # cleared by hold()
        self.sending.set()
        self._endpoints: dict[str, _Endpoint] = {}
        self._senders: dict[tuple[Any, ...], _Sender] = {}
        self._clients: list[openai.AsyncOpenAI] = []  # built here, closed here
        self._jobs: set[Job] = set()
        self._cancelled = False  # cancel(): a job submitted later is answered "interrupted" at once

    def sender(self, client: openai.AsyncOpenAI, provider: Provider | None = None) -> _Sender:
        """A sender through ``client`` (the caller's: it is not closed here), admitted by its endpoint's gate."""
        return _Sender(client, self.settings, self._endpoint(str(client.base_url)).gate, provider or Provider())

    def sender_for(self, model: ModelSettings) -> _Sender:
        """The sender for ``model``: one client per provider, name, base URL, API (Azure's default API version
        depends on it), API version, auth and timeout, built and closed by the engine; raises ``MissingCredentials``
        naming the variable to set."""
        key = (model.provider, model.name, model.base_url, model.api, model.api_version, model.auth, model.timeout)
        sender = self._senders.get(key)
        if sender is None:
            provider = get_provider(model.provider)
            client = provider.client(model, replay=False)
            self._clients.append(client)
            sender = self._senders[key] = self.sender(client, provider)
        return sender

    def _endpoint(self, url: str) -> _Endpoint:
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            endpoint = self._endpoints[url] = _Endpoint(url, self.settings, self.sending)
        return endpoint

    def submit(self, job: Job) -> Job:
        """Queue ``job``'s calls behind every job submitted before it on the same endpoint."""
        endpoint = self._endpoint(job.sender.base_url)
        if job.progress is not None:
            job.progress.set_concurrency(endpoint.gate.limit)
        if job.finished.is_set():
            return job
        self._jobs.add(job)
        endpoint.jobs.add(job)
        if self._cancelled:
            self._interrupt(job)
            return job
        groups = _by_example(job.calls)
        endpoint.waiting.extend((job, group) for group in groups)
        for _ in range(min(endpoint.max_workers - len(endpoint.workers), len(groups))):
            task = asyncio.create_task(self._work(endpoint))
            endpoint.workers.add(task)
            task.add_done_callback(endpoint.workers.discard)
        return job

    async def _work(self, endpoint: _Endpoint) -> None:
        while endpoint.waiting:
            job, group = endpoint.waiting.popleft()
            try:
                for index in group:
                    await self._answer(job, index)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # a callback raised (KeyboardInterrupt included): its job ends with it
                job.fail(exc)
            if job.complete:
                self._forget(job)

    def _forget(self, job: Job) -> None:
        self._jobs.discard(job)
        self._endpoints[job.sender.base_url].jobs.discard(job)

    async def _answer(self, job: Job, index: int) -> None:
        call = job.calls[index]
        guard, price = self.guard, job.price
        held: list[Hold] = []  # what the spend guard holds for the call, once it is cleared to go

        def ready() -> Answer | None:  # asked with a slot in hand: calls waiting for one are not sent after stop()
            if job.stopped:
                return interrupted(call)
            if guard is not None and price is not None:
                hold = guard.reserve(call, price)
                if hold is None:
                    return not_run(call)
                held.append(hold)
            return None

        if job.stopped:
            job.deliver(index, interrupted(call))
            return
        answer: Answer | None = None
        try:
            answer = await job.sender.send(call, job.record, ready)
        finally:
            if held and guard is not None and price is not None:
                guard.settle(held[0], answer, price)
        job.deliver(index, answer)

    async def hold(self) -> None:
        """Send no new request until :meth:`release`; returns once the requests already sent have been answered."""
        self.sending.clear()
        while any(endpoint.gate.in_flight for endpoint in self._endpoints.values()):
            await asyncio.sleep(HOLD_POLL_S)

    def release(self) -> None:
        self.sending.set()

    def stop(self) -> None:
        """Send nothing more: every call not yet sent is answered "interrupted" (those in flight finish)."""
        for job in self._jobs:
            job.stopped = True

    async def cancel(self) -> None:
        """Stop now: calls in flight are cancelled, and every call without an answer is answered "interrupted"."""
        self._cancelled = True
        workers = [task for endpoint in self._endpoints.values() for task in endpoint.workers]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for endpoint in self._endpoints.values():
            endpoint.waiting.clear()
        for job in list(self._jobs):
            self._interrupt(job)

    def _interrupt(self, job: Job) -> None:
        for index, call in enumerate(job.calls):
            if job.answers[index] is None:
                try:
                    job.deliver(index, interrupted(call))
                except BaseException as exc:  # noqa: BLE001 - a callback's failure ends its job, as in _work
                    job.fail(exc)
        self._forget(job)

    async def aclose(self) -> None:
        """Cancel what is left and close the clients the engine built."""
        await self.cancel()
        clients, self._clients = self._clients, []
        for client in clients:
            await client.close()


async def run_calls(
    calls: Sequence[Call],
    client: openai.AsyncOpenAI,
    *,
    settings: EngineSettings | None = None,
    on_answer: Callable[[Answer], None] | None = None,
    progress: Progress | None = None,
    provider: Provider | None = None,
    record: Callable[[Any], None] | None = None,
) -> list[Answer]:
    """One Answer per call, in the order of ``calls``; failures are error Answers, never dropped.

    ``provider`` classifies failures (None: the OpenAI rules); ``record`` sees each successful httpx response.
    On cancellation or KeyboardInterrupt, calls without an answer get ``error_kind="interrupted"`` answers
    (delivered to ``on_answer`` like the rest) and the interrupt propagates.
    """
    engine = Engine(settings)
    job = Job(calls, engine.sender(client, provider), progress=progress, record=record,
              on_answer=(lambda _, answer: on_answer(answer)) if on_answer is not None else None)
    engine.submit(job)
    try:
        return await job.wait()
    except BaseException:
        await engine.cancel()
        raise


ClientFactory = Callable[[], openai.AsyncOpenAI]


def run_calls_sync(
    calls: Sequence[Call],
    model: ModelSettings | ClientFactory,
    *,
    settings: EngineSettings | None = None,
    on_answer: Callable[[Answer], None] | None = None,
    progress: Progress | None = None,
    record: Callable[[Any], None] | None = None,
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
                                   provider=provider, record=record)

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
