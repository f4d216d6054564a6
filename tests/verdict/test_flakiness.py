"""Measured flakiness: how likely an item's pass/fail verdict flips on a re-run, and which examples flip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.verdict.flakiness import flakiness
from tests._support.builders import mean_metric
from tests._support.scored import score_repeats_case


def _keys(examples: int, samples: int) -> list[str]:
    return [f"ex{e}#{s}" for e in range(examples) for s in range(samples)]


def test_item_on_its_threshold_is_flaky_and_names_the_splitting_examples() -> None:
    # 10 examples x 4 samples; 8 always right, 2 right half the time: accuracy 0.9 against min 0.9.
    values = [1] * 32 + [1, 0, 1, 0] * 2
    predictions = [(f"ex{i // 4}", "ok" if v else "bad") for i, v in enumerate(values)]
    result = flakiness([(mean_metric(), MetricSpec(min=0.9), values)], _keys(10, 4), predictions)
    assert result.probability is not None and 0.3 < result.probability < 0.7
    assert result.examples == ["ex8", "ex9"]


def test_item_far_from_its_threshold_is_not_flaky_even_with_split_examples() -> None:
    values = [1] * 32 + [1, 0, 1, 0] * 2
    predictions = [(f"ex{i // 4}", "ok" if v else "bad") for i, v in enumerate(values)]
    result = flakiness([(mean_metric(), MetricSpec(min=0.5), values)], _keys(10, 4), predictions)
    assert result.probability == 0.0 and result.examples == ["ex8", "ex9"]


def test_no_repeats_or_no_threshold_gives_no_measure() -> None:
    values = [1, 0, 1]
    assert flakiness([(mean_metric(), MetricSpec(min=0.5), values)], _keys(3, 1), []).probability is None
    assert flakiness([(mean_metric(), MetricSpec(), [1, 0] * 3)], _keys(3, 2), []).probability is None


def test_most_flipping_examples_come_first_and_at_most_ten() -> None:
    # ex0, ex3, ...: samples agree; ex1, ex4, ...: 2 answers (agreement 1/2); ex2, ex5, ...: 3 answers (1/3).
    predictions = [(f"ex{e}", s % (1 + e % 3)) for e in range(18) for s in range(6)]
    examples = flakiness([(mean_metric(), MetricSpec(min=0.1), [1] * 108)], _keys(18, 6), predictions).examples
    assert examples == ["ex2", "ex5", "ex8", "ex11", "ex14", "ex17", "ex1", "ex4", "ex7", "ex10"]


def test_corpus_and_max_thresholds_are_recomputed_per_draw() -> None:
    from evalsuite.metrics import MetricInfo

    median = MetricInfo("latency_p50", "corpus", False, "median", lambda v: float(np.median(v)), None, False)
    rng = np.random.default_rng(0)
    values = rng.uniform(0.9, 1.1, 40).tolist()
    result = flakiness([(median, MetricSpec(max=float(np.median(values))), values)], _keys(10, 4), [])
    assert result.probability is not None and 0.2 < result.probability < 0.8


def test_scored_item_with_repeats_carries_its_flakiness(tmp_path: Path) -> None:
    from evalsuite.records import ItemResult

    wrong = {("e8", 1), ("e8", 3), ("e9", 0), ("e9", 2)}
    result = score_repeats_case(tmp_path, wrong, rows=10, repeats=4)
    assert result.flakiness == pytest.approx(0.5, abs=0.2) and result.flaky_examples == ["e8", "e9"]
    assert ItemResult.from_dict(result.to_dict()).flakiness == result.flakiness
