"""A live progress line per running case: is it moving, is it being throttled, what will it cost.

A 25k-example case runs for minutes; the line answers those questions without flooding logs. It is
drawn on a TTY only, at most five times a second, and is silent in CI (``CI`` set), in pytest-xdist
workers (their stderr is not a terminal the user sees) and when stderr is redirected. Counters are
kept either way so the runner can read totals.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from evalsuite.model._pricing import Prices, estimate_cost
from evalsuite.records import Answer


def _enabled(stream: TextIO) -> bool:
    if os.environ.get("CI") or os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Counts answers of one case and redraws ``label  done/total  calls/s  retries  tokens  $cost``."""

    MIN_REDRAW_S = 0.2

    def __init__(
        self,
        label: str,
        total: int,
        *,
        model: str | None = None,
        prices: Prices | None = None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.model = model
        self.prices = prices
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _enabled(self.stream) if enabled is None else enabled
        self.done = 0
        self.errors = 0
        self.retries = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.concurrency: int | None = None
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._width = 0

    @property
    def cost_usd(self) -> float | None:
        if self.model is None:
            return None
        return estimate_cost(self.model, self.prompt_tokens, self.completion_tokens, self.prices)

    def add(self, answer: Answer) -> None:
        self.done += 1
        self.retries += answer.retries
        self.errors += answer.error is not None
        self.prompt_tokens += answer.prompt_tokens or 0
        self.completion_tokens += answer.completion_tokens or 0
        self._maybe_draw()

    def set_concurrency(self, limit: int) -> None:
        self.concurrency = limit
        self._maybe_draw()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        parts = [f"{self.label}  {self.done}/{self.total}", f"{self.done / elapsed:.1f} calls/s"]
        if self.concurrency is not None:
            parts.append(f"concurrency {self.concurrency}")
        if self.retries:
            parts.append(f"{self.retries} retries")
        if self.errors:
            parts.append(f"{self.errors} errors")
        parts.append(f"{self.prompt_tokens + self.completion_tokens:,} tokens")
        cost = self.cost_usd
        if cost is not None:
            parts.append(f"~${cost:.4f}")
        return "  ".join(parts)

    def _maybe_draw(self) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < self.MIN_REDRAW_S and self.done < self.total:
            return
        self._last_draw = now
        self._draw()

    def _draw(self) -> None:
        text = self.line()
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
