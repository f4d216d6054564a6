"""Stage 4: send every call, get exactly one Answer back per call.

A plain function from calls to answers (no pytest, no globals it depends on), so the same code runs
in the pytest runner, a script or a Spark partition. Design choices, and why:

- **Bounded worker pool.** A fixed number of workers pull examples from one iterator, so 25k
  examples never become 25k tasks, and only Answers (no response objects) are kept.
- **Repeats in order.** All samples of one example go to one worker and are sent one after
  another, so replaying N identical recorded requests returns them in recorded order.
- **Adaptive concurrency (AIMD), per endpoint.** In-flight requests are capped by a limit that
  halves on a 429 (once per rate-limit episode: later 429s from requests sent under the old limit
  are the same episode) and grows by one after a limit's worth of successes, between 1 and the
  configured maximum. The learned limit is remembered per endpoint for the next case in the process.
- **Server-directed waits.** ``retry-after-ms``/``Retry-After`` set the retry delay of the call
  that got them; ``x-ratelimit-remaining-*: 0`` with ``x-ratelimit-reset-*`` pauses new sends
  until the reset. Optional requests/tokens-per-minute budgets pace sends before the server has to.
- **Retries live here only** (the SDK client has ``max_retries=0``): 429/408/409/5xx, timeouts and
  connection errors, jittered exponential backoff with a cap, then an error Answer. Other 4xx are
  not retried. A request missing from a vcrpy cassette is "not_recorded", never retried.
- **Work is never lost.** ``on_answer`` sees each answer as it completes. On interrupt
  (Ctrl-C/cancellation) the calls still pending become "interrupted" answers, ``on_answer`` gets
  them too, and the interrupt is re-raised.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import openai
import orjson
from vcr.errors import CannotOverwriteExistingCassetteException

from evalsuite.cases.schema import ModelSettings
from evalsuite.model.providers import make_client
from evalsuite.cassettes._cassette import LATENCY_HEADER, CassetteHandle, is_not_recorded
from evalsuite.model.progress import Progress
from evalsuite.records import Answer, Call, ErrorKind

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 429}
WORKERS_PER_SLOT = 4  # examples in progress per request slot: covers workers sleeping before a retry
CUT_WINDOW_S = 1.0  # minimum length of one rate-limit episode (one halving per episode)

# Concurrency limit learned per endpoint (base URL), carried to the next case in this process.
_learned_limits: dict[str, int] = {}


@dataclass(frozen=True)
class EngineSettings:
    """How hard to push one endpoint."""

    concurrency: int = 16  # maximum requests in flight
    max_retries: int = 10  # per call, after the first attempt (backoff capped); 0 on replay
    requests_per_minute: float | None = None  # optional budget, paced before sending
    tokens_per_minute: float | None = None  # estimate chars/4 + max_tokens before, actual usage after
    timeout: float | None = None  # per-request seconds; None: the client's (model.timeout)
    backoff_base: float = 0.5  # seconds before the first retry, doubled per retry, jittered
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0  # a longer server-directed wait ends the call as rate_limited
    adaptive: bool = True  # AIMD concurrency; False: always `concurrency`

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")

    def for_replay(self) -> EngineSettings:
        """Replay never retries (a recorded 429 would replay its delay) and needs no budgets."""
        return replace(self, max_retries=0, requests_per_minute=None, tokens_per_minute=None)


# -- admission: concurrency limit, pauses, budgets ------------------------------------------------


class _Bucket:
    """A per-minute budget paced evenly (at most one second's worth in a burst); may go into debt."""

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(self.rate, 1.0)
        self.level = self.capacity
        self.stamp = time.monotonic()

    async def take(self, amount: float) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= amount
        if self.level < 0:
            await asyncio.sleep(-self.level / self.rate)

    def adjust(self, amount: float) -> None:
        self.level = min(self.capacity, self.level - amount)


class _Gate:
    """Admission for one endpoint: AIMD concurrency limit with FIFO hand-off, pauses and budgets."""

    def __init__(self, endpoint: str, settings: EngineSettings, progress: Progress | None) -> None:
        self.endpoint = endpoint
        self.max = settings.concurrency
        self.adaptive = settings.adaptive
        self.limit = min(_learned_limits.get(endpoint, self.max), self.max) if self.adaptive else self.max
        self.in_flight = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.paused_until = 0.0
        self.episode_end = -math.inf
        self.successes = 0
        self.progress = progress
        self.requests = _Bucket(settings.requests_per_minute) if settings.requests_per_minute else None
        self.tokens = _Bucket(settings.tokens_per_minute) if settings.tokens_per_minute else None
        if progress is not None:
            progress.set_concurrency(self.limit)

    async def acquire(self, tokens: float) -> None:
        if self.requests is not None:
            await self.requests.take(1)
        if self.tokens is not None:
            await self.tokens.take(tokens)
        while True:
            pause = self.paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            if self.in_flight < self.limit and not self.waiters:
                self.in_flight += 1
            else:
                slot = asyncio.get_running_loop().create_future()
                self.waiters.append(slot)
                try:
                    await slot  # release() hands its slot over: in_flight already counts us
                except asyncio.CancelledError:
                    if slot.done() and not slot.cancelled():
                        self.release()
                    else:
                        self.waiters.remove(slot)
                    raise
            if self.paused_until <= time.monotonic():
                return
            self.release()  # a pause began while we waited for the slot: wait it out first

    def release(self) -> None:
        if self.in_flight <= self.limit:
            while self.waiters:
                slot = self.waiters.popleft()
                if not slot.done():
                    slot.set_result(None)
                    return
        self.in_flight -= 1

    def _grant(self) -> None:
        while self.waiters and self.in_flight < self.limit:
            slot = self.waiters.popleft()
            if not slot.done():
                self.in_flight += 1
                slot.set_result(None)

    def succeeded(self, headers: Any, used_tokens: int | None, estimated_tokens: float) -> None:
        if self.tokens is not None and used_tokens is not None:
            self.tokens.adjust(used_tokens - estimated_tokens)
        self._pause_if_exhausted(headers)
        if self.adaptive and self.limit < self.max:
            self.successes += 1
            if self.successes >= self.limit:
                self._set_limit(self.limit + 1, "successes")
                self._grant()

    def rate_limited(self, headers: Any, retry_after: float | None) -> None:
        self._pause_if_exhausted(headers)
        now = time.monotonic()
        if self.adaptive and now >= self.episode_end:
            self.episode_end = now + max(CUT_WINDOW_S, retry_after or 0.0)
            self._set_limit(max(1, self.limit // 2), "HTTP 429")

    def _set_limit(self, limit: int, why: str) -> None:
        if limit != self.limit:
            (log.info if limit < self.limit else log.debug)(
                "concurrency for %s: %d -> %d (%s)", self.endpoint, self.limit, limit, why
            )
            self.limit = limit
            _learned_limits[self.endpoint] = limit
            if self.progress is not None:
                self.progress.set_concurrency(limit)
        self.successes = 0

    def _pause_if_exhausted(self, headers: Any) -> None:
        for kind in ("requests", "tokens"):
            if headers.get(f"x-ratelimit-remaining-{kind}") == "0":
                reset = _duration(headers.get(f"x-ratelimit-reset-{kind}"))
                if reset:
                    self.paused_until = max(self.paused_until, time.monotonic() + reset)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(value: str | None) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` value: ``"20ms"``, ``"1s"``, ``"6m0s"`` or a bare number."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parts = _DURATION_PART.findall(value)
        return sum(float(n) * _DURATION_UNITS[unit] for n, unit in parts) if parts else None


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), None if absent."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else None


# -- one call -------------------------------------------------------------------------------------


@dataclass
class _Failure:
    kind: ErrorKind
    message: str
    retry: bool
    retry_after: float | None = None
    headers: Any = None


def _classify(exc: Exception) -> _Failure:
    if is_not_recorded(exc):
        return _Failure("not_recorded", f"request not in the cassette: {_last_line(exc)}", retry=False)
    if isinstance(exc, openai.APITimeoutError):
        return _Failure("timeout", "request timed out", retry=True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return _Failure("connection", f"{exc.message} {type(cause).__name__}: {cause}" if cause else exc.message, True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        message = f"HTTP {status}: {body.get('message') or exc.message}"
        headers = exc.response.headers
        retry = status in RETRYABLE_STATUS or status >= 500
        should = headers.get("x-should-retry")
        if should in ("true", "false"):
            retry = should == "true"
        kind: ErrorKind = "rate_limited" if status == 429 else "timeout" if status == 408 else "api"
        return _Failure(kind, message, retry, _retry_after(headers), headers)
    return _Failure("api", f"{type(exc).__name__}: {exc}", retry=False)


def _last_line(exc: BaseException) -> str:
    current: BaseException | None = exc
    while current is not None and not isinstance(current, CannotOverwriteExistingCassetteException):
        current = current.__cause__ or current.__context__
    text = str(current or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _estimate_tokens(call: Call) -> float:
    body = call.body
    if "messages" in body:
        chars = sum(len(m.get("content") or "") if isinstance(m.get("content"), str) else len(str(m.get("content")))
                    for m in body["messages"])
    else:
        prompt = body.get("prompt", "")
        chars = len(prompt) if isinstance(prompt, str) else len(str(prompt))
    return chars / 4 + (body.get("max_tokens") or body.get("max_completion_tokens") or 0)


def _answer(call: Call, data: dict[str, Any], latency_s: float | None, retries: int) -> Answer:
    """An Answer from a completion's JSON body: one reader for live responses and recorded ones."""
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


class _Sender:
    def __init__(self, client: openai.AsyncOpenAI, settings: EngineSettings, gate: _Gate) -> None:
        self.settings = settings
        self.gate = gate
        self.chat = client.chat.completions.with_raw_response.create
        self.completions = client.completions.with_raw_response.create
        self.extra = {} if settings.timeout is None else {"timeout": settings.timeout}

    async def send(self, call: Call) -> Answer:
        create = self.chat if call.api == "chat" else self.completions
        tag = str(call.key)
        estimate = _estimate_tokens(call) if self.gate.tokens is not None else 0.0
        retries = 0
        while True:
            await self.gate.acquire(estimate)
            started = time.perf_counter()
            try:
                headers = {"x-evalsuite-example": tag, "x-evalsuite-sent-at": repr(time.time())}
                raw = await create(**call.body, extra_headers=headers, **self.extra)
                data = orjson.loads(raw.content)
            except Exception as exc:  # every failure becomes a retry or an error Answer
                failure = _classify(exc)
            else:
                failure = None
            finally:
                self.gate.release()
            if failure is None:
                recorded = raw.headers.get(LATENCY_HEADER)
                latency = float(recorded) / 1000 if recorded is not None else time.perf_counter() - started
                answer = _answer(call, data, latency, retries)
                used = None if answer.prompt_tokens is None else answer.prompt_tokens + (answer.completion_tokens or 0)
                self.gate.succeeded(raw.headers, used, estimate)
                return answer
            if failure.kind == "rate_limited":
                self.gate.rate_limited(failure.headers, failure.retry_after)
            delay = self._delay(retries, failure.retry_after) if failure.retry else None
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

    def _delay(self, retries: int, retry_after: float | None) -> float | None:
        if retry_after is not None and retry_after > 0:
            if retry_after > self.settings.max_retry_after:
                return None
            return retry_after * random.uniform(1.0, 1.1)  # never earlier than asked; spread the herd
        backoff = min(self.settings.backoff_cap, self.settings.backoff_base * 2**retries)
        return backoff * random.uniform(0.5, 1.0)


# -- the run --------------------------------------------------------------------------------------


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
) -> list[Answer]:
    """One Answer per call, in the order of ``calls``; failures are error Answers, never dropped.

    On cancellation or KeyboardInterrupt, calls without an answer get ``error_kind="interrupted"``
    answers (delivered to ``on_answer`` like the rest) and the interrupt propagates.
    """
    settings = settings or EngineSettings()
    answers: list[Answer | None] = [None] * len(calls)
    groups: Iterator[list[int]] = iter(_by_example(calls))
    gate = _Gate(str(client.base_url), settings, progress)
    sender = _Sender(client, settings, gate)

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


def replay_calls(calls: Sequence[Call], cassette: CassetteHandle, endpoint: str,
                 on_answer: Callable[[Answer], None] | None = None) -> list[Answer]:
    """Answer every call from the cassette's index, without the HTTP stack: replay-only runs.

    The recorded body is turned into an Answer by the same reader as a live response; an HTTP round
    trip through the SDK and vcrpy's transport costs ~2 ms a call, 50 s of pure overhead for 25k
    examples. Missing -> "not_recorded".
    """
    answers = []
    for call in calls:
        response = cassette.play(call, endpoint)
        if response is None:
            answer = Answer(call.example_id, call.sample, error="no recording of this request in the cassette",
                            error_kind="not_recorded")
        else:
            answer = _recorded_answer(call, response)
        if on_answer is not None:
            on_answer(answer)
        answers.append(answer)
    return answers


def _recorded_answer(call: Call, response: dict[str, Any]) -> Answer:
    status = response["status"]["code"]
    body = orjson.loads(response["body"]["string"] or b"null")
    if status >= 400:
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message", error) if isinstance(error, dict) else error
        return Answer(call.example_id, call.sample, error=f"HTTP {status}: {message}", error_kind="api")
    latency = response["headers"].get(LATENCY_HEADER)
    return _answer(call, body, float(latency[0]) / 1000 if latency else None, 0)


def run_calls_sync(
    calls: Sequence[Call],
    model: ModelSettings | ClientFactory,
    *,
    settings: EngineSettings | None = None,
    replay: bool = False,
    on_answer: Callable[[Answer], None] | None = None,
    progress: Progress | None = None,
) -> list[Answer]:
    """Blocking ``run_calls``: builds the client inside its own event loop and closes it there.

    ``model`` is the case's ModelSettings (client from ``clients.make_client``) or a zero-argument
    client factory. ``replay`` turns retries and budgets off. Works whether or not the calling thread
    already runs an event loop (notebooks, Databricks): then the run gets a thread of its own.
    """
    settings = settings or EngineSettings()
    if replay:
        settings = settings.for_replay()

    async def main() -> list[Answer]:
        client = make_client(model, replay=replay) if isinstance(model, ModelSettings) else model()
        async with client:
            return await run_calls(calls, client, settings=settings, on_answer=on_answer, progress=progress)

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
    return outcome["answers"]
