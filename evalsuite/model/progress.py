"""Stage 4: a live progress line per running case, and the cost estimate behind it.

A 25k-example case runs for minutes; the line answers "is it moving, is it being throttled, what
will it cost" without flooding logs. It is drawn on a TTY only, at most five times a second, and is
silent in CI (``CI`` set), in pytest-xdist workers (their stderr is not a terminal the user sees)
and when stderr is redirected. Counters are kept either way so the runner can read totals.

Prices are list prices in USD per 1k tokens, copied by hand and possibly outdated; projects add
or correct entries in ``[tool.evalsuite.prices]`` (``"my-deployment" = {input = 0.0025, output = 0.01}``,
read by the loader) or per model with ``price_per_1k_input`` / ``price_per_1k_output`` (``model_prices``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import TextIO

from evalsuite.cases.schema import ModelSettings
from evalsuite.records import Answer

# USD per 1k tokens (input, output); OpenAI list prices at the time of writing: may be outdated.
PRICES_PER_1K: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.00015, 0.0006),
    "gpt-4o": (0.0025, 0.01),
    "gpt-4-turbo": (0.01, 0.03),
    "gpt-4-32k": (0.06, 0.12),
    "gpt-4": (0.03, 0.06),
    "gpt-3.5-turbo-instruct": (0.0015, 0.002),
    "gpt-3.5-turbo": (0.0005, 0.0015),
}

Prices = Mapping[str, Mapping[str, float]]  # model name -> {"input": usd_per_1k, "output": usd_per_1k}


def model_prices(model: ModelSettings, table: Prices | None = None) -> dict[str, dict[str, float]]:
    """Price overrides for ``model``: the project table plus the case's own ``price_per_1k_*``."""
    prices = {name: dict(entry) for name, entry in (table or {}).items()}
    own = {"input": model.price_per_1k_input, "output": model.price_per_1k_output}
    own = {k: v for k, v in own.items() if v is not None}
    if own:
        prices[model.name] = {**prices.get(model.name, {}), **own}
    return prices


def _price(model_name: str, overrides: Prices | None) -> tuple[float, float] | None:
    if overrides and model_name in overrides:
        entry = overrides[model_name]
        if "input" in entry and "output" in entry:
            return entry["input"], entry["output"]
    if model_name in PRICES_PER_1K:
        return PRICES_PER_1K[model_name]
    # Dated snapshots ("gpt-4o-2024-08-06") cost what their family costs: longest matching prefix.
    families = [name for name in PRICES_PER_1K if model_name.startswith(name + "-")]
    return PRICES_PER_1K[max(families, key=len)] if families else None


def estimate_cost(
    model_name: str, prompt_tokens: int, completion_tokens: int, overrides: Prices | None = None
) -> float | None:
    """Estimated USD for the given usage, or None when the model has no known price."""
    price = _price(model_name, overrides)
    if price is None:
        return None
    return prompt_tokens / 1000 * price[0] + completion_tokens / 1000 * price[1]


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
