"""Cost estimates: the list-price table, dated snapshots, project and per-model overrides."""

from __future__ import annotations

import pytest

from evalsuite.cases.schema import ModelSettings
from evalsuite.model import estimate_cost, model_prices


def test_cost_estimate_uses_the_price_table_snapshots_and_overrides() -> None:
    assert estimate_cost("gpt-4o", 1000, 1000) == pytest.approx(0.0125)
    assert estimate_cost("gpt-4o-mini-2024-07-18", 1000, 0) == pytest.approx(0.00015)
    assert estimate_cost("my-azure-deployment", 1000, 1000) is None
    model = ModelSettings(name="my-azure-deployment", price_per_1k_input=0.001, price_per_1k_output=0.002)
    assert estimate_cost(model.name, 2000, 1000, model_prices(model)) == pytest.approx(0.004)
    assert estimate_cost("gpt-4", 1000, 0, {"gpt-4": {"input": 1.0, "output": 1.0}}) == 1.0
