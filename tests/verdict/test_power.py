"""The minimum detectable drop: what a user reads to know whether an item is big enough to gate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from evalsuite.verdict._power import for_mean, for_proportion


def _simulated_power(n: int, accuracy: float, churn: float, drop: float, alpha: float = 0.05) -> float:
    """Exact power of one-sided exact McNemar when each example differs with probability ``churn`` and a
    difference is a loss with probability 1/2 + drop / (2 churn) (the gate_quality benchmark's model)."""
    q = 0.5 + drop / (2 * churn)
    power = 0.0
    for d in range(1, n + 1):
        losses = np.arange(d + 1)
        reject = binom.sf(losses - 1, d, 0.5) < alpha
        power += binom.pmf(d, n, churn) * binom.pmf(losses, d, q)[reject].sum()
    return float(power)


def test_detectable_drop_has_about_80_percent_power_at_the_observed_churn() -> None:
    mde = for_proportion(1000, 0.85, 0.10, alpha=0.05, higher_is_better=True).drop
    assert mde is not None and 0.02 < mde < 0.03
    assert _simulated_power(1000, 0.85, 0.10, mde) == pytest.approx(0.8, abs=0.07)


def test_without_observed_churn_independent_errors_are_assumed_and_said() -> None:
    detectable = for_proportion(200, 0.9, None, alpha=0.05, higher_is_better=True)
    assert detectable.drop == pytest.approx(0.074, abs=0.002)
    assert "2p(1-p), independent errors assumed" in detectable.text("drop")


def test_exact_floor_and_items_that_can_never_reach_significance() -> None:
    assert for_proportion(8, 0.85, None, alpha=0.05, higher_is_better=True).drop == pytest.approx(5 / 8)
    assert for_proportion(4, 0.9, None, alpha=0.05, higher_is_better=True).drop is None  # 2^-4 > 0.05
    assert for_proportion(8, 0.3, None, alpha=0.05, higher_is_better=True).drop is None  # cannot fall 0.625 below 0.3
    rising = for_proportion(8, 0.1, None, alpha=0.05, higher_is_better=False)  # a refusal rate can rise 0.625
    assert rising.drop == pytest.approx(5 / 8) and "smallest increase this item can detect" in rising.text("increase")
    assert for_mean(np.zeros(4), np.ones(4), alpha=0.05).drop is None  # randomization test: p >= 2^-4


def test_mean_uses_the_paired_spread_or_the_baseline_spread_when_constant() -> None:
    rng = np.random.default_rng(0)
    differences, baseline = rng.normal(0, 0.2, 100), rng.random(100)
    assert for_mean(differences, baseline, alpha=0.05).drop == pytest.approx(
        (1.6449 + 0.8416) * differences.std(ddof=1) / 10, rel=1e-3)
    replay = for_mean(np.zeros(100), baseline, alpha=0.05)  # an identical replay: no paired spread to go on
    assert replay.drop == pytest.approx((1.6449 + 0.8416) * baseline.std(ddof=1) / 10, rel=1e-3)
    assert "SD of the baseline values" in replay.text("drop")
