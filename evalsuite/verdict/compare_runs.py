"""Re-judge two stored runs (report.json or baseline files) against each other: ``evalsuite compare``.

The new run's per-example values are judged with the same ``judge`` as in the test session, paired
against the old run's. A stored metric is rebuilt as a ``MetricInfo``: the registered metric of that
name (built-ins, ``@metric`` and entry-point metrics, all through ``get_metric``) when its aggregate
reproduces the stored value, else the mean of numeric values; a corpus metric that neither reproduces
is skipped with a note rather than judged with the wrong aggregate.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import EvalsuiteError
from evalsuite.metrics import Kind, MetricInfo, get_metric
from evalsuite.records import ItemResult, MetricResult
from evalsuite.verdict._judge import judge
from evalsuite.verdict.baseline import BaselineItem, BaselineMetric, load_run


def _mean(values: Sequence[Any]) -> float:
    return float(np.mean(np.asarray(values, dtype=float)))


def _known_kind(kind: str) -> Kind | None:
    """The stored kind when it is a metric kind (older or foreign files may say nothing or something else)."""
    return cast(Kind, kind) if kind in typing.get_args(Kind) else None


def _registered(name: str, stored: BaselineMetric) -> MetricInfo | None:
    """The registry's metric of this name with its default parameters, or None (unknown, or it needs some).

    What the stored run says wins over the defaults: its kind (a function metric's kind is only known once it
    scored), direction and definition, so the comparison judges the way the run itself was judged."""
    try:
        info = get_metric(name, MetricSpec()).info()
    except EvalsuiteError:
        return None
    return replace(info, kind=_known_kind(stored.kind) or info.kind, higher_is_better=stored.higher_is_better,
                   definition=stored.definition or info.definition)


def _stored_kind(stored: BaselineMetric) -> Kind:
    """The stored kind; files written before kinds were stored say it through the interval."""
    return _known_kind(stored.kind) or ("proportion" if stored.interval == "wilson" else "mean")


def stored_metric(name: str, stored: BaselineMetric) -> MetricInfo | None:
    """The metric to re-judge a stored metric with; None: it cannot be recomputed from the stored values."""
    values = [v for v in stored.per_example.values() if v is not None]
    candidates = [info for info in (_registered(name, stored),) if info is not None]
    if all(isinstance(v, (int, float)) for v in values):
        candidates.append(MetricInfo(name, _stored_kind(stored), stored.higher_is_better, stored.definition, _mean))
    for candidate in candidates:
        if stored.value is None or not values:
            return candidate
        try:
            if math.isclose(candidate.aggregate(values), stored.value, rel_tol=1e-6, abs_tol=1e-9):
                return candidate
        except (TypeError, ValueError, ZeroDivisionError):
            continue
    return None


# ``evalsuite compare``'s exit codes; its --help and the README say the same.
PASSED, FAILED, UNUSABLE = 0, 1, 2
NOT_RUN_FAILURES = ("not_recorded", "error")  # outcomes of a report.json item that failed without metrics


def exit_code(results: Sequence[ItemResult]) -> int:
    """``FAILED`` when a metric regressed, missed a threshold stored in NEW (a missed threshold takes precedence in
    the verdict and may hide a regression: both gate) or could not be measured, or when an item of NEW did not
    run (not recorded, an error: red in its own session, so red here); ``UNUSABLE`` when no metric has an example
    paired with OLD (unrelated files: a gate that compared nothing must not pass); else ``PASSED``."""
    if any(item.outcome in NOT_RUN_FAILURES for item in results):
        return FAILED
    metrics = [m for item in results for m in item.metrics]
    if not any(m.n_paired for m in metrics):
        return UNUSABLE
    return FAILED if any(m.failed for m in metrics) else PASSED


def compare(old_path: str, new_path: str, *, alpha: float, seed: int,
            thresholds: bool = True) -> tuple[list[ItemResult], list[str]]:
    """Every item of NEW judged against OLD; notes for what could not be compared. Raises ``BaselineError``."""
    old, new = load_run(old_path), load_run(new_path)
    old.resolve(new.items)
    results: list[ItemResult] = []
    notes: list[str] = []
    compared: set[str] = set()
    for item_id, new_item in new.items.items():
        old_item = old.entry(item_id)
        if old_item is not None:
            compared.add(old_item.identity)
        if old_item is None:
            notes.append(f"{item_id}: not in {old.path}; thresholds only")
        elif old_item.dataset_fingerprint and old_item.dataset_fingerprint != new_item.dataset_fingerprint:
            notes.append(f"{item_id}: dataset fingerprint changed ({old_item.dataset_fingerprint} -> "
                         f"{new_item.dataset_fingerprint}); only matching example keys are compared")
        metrics: list[MetricResult] = []
        for name, stored in new_item.metrics.items():
            info = stored_metric(name, stored)
            if info is None:
                notes.append(f"{item_id}: {name} skipped: cannot recompute this corpus metric from the stored values")
                continue
            spec = MetricSpec(min=stored.min, max=stored.max) if thresholds else MetricSpec()
            old_metric = old_item.metrics.get(name) if old_item else None
            metrics.append(_rejudged(info, spec, stored, old_metric, alpha=alpha, seed=seed))
        results.append(_item(str(new.path), new_item, metrics))
    for item in _not_run(new_path):  # in NEW's report without metrics: not compared, but not absent either
        compared.update(ident for ident in (item.identity, item.item_id) if old.entry(ident))
        results.append(item)
    notes += [f"{item_id}: in {old.path} but not in {new.path}" for item_id in old.items if item_id not in compared]
    return results, notes


def _not_run(path: str) -> list[ItemResult]:
    """The items of a report.json that failed without metrics (a baseline file holds none)."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    found = [ItemResult.from_dict(raw) for raw in doc.get("items", []) if isinstance(raw, dict)
             and raw.get("outcome") in NOT_RUN_FAILURES and not raw.get("metrics")]
    for item in found:
        item.passed = False
    return found


def _rejudged(info: MetricInfo, spec: MetricSpec, stored: BaselineMetric, old: BaselineMetric | None, *,
              alpha: float, seed: int) -> MetricResult:
    keys = list(stored.per_example)
    return judge(info, spec, [stored.per_example[k] for k in keys], keys, old.per_example if old else None,
                 alpha=alpha, seed=seed)


def _item(source: str, stored: BaselineItem, metrics: list[MetricResult]) -> ItemResult:
    return ItemResult(
        nodeid="", suite=stored.suite, case=stored.item_id, variant="", item_id=stored.item_id, source=source,
        model=stored.model, params=stored.params, record_mode="", cassette=None,
        dataset_fingerprint=stored.dataset_fingerprint, n_examples=stored.n_examples, records=[],
        metrics=metrics, errors=stored.errors, unparsed=stored.unparsed, passed=not any(m.failed for m in metrics),
    )
