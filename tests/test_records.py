"""The records that flow between stages: their plain-data form."""

from __future__ import annotations

from dataclasses import asdict
from typing import NamedTuple

from evalsuite.records import ExampleRecord, ItemResult, MetricResult
from tests._support.builders import make_item


class Span(NamedTuple):
    start: int
    end: int


def test_an_item_as_plain_data_is_what_asdict_makes_of_it_and_shares_nothing_with_it() -> None:
    """``to_dict`` skips ``asdict``'s deepcopy of every scalar (25k records took a second, twice a run)."""
    item = make_item(n=20)
    item.records.append(ExampleRecord("odd", 1, "h", "in", ["a", ("b", Span(1, 2))], None, {"k": {1, 2}}, False,
                                      {"acc": 0, "spans": [Span(0, 3)]}))
    item.meta = {"tags": ("x", "y"), "nested": {"deep": [{"n": 1.5}]}}
    item.metrics.append(MetricResult("extra", None, 0))
    data = item.to_dict()
    assert data == asdict(item)
    assert type(data["records"][-1]["expected"][1]) is tuple and type(data["records"][-1]["scores"]["spans"][0]) is Span
    data["records"][0]["scores"]["accuracy"] = "changed"
    data["meta"]["nested"]["deep"][0]["n"] = 0
    assert item.records[0].scores["accuracy"] != "changed" and item.meta["nested"]["deep"][0]["n"] == 1.5
    assert ItemResult.from_dict(item.to_dict()) == item
