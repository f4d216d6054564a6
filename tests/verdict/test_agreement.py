"""Agreement across repeats: one computation for the runner's value and the reports' text."""

from __future__ import annotations

import pytest

from evalsuite.verdict import Agreement, agreement


def test_agreement_counts_split_examples_and_the_mean_share() -> None:
    samples = [("a", "pos"), ("a", "pos"), ("a", "neg"), ("b", 1), ("b", 1), ("b", 1)]
    result = agreement(samples)
    assert (result.examples, result.samples, result.split) == (2, 3, 1)
    assert result.mean == pytest.approx((2 / 3 + 1) / 2)


def test_no_samples_agree_fully() -> None:
    assert agreement([]) == Agreement(examples=0, samples=0, split=0, mean=1.0)
