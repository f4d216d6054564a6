"""Large batches computed on several processes give the numbers of one process."""

from __future__ import annotations

import os

from evalsuite.cases.schema import MetricSpec
from evalsuite.metrics import _parallel, get_metric
from tests._support.scored import scored
from tests._support.texts import HYPS, REFS


def _pids(items: list[int]) -> list[int]:
    return [os.getpid() for _ in items]


def test_map_chunks_uses_a_worker_and_keeps_order(monkeypatch):
    monkeypatch.setattr(_parallel, "PARALLEL_MIN_ITEMS", 4)
    monkeypatch.setattr(_parallel, "cpus", lambda: 2)
    assert _parallel.map_chunks(lambda items, k: [x * k for x in items], list(range(3)), 2) == [0, 2, 4]  # too few: in-process
    pids = _parallel.map_chunks(_pids, list(range(64)))
    assert len(pids) == 64 and len(set(pids)) == 2 and pids[-1] == os.getpid()


def test_large_batches_split_across_processes_give_identical_values(monkeypatch):
    monkeypatch.setattr(_parallel, "PARALLEL_MIN_ITEMS", 4)
    monkeypatch.setattr(_parallel, "cpus", lambda: 2)
    items = [scored(h, r) for h, r in zip(HYPS * 3, REFS * 3)]
    for name in ("sacrebleu", "bleu", "chrf"):
        metric = get_metric(name, MetricSpec())
        parallel = metric.score(items)
        monkeypatch.setattr(_parallel, "PARALLEL_MIN_ITEMS", 10**9)
        assert parallel == metric.score(items)
        monkeypatch.setattr(_parallel, "PARALLEL_MIN_ITEMS", 4)
