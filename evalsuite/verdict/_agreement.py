"""Nondeterminism across repeats: how often an example's samples agree with its most common prediction.

The runner stores the mean on ``ItemResult.agreement``; the reports add how many examples were split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Agreement:
    examples: int
    samples: int  # the most samples any example has
    split: int  # examples whose samples do not all agree
    mean: float  # mean over examples of the share of samples agreeing with the example's most common prediction


def _by_example(predictions: Iterable[tuple[str, Any]]) -> dict[str, list[str]]:
    """Example id -> its samples' predictions, compared by ``repr``."""
    groups: dict[str, list[str]] = {}
    for example_id, prediction in predictions:
        groups.setdefault(example_id, []).append(repr(prediction))
    return groups


def _share(preds: list[str]) -> float:
    """Share of the samples agreeing with the most common prediction."""
    return Counter(preds).most_common(1)[0][1] / len(preds)


def agreement(predictions: Iterable[tuple[str, Any]]) -> Agreement:
    """``predictions``: (example id, prediction) per sample; predictions are compared by ``repr``."""
    groups = _by_example(predictions)
    shares = [_share(preds) for preds in groups.values()]
    return Agreement(
        examples=len(groups),
        samples=max(map(len, groups.values()), default=0),
        split=sum(1 for preds in groups.values() if len(set(preds)) > 1),
        mean=sum(shares) / len(shares) if shares else 1.0,
    )


def least_agreeing(predictions: Iterable[tuple[str, Any]], limit: int) -> list[str]:
    """Ids of the examples whose samples disagree, lowest agreement first (ties in example order), at most ``limit``."""
    split = [(_share(preds), eid) for eid, preds in _by_example(predictions).items() if len(set(preds)) > 1]
    return [eid for _, eid in sorted(split, key=lambda pair: pair[0])[:limit]]
