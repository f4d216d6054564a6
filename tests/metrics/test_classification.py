"""Label and string-match metrics against scikit-learn on the same inputs, bootstrap fast path included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from evalsuite.cases.schema import MetricSpec
from evalsuite.metrics import _classification, get_metric
from evalsuite.records import Scored
from tests._support.scored import scored, value_of


Y_TRUE = ["pos", "neg", "neu", "pos", "neg", "pos", "neu", "neg", "pos", "neg"]


Y_PRED = ["pos", "neg", "pos", None, "neg", "neu", "neu", "pos", "pos", None]  # None = unparsed


def label_batch() -> list[Scored]:
    return [scored(p, t, parsed=p is not None, text=p or "no idea") for p, t in zip(Y_PRED, Y_TRUE)]


def test_accuracy_counts_unparsed_as_wrong():
    expected = accuracy_score(Y_TRUE, [p or "<unparsed>" for p in Y_PRED])
    assert value_of("accuracy", label_batch()) == pytest.approx(expected) == 0.5
    assert value_of("accuracy", [scored("4", 4), scored(4, ["3", "4"]), scored("4", "4 ")]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
@pytest.mark.parametrize("name,index", [("precision", 0), ("recall", 1), ("f1", 2)])
def test_prf_equals_sklearn(name, index, average):
    y_pred = [p or "<unparsed>" for p in Y_PRED]
    labels = ["neg", "neu", "pos"]  # the unparsed answers are wrong, not a class of their own
    expected = precision_recall_fscore_support(Y_TRUE, y_pred, labels=labels, average=average, zero_division=0)[index]
    assert value_of(name, label_batch(), average=average) == pytest.approx(expected, abs=1e-12)


def test_binary_f1_with_pos_label():
    y_true = ["pos", "neg", "pos", "pos", "neg", "neg"]
    y_pred = ["pos", "pos", "neg", "pos", "neg", "neg"]
    items = [scored(p, t) for p, t in zip(y_pred, y_true)]
    for name, index in (("precision", 0), ("recall", 1), ("f1", 2)):
        expected = precision_recall_fscore_support(y_true, y_pred, pos_label="pos", average="binary", zero_division=0)[index]
        assert value_of(name, items, average="binary", pos_label="pos") == pytest.approx(expected)
    items[0] = scored(None, "pos", parsed=False, text="?")  # an unparsed positive is a missed positive
    assert value_of("recall", items, average="binary", pos_label="pos") == pytest.approx(1 / 3)


def test_f1_of_a_subset_is_recomputed_from_the_pairs():
    metric = get_metric("f1", MetricSpec())
    values = metric.score(label_batch())
    assert metric.aggregate(values[:3]) == pytest.approx(
        precision_recall_fscore_support(Y_TRUE[:3], Y_PRED[:3], labels=["neg", "neu", "pos"], average="macro", zero_division=0)[2]
    )


def test_exact_match_contains_and_regex():
    items = [scored(" Paris ", "paris"), scored("Paris", "Paris"), scored(None, "Paris", parsed=False, text="Paris?")]
    assert value_of("exact_match", items) == pytest.approx(1 / 3)
    assert value_of("exact_match", items, ignore_case=True) == pytest.approx(2 / 3)
    assert value_of("exact_match", items, strip=False, ignore_case=True) == pytest.approx(1 / 3)
    # contains reads the raw answer text: the unparsed "Paris?" still contains "Paris"
    assert value_of("contains", items) == pytest.approx(2 / 3)
    assert value_of("contains", items, ignore_case=True) == pytest.approx(1.0)
    errored = scored(None, "x", parsed=False, error="boom")
    assert get_metric("contains", MetricSpec()).score([errored]) == [0]
    answers = [scored(None, None, parsed=False, text=t) for t in ("Answer: 42", "answer: x", "none")]
    assert value_of("regex_match", answers, pattern=r"Answer: \d+") == pytest.approx(1 / 3)
    assert value_of("regex_match", answers, pattern=r"answer:", ignore_case=True) == pytest.approx(2 / 3)


# "maybe" is only ever predicted; None is unparsed; small n so resamples often miss a class entirely.
PRF_PAIRS = [
    ("pos", "pos"), ("neg", "neg"), ("pos", "neu"), (None, "pos"), ("neg", "neg"), ("maybe", "pos"),
    ("neu", "neu"), ("pos", "neg"), ("pos", "pos"), (None, "neg"), ("maybe", "neu"), ("neg", "pos"),
]


@pytest.mark.parametrize(
    "params",
    [{"average": "macro"}, {"average": "micro"}, {"average": "weighted"},
     {"average": "binary", "pos_label": "pos"}, {"average": "binary", "pos_label": "maybe"}],
    ids=lambda p: "-".join(p.values()),
)
@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
def test_prf_bootstrap_fast_path_equals_sklearn_per_resample(name, params, monkeypatch):
    monkeypatch.setattr(_classification, "_CHUNK_ELEMENTS", 5 * len(PRF_PAIRS))  # several chunks, one partial
    metric = get_metric(name, MetricSpec(params=params))
    values = metric.score([scored(p, t, parsed=p is not None, text=p or "?") for p, t in PRF_PAIRS])
    idx = np.random.default_rng(1).integers(0, len(values), size=(61, len(values)))
    idx[0] = 0  # one resample of a single correct example: every other class absent
    idx[1] = 3  # one of a single unparsed answer: no prediction at all
    expected = [metric.aggregate([values[i] for i in row]) for row in idx]
    assert metric.aggregate_resamples(values, idx) == pytest.approx(expected, abs=1e-12)
