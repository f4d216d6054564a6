"""Label and string-match metrics: accuracy, precision/recall/F1 (scikit-learn), exact match, contains, regex.

Why F1 is a corpus metric: macro/micro F1 is not a mean of per-example values, so each example stores its
(prediction, expected) pair and ``aggregate`` runs scikit-learn on the pairs it is given.
An unparsed or errored answer is always wrong.

Why ``aggregate_resamples`` re-implements sklearn's arithmetic: the bootstrap needs ~3,000 aggregates and one
sklearn call at n = 25,000 costs ~70 ms. A resample is fully described by how often it draws each distinct
(prediction, expected) pair, so one ``np.bincount`` per chunk of resamples gives every resample's per-class
tp / predicted / true counts, and sklearn's formulas (zero_division=0) apply to those counts.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from evalsuite._util.user_regex import RegexTimeout, UserPattern
from evalsuite.errors import EvalsuiteWarning, MetricParamError
from evalsuite.metrics._base import REQUIRED, Metric
from evalsuite.metrics._registry import metric
from evalsuite.records import Scored

UNPARSED = "<unparsed>"  # the label an unparsed answer gets: never a true label, so always wrong
_CHUNK_ELEMENTS = 2_000_000  # resampled indices gathered at once: ~16 MB of pair codes, whatever the matrix size


def expected_values(item: Scored) -> list[Any]:
    """Acceptable answers: ``expected`` itself, or any element when it is a list."""
    expected = item.example.expected
    return list(expected) if isinstance(expected, (list, tuple)) else [expected]


def same(prediction: Any, expected: Any) -> bool:
    """Equality, also across types when the text agrees (``"4"`` vs ``4`` from a numeric column)."""
    return prediction == expected or (type(prediction) is not type(expected) and str(prediction) == str(expected))


@metric("accuracy")
class Accuracy(Metric):
    kind = "proportion"
    needs_expected = needs_parser = True

    def describe(self) -> str:
        return (
            "share of examples whose parsed prediction equals expected (any element when expected is a list; "
            "'4' equals 4); unparsed or errored answers count as wrong"
        )

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        return [int(s.parsed and any(same(s.prediction, e) for e in expected_values(s))) for s in scored]


@metric("precision", index=0)
@metric("recall", index=1)
@metric("f1", index=2)
class PrecisionRecallF(Metric):
    kind = "corpus"
    needs_expected = needs_parser = True
    value_range = (0.0, 1.0)
    defaults = {"average": "macro", "pos_label": None}
    choices = {"average": ("macro", "micro", "binary", "weighted")}
    index = 0  # position in precision_recall_fscore_support's result

    def __init__(self, params: dict[str, Any]) -> None:
        if params["average"] == "binary" and params["pos_label"] is None:
            raise MetricParamError(f"{self.name}: average binary needs pos_label, the positive class, e.g. {{pos_label: positive}}")
        super().__init__(params)

    def describe(self) -> str:
        average = self.params["average"]
        scope = f"of class {self.params['pos_label']!r}" if average == "binary" else f"{average}-averaged"
        return (
            f"{self.name} {scope}, sklearn precision_recall_fscore_support(zero_division=0) over the labels seen in "
            "expected or in parsed predictions; an unparsed answer is a wrong prediction of no class (it lowers "
            "recall, and is not averaged as a class of its own)"
        )

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        return [[str(s.prediction) if s.parsed else None, str(s.example.expected)] for s in scored]

    def aggregate(self, values: Sequence[Any]) -> float:
        from sklearn.metrics import precision_recall_fscore_support  # imported here: ~1 s, only F1 needs it

        if not values:
            return math.nan
        y_pred = [UNPARSED if pred is None else pred for pred, _ in values]
        y_true = [true for _, true in values]
        if self.params["average"] == "binary":
            labels, average = [str(self.params["pos_label"])], None
        else:
            labels, average = sorted((set(y_true) | set(y_pred)) - {UNPARSED}), self.params["average"]
        result = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average, zero_division=0)
        value = result[self.index]
        return float(value[0] if average is None else value)

    def aggregate_resamples(self, values: Sequence[Any], idx: np.ndarray) -> np.ndarray:
        """``aggregate`` of every row's resample ``[values[i] for i in row]``, from confusion counts."""
        idx = np.asarray(idx)
        rows_total, n = idx.shape
        if n == 0:
            return np.full(rows_total, math.nan)
        pair_ids: dict[tuple[str, str], int] = {}
        codes = np.fromiter(
            (pair_ids.setdefault((UNPARSED if pred is None else pred, true), len(pair_ids)) for pred, true in values),
            dtype=np.int64, count=len(values),
        )
        pairs = list(pair_ids)
        if self.params["average"] == "binary":
            labels = [str(self.params["pos_label"])]
        else:
            labels = sorted({label for pair in pairs for label in pair} - {UNPARSED})
        position = {label: k for k, label in enumerate(labels)}
        pred_class = np.array([position.get(pred, -1) for pred, _ in pairs])
        true_class = np.array([position.get(true, -1) for _, true in pairs])
        hit = np.flatnonzero((pred_class == true_class) & (pred_class >= 0))  # pairs that are a true positive
        by_pred, by_true = _ColumnGroups(pred_class, len(labels)), _ColumnGroups(true_class, len(labels))

        out = np.empty(rows_total)
        n_pairs = len(pairs)
        step = max(1, _CHUNK_ELEMENTS // n)
        for start in range(0, rows_total, step):
            chunk = idx[start : start + step]
            rows = chunk.shape[0]
            flat = codes[chunk]  # [rows, n] pair code of every drawn example
            flat += np.arange(rows, dtype=np.int64)[:, None] * n_pairs
            counts = np.bincount(flat.ravel(), minlength=rows * n_pairs).reshape(rows, n_pairs)
            tp = np.zeros((rows, len(labels)))
            tp[:, true_class[hit]] = counts[:, hit]
            out[start : start + rows] = self._from_counts(tp, by_pred.sum(counts), by_true.sum(counts))
        return out

    def _from_counts(self, tp: np.ndarray, pred_sum: np.ndarray, true_sum: np.ndarray) -> np.ndarray:
        """sklearn's precision/recall/F (zero_division=0) and averaging, per row of ``[rows, labels]`` counts."""
        average = self.params["average"]
        if average == "micro":
            tp, pred_sum, true_sum = (a.sum(axis=1, keepdims=True) for a in (tp, pred_sum, true_sum))
        numerator, denominator = [(tp, pred_sum), (tp, true_sum), (2.0 * tp, true_sum + pred_sum)][self.index]
        score = np.divide(numerator, denominator, out=np.zeros_like(tp), where=denominator != 0)
        if average in ("micro", "binary"):
            return score[:, 0]
        present = (pred_sum + true_sum) > 0  # the labels of the resample: seen in expected or in predictions
        n_present = present.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            macro = np.where(present, score, 0.0).sum(axis=1) / n_present
            if average == "macro":
                return macro
            weight = true_sum.sum(axis=1)  # weighted; sklearn falls back to the plain mean when all weights are 0
            return np.where(weight > 0, (score * true_sum).sum(axis=1) / np.where(weight > 0, weight, 1), macro)


class _ColumnGroups:
    """Sums columns of a ``[rows, pairs]`` count matrix into ``[rows, labels]`` by each pair's label (-1 = none)."""

    def __init__(self, label_of_column: np.ndarray, n_labels: int) -> None:
        kept = np.flatnonzero(label_of_column >= 0)
        self.order = kept[np.argsort(label_of_column[kept], kind="stable")]
        grouped = label_of_column[self.order]
        self.starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]) if grouped.size else grouped
        self.labels = grouped[self.starts]
        self.n_labels = n_labels

    def sum(self, counts: np.ndarray) -> np.ndarray:
        out = np.zeros((counts.shape[0], self.n_labels))
        if self.order.size:
            out[:, self.labels] = np.add.reduceat(counts[:, self.order], self.starts, axis=1)
        return out


def _text(value: Any, ignore_case: bool, strip: bool) -> str:
    text = value if isinstance(value, str) else str(value)
    text = text.strip() if strip else text
    return text.casefold() if ignore_case else text


@metric("exact_match")
class ExactMatch(Metric):
    kind = "proportion"
    needs_expected = True
    defaults = {"ignore_case": False, "strip": True}

    def describe(self) -> str:
        how = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"share of examples whose parsed prediction, as text, equals expected (or one of a list) with {how}; unparsed = wrong"

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        norm = lambda v: _text(v, self.params["ignore_case"], self.params["strip"])  # noqa: E731
        return [int(s.parsed and any(norm(s.prediction) == norm(e) for e in expected_values(s))) for s in scored]


@metric("contains")
class Contains(Metric):
    kind = "proportion"
    needs_expected = True
    defaults = {"ignore_case": False}

    def describe(self) -> str:
        case = "ignoring case" if self.params["ignore_case"] else "case-sensitive"
        return f"share of answers whose raw text contains expected (or one of a list) as a substring, {case}; errored = wrong"

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        fold = (lambda v: str(v).casefold()) if self.params["ignore_case"] else str  # noqa: E731
        return [
            int(s.answer.text is not None and any(fold(e) in fold(s.answer.text) for e in expected_values(s) if e is not None))
            for s in scored
        ]


@metric("regex_match")
class RegexMatch(Metric):
    kind = "proportion"
    defaults = {"pattern": REQUIRED, "ignore_case": False}

    def __init__(self, params: dict[str, Any]) -> None:
        try:
            self.pattern = UserPattern(params["pattern"], "regex_match: pattern", ignore_case=bool(params["ignore_case"]))
        except ValueError as error:
            raise MetricParamError(str(error)) from None
        super().__init__(params)

    def describe(self) -> str:
        return f"share of answers whose raw text matches re.search({self.params['pattern']!r}) (ignore_case={self.params['ignore_case']}); errored = wrong"

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        return [int(s.answer.text is not None and self._matches(s.answer.text)) for s in scored]

    def _matches(self, text: str) -> bool:
        """A search past the time limit (catastrophic backtracking) counts as no match, with a warning."""
        try:
            return self.pattern.search(text) is not None
        except RegexTimeout as timeout:
            warnings.warn(str(timeout), EvalsuiteWarning, stacklevel=2)
            return False
