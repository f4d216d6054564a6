"""Cost estimates: a list-price table, project overrides and per-model prices.

Prices are list prices in USD per 1k tokens, copied by hand and possibly outdated; projects add
or correct entries in ``[tool.evalsuite.prices]`` (``"my-deployment" = {input = 0.0025, output = 0.01}``,
read by the loader) or per model with ``price_per_1k_input`` / ``price_per_1k_output`` (``model_prices``).
"""

from __future__ import annotations

from collections.abc import Mapping

from evalsuite.cases.schema import ModelSettings

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
    given = {"input": model.price_per_1k_input, "output": model.price_per_1k_output}
    own = {k: v for k, v in given.items() if v is not None}
    if own:
        prices[model.name] = {**prices.get(model.name, {}), **own}
    return prices


def price_per_1k(model_name: str, overrides: Prices | None = None) -> tuple[float, float] | None:
    """USD per 1k (input, output) tokens of ``model_name``: the overrides, else the table; None if unknown."""
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
    price = price_per_1k(model_name, overrides)
    if price is None:
        return None
    return prompt_tokens / 1000 * price[0] + completion_tokens / 1000 * price[1]
