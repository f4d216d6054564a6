"""The minimum detectable drop: what a user reads to know whether an item is big enough to gate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from evalsuite.verdict._power import for_mean, for_proportion
from evalsuite.verdict.stats import mcnemar_exact


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
    tiny = for_proportion(4, 0.9, None, alpha=0.05, higher_is_better=True)  # all 4 lost: p = 2^-4 > 0.05
    assert tiny.drop is None and "even with all 4 examples worse" in tiny.text("drop")
    rising = for_proportion(8, 0.1, None, alpha=0.05, higher_is_better=False)  # a refusal rate can rise 0.625
    assert rising.drop == pytest.approx(5 / 8)
    assert "n=8: only an increase of 0.625 or more (5 of 8 examples) can be significant" in rising.text("increase")
    assert for_mean(np.zeros(4), np.ones(4), alpha=0.05).drop is None  # randomization test: p >= 2^-4


@pytest.mark.parametrize("n", range(1, 13))
def test_no_detectable_drop_only_when_losing_every_example_is_not_significant(n: int) -> None:
    never = mcnemar_exact(n, 0, alternative="worse") >= 0.05
    for value in (0.3, 0.5, 1.0):  # however far the baseline leaves room to fall
        assert (for_proportion(n, value, 0.5, alpha=0.05, higher_is_better=True).drop is None) == never


def test_a_baseline_too_low_to_fall_far_enough_is_said_not_called_too_few_examples() -> None:
    # 4 of 8 right in the baseline, all 4 others gained now: losing all 4 gives p = 2^-4, while on this n a
    # drop of 5 of 8 from a higher baseline is significant (p = 2^-5)
    assert mcnemar_exact(5, 0, alternative="worse") < 0.05 <= mcnemar_exact(4, 0, alternative="worse")
    detectable = for_proportion(8, 0.5, 0.5, alpha=0.05, higher_is_better=True)
    text = detectable.text("drop")
    assert detectable.drop == pytest.approx(5 / 8) and "no drop can reach significance" not in text
    assert text.startswith("n=8: only a drop of 0.625 or more (5 of 8 examples) can be significant")
    assert "this baseline leaves room for a drop of 0.500 at most, so none can be significant against it" in text


def test_detectable_drop_is_capped_at_the_largest_drop_the_baseline_allows() -> None:
    # n=20, every pair discordant: 80% power needs a drop of 0.528, but a baseline of 0.4 can lose only 0.4
    detectable = for_proportion(20, 0.4, 1.0, alpha=0.05, higher_is_better=True)
    assert detectable.drop == pytest.approx(0.4)
    text = detectable.text("drop")
    assert "80% power would need 0.528" in text and "more than the 0.400 this baseline can lose" in text
    assert "only a drop of 0.250 or more (5 of 20 examples) can be significant" in text


def test_mean_uses_the_paired_spread_or_the_baseline_spread_when_constant() -> None:
    rng = np.random.default_rng(0)
    differences, baseline = rng.normal(0, 0.2, 100), rng.random(100)
    assert for_mean(differences, baseline, alpha=0.05).drop == pytest.approx(
        (1.6449 + 0.8416) * differences.std(ddof=1) / 10, rel=1e-3)
    replay = for_mean(np.zeros(100), baseline, alpha=0.05)  # an identical replay: no paired spread to go on
    assert replay.drop == pytest.approx((1.6449 + 0.8416) * baseline.std(ddof=1) / 10, rel=1e-3)
    assert "SD of the baseline values" in replay.text("drop")
