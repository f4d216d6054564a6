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


@pytest.fixture
def annotated(sweep: list[ItemResult]) -> list[ItemResult]:
    """The sweep plus what the gate adds: p-value methods and MDE, five flipped examples, flakiness, a quarantine,
    and an item that was not recorded."""
    regressed = sweep[2]
    regressed.metrics[0].p_method, regressed.metrics[0].mde = "exact", 0.083
    regressed.flipped = [{"example_id": f"ex{i}", "metric": "accuracy", "before": 1, "after": 0,
                          "baseline_answer": "positive", "answer": f"negative {i}"} for i in range(5)]
    regressed.flakiness, regressed.flaky_examples = 0.31, ["ex1", "ex7"]
    sweep[1].outcome, sweep[1].quarantine = "xfailed", {"item": "sentiment::sentiment[t0.5]", "reason": "flips at t0.5",
                                                        "owner": "alice", "expires": "2027-01-31"}
    missing = make_item(0.9)
    missing.item_id, missing.outcome, missing.records, missing.metrics = "sentiment[t0.9]", "not_recorded", [], []
    missing.message, missing.passed = "sentiment[t0.9]: 200 call(s) not recorded in cassettes/s.json", False
    return [*sweep, missing]
