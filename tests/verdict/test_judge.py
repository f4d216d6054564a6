"""Verdicts a reviewer sees: thresholds, significant regressions, tolerated drops, improvements."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.metrics import MetricInfo
from evalsuite.verdict import judge
from tests._support.builders import mean_metric


def macro_f1(values: Sequence[Any]) -> float:
    """values are (prediction, expected) pairs. Counted by hand: the bootstrap calls this ~3,000 times
    (sklearn's f1_score costs ~8 ms a call)."""
    counts = Counter((pred == gold, pred, gold) for pred, gold in values)
    scores = []
    for label in {gold for _, gold in values}:
        tp = counts[(True, label, label)]
        fp = sum(n for (ok, pred, _), n in counts.items() if pred == label and not ok)
        fn = sum(n for (ok, _, gold), n in counts.items() if gold == label and not ok)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


MACRO_F1 = MetricInfo("macro_f1", "corpus", True, "macro-averaged F1", macro_f1)


def keys(n: int) -> list[str]:
    return [f"ex{i}#0" for i in range(n)]


def flip(values: np.ndarray, losses: int, gains: int, seed: int = 0) -> list[int]:
    """Copy of 0/1 values with ``losses`` ones turned to 0 and ``gains`` zeros turned to 1."""
    rng = np.random.default_rng(seed)
    out = values.copy()
    out[rng.choice(np.flatnonzero(values == 1), losses, replace=False)] = 0
    out[rng.choice(np.flatnonzero(values == 0), gains, replace=False)] = 1
    return out.tolist()


@pytest.fixture
def old() -> np.ndarray:
    return (np.random.default_rng(42).random(1000) < 0.85).astype(int)


def test_no_baseline_passes_with_interval_and_threshold(old: np.ndarray) -> None:
    result = judge(mean_metric(), MetricSpec(min=0.8), old.tolist(), keys(1000))
    assert result.verdict == "pass"
    assert result.value == pytest.approx(old.mean())
    assert result.interval == "wilson" and result.ci_low < result.value < result.ci_high
    assert result.n == 1000 and result.n_paired == 0 and result.test == ""
    assert "meets min 0.800" in result.reason


def test_significant_drop_is_a_regression(old: np.ndarray) -> None:
    new = flip(old, losses=45, gains=10)  # -3.5 points, 55 discordant pairs
    result = judge(mean_metric(), MetricSpec(min=0.5), new, keys(1000), dict(zip(keys(1000), old.tolist())))
    assert result.verdict == "regression" and result.failed
    assert result.test == "mcnemar-exact" and result.n_paired == 1000
    assert result.delta == pytest.approx(-0.035)
    assert result.baseline == pytest.approx(old.mean())
    assert result.p_value < 0.001
    assert "45 flipped to 0, 10 flipped to 1" in result.reason and "REGRESSION" in result.reason


def test_reshuffled_answers_with_equal_accuracy_are_unchanged(old: np.ndarray) -> None:
    new = flip(old, losses=40, gains=36)  # lots of churn, -0.4 points
    result = judge(mean_metric(), MetricSpec(), new, keys(1000), dict(zip(keys(1000), old.tolist())))
    assert result.verdict == "unchanged" and not result.failed
    assert result.p_value > 0.3
    assert "not significant" in result.reason


def test_improvement_is_reported(old: np.ndarray) -> None:
    new = flip(old, losses=5, gains=40)
    result = judge(mean_metric(), MetricSpec(), new, keys(1000), dict(zip(keys(1000), old.tolist())))
    assert result.verdict == "improved" and not result.failed
    assert result.delta == pytest.approx(0.035)
    # p_value is always the p for a drop (it used to be the improvement's p here); the improvement has its own field
    assert result.p_improvement < 0.001 and result.p_value > 0.999
    assert result.p_method == "exact" and result.p_mc_se is None


def test_max_drop_tolerates_a_small_significant_drop(old: np.ndarray) -> None:
    new = flip(old, losses=20, gains=0)  # -2 points, highly significant
    base = dict(zip(keys(1000), old.tolist()))
    assert judge(mean_metric(), MetricSpec(), new, keys(1000), base).verdict == "regression"
    tolerated = judge(mean_metric(), MetricSpec(max_drop=0.03), new, keys(1000), base)
    assert tolerated.verdict == "unchanged"
    assert "within max_drop 0.030" in tolerated.reason
    assert judge(mean_metric(), MetricSpec(max_drop=0.01), new, keys(1000), base).verdict == "regression"


def test_threshold_failure_takes_precedence_and_reason_names_both(old: np.ndarray) -> None:
    new = flip(old, losses=80, gains=0)
    result = judge(mean_metric(), MetricSpec(min=0.8), new, keys(1000), dict(zip(keys(1000), old.tolist())))
    assert result.verdict == "fail"
    assert "below min 0.800" in result.reason and "REGRESSION" in result.reason
    assert result.delta == pytest.approx(-0.08)


def test_threshold_max_and_interval_straddle_note() -> None:
    values = [1] * 12 + [0] * 8  # 0.6 on 20 examples
    result = judge(mean_metric(name="refusal_rate", higher_is_better=False), MetricSpec(max=0.5), values, keys(20))
    assert result.verdict == "fail"
    assert "above max 0.500" in result.reason and "too few examples" in result.reason


def test_lower_is_better_direction() -> None:
    old = np.zeros(400, dtype=int)
    old[:40] = 1
    new = flip(old, losses=0, gains=30)  # the rate rises from 10% to 17.5%: worse
    metric = mean_metric(name="refusal_rate", higher_is_better=False)
    result = judge(metric, MetricSpec(), new, keys(400), dict(zip(keys(400), old.tolist())))
    assert result.verdict == "regression" and result.delta == pytest.approx(0.075)
    better = judge(metric, MetricSpec(), old.tolist(), keys(400), dict(zip(keys(400), new)))
    assert better.verdict == "improved"


def test_unmatched_examples_are_counted_and_reported(old: np.ndarray) -> None:
    base = {f"ex{i}#0": int(old[i]) for i in range(100, 1000)}
    base["gone#0"] = 1
    result = judge(mean_metric(), MetricSpec(), old.tolist(), keys(1000), base)
    assert result.n == 1000 and result.n_paired == 900
    assert "100 example(s) new since the baseline, 1 baseline example(s) missing" in result.reason
    assert result.verdict == "unchanged" and result.delta == 0


def test_baseline_without_any_matching_key() -> None:
    result = judge(mean_metric(), MetricSpec(), [1, 0, 1], keys(3), {"other#0": 1})
    assert result.verdict == "pass" and result.n_paired == 0 and result.delta is None
    assert "no example key matches the baseline" in result.reason


def test_mean_metric_uses_bootstrap_interval_and_paired_permutation_test() -> None:
    rng = np.random.default_rng(1)
    old = rng.random(800)
    new = np.clip(old - 0.05 + rng.normal(0, 0.05, 800), 0, 1)
    metric = mean_metric(name="rougeL", kind="mean")
    result = judge(metric, MetricSpec(min=0.3), new.tolist(), keys(800), dict(zip(keys(800), old.tolist())))
    assert result.interval == "bootstrap" and result.test == "paired-permutation"
    assert result.verdict == "regression" and result.delta == pytest.approx(new.mean() - old.mean())
    assert result.p_value == pytest.approx(1 / 2001)  # no random swap of the 800 pairs drops this far
    assert ("by paired bootstrap; paired randomization test one-sided p<0.001 (Monte Carlo, 2000 rounds) for a drop"
            in result.reason)
    assert result.p_method == "monte-carlo" and result.p_mc_se == pytest.approx((1 / 2001 * 2000 / 2001 / 2000) ** 0.5)
    again = judge(metric, MetricSpec(min=0.3), new.tolist(), keys(800), dict(zip(keys(800), old.tolist())))
    assert (again.ci_low, again.ci_high, again.p_value) == (result.ci_low, result.ci_high, result.p_value)


def test_corpus_metric_bootstraps_its_own_aggregate() -> None:
    rng = np.random.default_rng(2)
    gold = rng.choice(["pos", "neg", "neu"], 300).tolist()
    old = [(g, g) if rng.random() < 0.9 else ("neu", g) for g in gold]
    new = [(g, g) if rng.random() < 0.6 else ("neu", g) for g in gold]
    result = judge(MACRO_F1, MetricSpec(), new, keys(300), dict(zip(keys(300), old)))
    assert result.interval == "bootstrap" and result.test == "paired-permutation"
    assert result.verdict == "regression" and result.delta < -0.1


def test_corpus_metric_small_one_directional_drop_is_not_overstated() -> None:
    # n = 8, 4 examples flip to wrong and none to right: the exact McNemar p on the same accuracy data is
    # 1/16, and the macro-F1 gate must not claim more certainty than that (the shifted bootstrap said p<0.001).
    gold = ["pos", "neg"] * 4
    old = [(g, g) for g in gold]
    new = [("neg" if g == "pos" else "pos", g) if i < 4 else (g, g) for i, g in enumerate(gold)]
    result = judge(MACRO_F1, MetricSpec(), new, keys(8), dict(zip(keys(8), old)))
    assert result.test == "paired-permutation" and result.delta == pytest.approx(-0.5)
    assert result.p_value == pytest.approx(1 / 16, abs=0.02)
    assert result.verdict == "unchanged" and "not significant at alpha 0.05" in result.reason
    accuracy = judge(mean_metric(), MetricSpec(), [int(p == g) for p, g in new], keys(8), {k: 1 for k in keys(8)})
    assert accuracy.test == "mcnemar-exact" and accuracy.p_value == 0.0625 and accuracy.verdict == "unchanged"


def test_missing_values_are_excluded_and_all_missing_is_an_error() -> None:
    result = judge(mean_metric(name="latency", kind="mean", higher_is_better=False), MetricSpec(max=2.0),
                   [1.0, None, 3.0], keys(3))
    assert result.n == 2 and result.value == pytest.approx(2.0) and result.verdict == "pass"
    error = judge(mean_metric(name="latency", kind="mean"), MetricSpec(), [None, None], keys(2))
    assert error.verdict == "error" and error.failed and error.value is None


def test_real_f1_metric_is_compared_with_its_baseline() -> None:
    """The registry's f1 (corpus kind, vectorised resampling) through the whole baseline comparison."""
    from evalsuite.metrics import get_metric

    f1 = get_metric("f1", MetricSpec(params={"average": "macro"})).info()
    expected = ["positive", "negative"] * 20
    keys = [f"e{i}#0" for i in range(len(expected))]
    old = [[label, label] for label in expected]  # all right
    new = [["positive", label] for label in expected]  # every negative now wrong
    result = judge(f1, MetricSpec(), new, keys, dict(zip(keys, old)))
    assert result.test == "paired-permutation"
    assert result.baseline == pytest.approx(1.0) and result.value == pytest.approx(1 / 3)
    assert result.verdict == "regression" and result.p_value < 0.001


# Repeats: keys "<example_id>#<sample>" with several samples per example.

def repeat_keys(n: int, samples: int) -> list[str]:
    return [f"ex{i}#{s}" for i in range(n) for s in range(samples)]


def per_example(right: list[int], samples: int = 5) -> list[int]:
    """0/1 sample values: example i has right[i] of its samples right (the first ones)."""
    return [int(s < r) for r in right for s in range(samples)]


REPEAT_RIGHT = [5, 5, 5, 5, 5, 5, 1, 1]  # 32 / 40 = 0.8, strongly clustered by example


def test_repeats_interval_is_a_cluster_bootstrap_wider_than_wilson_on_all_samples() -> None:
    from evalsuite.verdict.stats import wilson

    values, keys_ = per_example(REPEAT_RIGHT), repeat_keys(8, 5)
    result = judge(mean_metric(), MetricSpec(min=0.7), values, keys_)
    assert result.value == pytest.approx(0.8) and result.n == 40
    assert result.interval == "cluster-bootstrap"
    wilson_lo, wilson_hi = wilson(32, 40)  # [0.652, 0.895]: 40 trials treated as independent
    assert result.ci_high - result.ci_low > wilson_hi - wilson_lo
    assert result.ci_low < wilson_lo and result.ci_low < 0.7  # 6 of 8 examples right cannot rule out 0.7
    assert "cluster-bootstrap) on n=40 (8 examples x 5 samples)" in result.reason
    assert "too few examples to be sure" in result.reason
    again = judge(mean_metric(), MetricSpec(min=0.7), values, keys_)
    assert (again.ci_low, again.ci_high) == (result.ci_low, result.ci_high)
    other = judge(mean_metric(), MetricSpec(min=0.7), values, keys_, seed=1)
    assert (other.ci_low, other.ci_high) != (result.ci_low, result.ci_high)


def test_repeats_baseline_with_shuffled_samples_is_unchanged() -> None:
    keys_ = repeat_keys(8, 5)
    right = [4, 3, 5, 2, 4, 1, 3, 5]
    new = per_example(right)
    rng = np.random.default_rng(0)
    old = np.array(new).reshape(8, 5)
    old = np.array([rng.permutation(row) for row in old]).ravel().tolist()  # same per-example means
    assert sum(a != b for a, b in zip(old, new)) >= 8  # sample-by-sample pairing would see churn
    result = judge(mean_metric(), MetricSpec(), new, keys_, dict(zip(keys_, old)))
    assert result.verdict == "unchanged" and result.test == "paired-permutation"
    assert result.n_paired == 8 and result.n_new == 0 and result.n_missing == 0
    assert result.delta == pytest.approx(0.0) and result.p_value > 0.9
    assert "on 8 paired examples, per example (mean of 5 samples)" in result.reason


def test_repeats_real_drop_on_most_examples_is_a_regression() -> None:
    keys_ = repeat_keys(8, 5)
    old = per_example([4] * 8)
    new = per_example([1] * 7 + [4])  # 7 of 8 examples drop from 4/5 to 1/5
    result = judge(mean_metric(), MetricSpec(), new, keys_, dict(zip(keys_, old)))
    assert result.verdict == "regression" and result.test == "paired-permutation"
    assert result.n_paired == 8 and result.baseline == pytest.approx(0.8)
    assert result.delta == pytest.approx(-0.525)
    # 8 paired examples: the randomization test cannot go below ~1/128 (7 moved, one tie), not the 1e-9 of 40 "pairs".
    assert 1 / 256 < result.p_value < 0.05
    assert "per example (mean of 5 samples)" in result.reason and "REGRESSION" in result.reason


def test_repeats_mean_metric_and_missing_samples() -> None:
    rng = np.random.default_rng(3)
    keys_ = repeat_keys(30, 3)
    old = rng.random(90)
    new = (old - 0.2).tolist()
    new[4] = None  # one failed sample: the example is still paired on its other samples
    metric = mean_metric(name="rougeL", kind="mean")
    result = judge(metric, MetricSpec(), new, keys_, dict(zip(keys_, old.tolist())))
    assert result.interval == "cluster-bootstrap" and result.n == 89
    assert result.n_paired == 30 and result.verdict == "regression"
    assert "per example (mean of 2-3 samples)" in result.reason


def test_repeats_corpus_metric_pairs_by_example_or_is_not_compared() -> None:
    rng = np.random.default_rng(4)
    gold = ["pos", "neg"] * 15
    keys_ = repeat_keys(30, 3)
    old = [(g, g) for g in gold for _ in range(3)]
    new = [(g, g) if i >= 20 or rng.random() < 0.3 else ("neg" if g == "pos" else "pos", g)
           for i, g in enumerate(gold) for _ in range(3)]
    result = judge(MACRO_F1, MetricSpec(), new, keys_, dict(zip(keys_, old)))
    assert result.interval == "cluster-bootstrap" and result.test == "paired-permutation"
    assert result.n_paired == 30 and result.verdict == "regression"
    assert "30 paired examples x 3 samples, resampled and swapped by example" in result.reason

    fewer = {k: v for k, v in zip(keys_, old) if not k.endswith("#2")}  # baseline had repeats: 2
    result = judge(MACRO_F1, MetricSpec(), new, keys_, fewer)
    assert result.verdict == "pass" and result.delta is None and result.test == ""
    assert "baseline not compared" in result.reason and "3 now, 2 before" in result.reason


def test_repeats_real_f1_metric_uses_the_batched_cluster_path() -> None:
    from evalsuite.metrics import get_metric

    f1 = get_metric("f1", MetricSpec(params={"average": "macro"})).info()
    expected = ["positive", "negative"] * 10
    keys_ = repeat_keys(20, 4)
    old = [[label, label] for label in expected for _ in range(4)]
    new = [["positive", label] for label in expected for _ in range(4)]
    result = judge(f1, MetricSpec(), new, keys_, dict(zip(keys_, old)))
    assert result.interval == "cluster-bootstrap" and result.ci_low is not None
    assert result.value == pytest.approx(1 / 3) and result.baseline == pytest.approx(1.0)
    assert result.verdict == "regression" and result.n_paired == 20


# Issue 16 item 8: p-values that say what they are, p_value always for a drop, the detectable drop, usage metrics.

def _paired_mean(differences: list[float]) -> tuple[list[float], dict[str, float], list[str]]:
    """New values 0.5 + d against a baseline of 0.5 on every example."""
    ks = keys(len(differences))
    return [0.5 + d for d in differences], {k: 0.5 for k in ks}, ks


def test_borderline_p_is_exact_not_a_monte_carlo_estimate_on_the_wrong_side_of_alpha() -> None:
    # 14 examples differ: the exact p is 0.0549 (not significant); the old 2,000-round estimate said 0.046 and
    # called this a regression on every run, the seed being fixed.
    new, base, ks = _paired_mean([-0.01, -0.05, 0.06, -0.09, -0.09, -0.01, -0.12, -0.07, 0.04, -0.01, -0.05, 0.06,
                                  -0.01, -0.02])
    result = judge(mean_metric(name="rougeL", kind="mean"), MetricSpec(), new, ks, base)
    assert result.verdict == "unchanged" and result.p_method == "exact" and result.p_mc_se is None
    assert result.p_value == pytest.approx(899 / 16384)
    assert "one-sided p=0.0549 (exact) for a drop" in result.reason


def test_monte_carlo_p_near_alpha_is_estimated_again_with_more_rounds() -> None:
    # 24 examples differ (2^24 patterns: sampled). 2,000 rounds estimate 0.045 (a regression); 20,000 say 0.057.
    new, base, ks = _paired_mean([-0.1, -0.03, 0.04, 0.01, -0.16, 0.01, -0.01, -0.08, 0.03, 0.01, 0.11, -0.21, 0.02,
                                  -0.12, -0.03, 0.01, 0.08, -0.02, -0.1, 0.03, 0.01, 0.06, -0.25, -0.03])
    result = judge(mean_metric(name="rougeL", kind="mean"), MetricSpec(), new, ks, base)
    assert result.verdict == "unchanged" and result.p_method == "monte-carlo"
    assert result.p_value == pytest.approx(0.0572, abs=0.0001)
    assert result.p_mc_se == pytest.approx((result.p_value * (1 - result.p_value) / 20000) ** 0.5)
    assert "p=0.057 +/- 0.002 (Monte Carlo, 20000 rounds) for a drop" in result.reason


def test_small_item_says_which_drop_it_can_detect(old: np.ndarray) -> None:
    small = judge(mean_metric(), MetricSpec(min=0.5), [1] * 7 + [0], keys(8), {k: 1 for k in keys(8)})
    assert small.mde == pytest.approx(0.625)  # 5 losses of 8 is the least exact McNemar can call significant
    assert "n=8: only a drop of 0.625 or more (5 of 8 examples) can be significant" in small.reason
    assert "add examples to gate on smaller drops" in small.reason
    tiny = judge(mean_metric(), MetricSpec(), [1, 1, 0, 1], keys(4))  # no baseline: from n alone
    assert tiny.mde is None and "n=4: no drop can reach significance at one-sided alpha 0.05" in tiny.reason
    large = judge(mean_metric(), MetricSpec(), flip(old, 20, 20), keys(1000), dict(zip(keys(1000), old.tolist())))
    assert 0.015 < large.mde < 0.03 and "minimum detectable drop" in large.reason and "as observed" in large.reason


def test_mean_metric_detectable_drop_uses_the_paired_spread() -> None:
    rng = np.random.default_rng(5)
    old = rng.random(400)
    new = old + rng.normal(0, 0.1, 400)
    result = judge(mean_metric(name="rougeL", kind="mean"), MetricSpec(), new.tolist(), keys(400),
                   dict(zip(keys(400), old.tolist())))
    assert result.mde == pytest.approx((1.6449 + 0.8416) * np.std(new - old, ddof=1) / 20, rel=1e-3)
    assert "SD of the paired differences" in result.reason
    assert judge(mean_metric(name="rougeL", kind="mean"), MetricSpec(), new.tolist(), keys(400)).mde is None


def _latency(name: str = "latency_p50") -> MetricInfo:
    return MetricInfo(name, "corpus", False, "median latency", lambda v: float(np.median(v)), None, False)


def test_latency_rise_is_reported_as_an_increase_and_not_gated_unless_asked() -> None:
    rng = np.random.default_rng(6)
    before = rng.uniform(0.2, 0.4, 200)
    after = before * 2  # a loaded machine while recording
    base = dict(zip(keys(200), before.tolist()))
    result = judge(_latency(), MetricSpec(), after.tolist(), keys(200), base)
    assert result.verdict == "unchanged" and not result.failed and result.delta > 0
    assert "for an increase" in result.reason and "for a drop" not in result.reason
    assert "an increase, significant at alpha 0.05, but not gated" in result.reason
    assert "set max_increase to gate it" in result.reason
    assert result.p_value < 0.001 and result.mde is None
    gated = judge(_latency(), MetricSpec(max_increase=0.05), after.tolist(), keys(200), base)
    assert gated.verdict == "regression" and "beyond max_increase 0.050" in gated.reason
    assert gated.max_increase == 0.05
    tolerated = judge(_latency(), MetricSpec(max_increase=1.0), after.tolist(), keys(200), base)
    assert tolerated.verdict == "unchanged" and "within max_increase 1.000" in tolerated.reason


def test_registered_usage_metrics_are_not_gated_by_default() -> None:
    from evalsuite.metrics import get_metric

    infos = {name: get_metric(name, MetricSpec()).info() for name in
             ("latency_p50", "latency_p95", "prompt_tokens", "completion_tokens", "accuracy")}
    assert {name: info.gated_by_default for name, info in infos.items()} == {
        "latency_p50": False, "latency_p95": False, "prompt_tokens": False, "completion_tokens": False,
        "accuracy": True}


def test_old_report_metrics_without_the_new_fields_still_load() -> None:
    from evalsuite.records import ItemResult
    from tests._support.builders import make_item

    data = make_item().to_dict()
    for metric in data["metrics"]:
        for new_field in ("p_improvement", "p_method", "p_mc_se", "mde", "max_increase"):
            metric.pop(new_field)
    data.pop("flakiness"), data.pop("flaky_examples")
    item = ItemResult.from_dict(data)
    assert item.metrics[0].p_method == "" and item.metrics[0].mde is None and item.flakiness is None
