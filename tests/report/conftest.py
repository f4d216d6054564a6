from __future__ import annotations

import pytest

from evalsuite.records import ItemResult
from tests._support.builders import baseline_of, make_item, rejudge


@pytest.fixture
def sweep() -> list[ItemResult]:
    """A temperature sweep; the t1.0 item regressed against its baseline, t0.5 misses the threshold."""
    good = make_item(1.0, accuracy=0.95, seed=1)
    regressed = make_item(1.0, accuracy=0.95, seed=1)
    for r in regressed.records[:40]:
        r.scores["accuracy"] = 0
    rejudge(regressed, baseline_of(good), min_accuracy=0.5)
    return [make_item(0.0, accuracy=0.92, seed=2), make_item(0.5, accuracy=0.7, seed=3), regressed]
