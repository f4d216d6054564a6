"""Admission: how many requests may be in flight to one endpoint, and when the next may start.

- **Adaptive concurrency (AIMD), per endpoint.** In-flight requests are capped by a limit that
  halves on a 429 (once per rate-limit episode: later 429s from requests sent under the old limit
  are the same episode) and grows by one after a limit's worth of successes, between 1 and the
  configured maximum. The learned limit is remembered per endpoint for the next case in the process.
- **Server-directed waits.** ``x-ratelimit-remaining-*: 0`` with ``x-ratelimit-reset-*`` pauses new
  sends until the reset; ``retry-after-ms``/``Retry-After`` are parsed here for the call that got them.
- **Budgets.** Optional requests/tokens-per-minute budgets pace sends before the server has to.
- **Holding.** The engine may hold every gate (``sending`` cleared): no new request starts until it is set
  again, and ``in_flight`` tells when the requests already sent are done.

The gate only counts and cuts; deciding whether a failure is a rate limit is the provider's job.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

CUT_WINDOW_S = 1.0  # minimum length of one rate-limit episode (one halving per episode)

# Concurrency limit learned per endpoint (base URL), carried to the next case in this process.
_learned_limits: dict[str, int] = {}

Headers = Mapping[str, str]


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


class Gate:
    """Admission for one endpoint: AIMD concurrency limit with FIFO hand-off, pauses and budgets."""

    def __init__(
        self,
        endpoint: str,
        *,
        concurrency: int,
        adaptive: bool = True,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        on_limit: Callable[[int], None] | None = None,
        sending: asyncio.Event | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.sending = sending  # cleared: hold every new request (the engine's hold)
        self.max = concurrency
        self.adaptive = adaptive
        self.limit = min(_learned_limits.get(endpoint, self.max), self.max) if adaptive else self.max
        self.in_flight = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.paused_until = 0.0
        self.episode_end = -math.inf
        self.successes = 0
        self.on_limit = on_limit
        self.requests = _Bucket(requests_per_minute) if requests_per_minute else None
        self.tokens = _Bucket(tokens_per_minute) if tokens_per_minute else None
        if on_limit is not None:
            on_limit(self.limit)

    async def acquire(self, tokens: float) -> None:
        if self.requests is not None:
            await self.requests.take(1)
        if self.tokens is not None:
            await self.tokens.take(tokens)
        while True:
            await self._until_open()
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
            if self._is_open():
                return
            self.release()  # a pause or a hold began while we waited for the slot: wait it out first

    async def _until_open(self) -> None:
        while not self._is_open():
            if self.sending is not None and not self.sending.is_set():
                await self.sending.wait()
            pause = self.paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)

    def _is_open(self) -> bool:
        return self.paused_until <= time.monotonic() and (self.sending is None or self.sending.is_set())

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

    def succeeded(self, headers: Headers, used_tokens: int | None, estimated_tokens: float) -> None:
        if self.tokens is not None and used_tokens is not None:
            self.tokens.adjust(used_tokens - estimated_tokens)
        self._pause_if_exhausted(headers)
        if self.adaptive and self.limit < self.max:
            self.successes += 1
            if self.successes >= self.limit:
                self._set_limit(self.limit + 1, "successes")
                self._grant()

    def rate_limited(self, headers: Headers | None, retry_after: float | None) -> None:
        if headers is not None:
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
            if self.on_limit is not None:
                self.on_limit(limit)
        self.successes = 0

    def _pause_if_exhausted(self, headers: Headers) -> None:
        for kind in ("requests", "tokens"):
            if headers.get(f"x-ratelimit-remaining-{kind}") == "0":
                reset = reset_seconds(headers.get(f"x-ratelimit-reset-{kind}"))
                if reset:
                    self.paused_until = max(self.paused_until, time.monotonic() + reset)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def reset_seconds(value: str | None) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` value: ``"20ms"``, ``"1s"``, ``"6m0s"`` or a bare number."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parts = _DURATION_PART.findall(value)
        return sum(float(n) * _DURATION_UNITS[unit] for n, unit in parts) if parts else None


def retry_after_seconds(headers: Headers) -> float | None:
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
