"""Items and metrics built directly, without a model run: for verdict, report and CLI tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from evalsuite.cases.schema import MetricSpec
from evalsuite.metrics import MetricInfo
from evalsuite.records import ExampleRecord, ItemResult
from evalsuite.verdict import judge


def _mean(values: Sequence[Any]) -> float:
    return float(np.mean(values))


def mean_metric(name: str = "accuracy", kind: Literal["proportion", "mean"] = "proportion", *,
                higher_is_better: bool = True, definition: str = "") -> MetricInfo:
    """A metric whose aggregate is the mean of its per-example values."""
    return MetricInfo(name, kind, higher_is_better, definition, _mean)


def make_item(
    temperature: float = 0.0, accuracy: float = 0.9, n: int = 200, seed: int = 0,
    baseline: dict[str, dict[str, Any]] | None = None, answer_text: str = "ok", min_accuracy: float = 0.8,
    variant: str | None = None,
) -> ItemResult:
    """A sentiment item built directly from records, judged by the real verdict code."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        expected = "positive" if i % 2 else "negative"
        correct = bool(rng.random() < accuracy)
        parsed = i % 50 != 7
        prediction = (expected if correct else ("negative" if expected == "positive" else "positive")) if parsed else None
        records.append(ExampleRecord(
            example_id=f"ex{i}", sample=0, prompt_hash="abc123", input_excerpt=f"review <b>{i}</b> & more",
            expected=expected, answer=answer_text if parsed else "I cannot tell", prediction=prediction,
            parsed=parsed, scores={"accuracy": int(correct and parsed), "similarity": float(rng.random())},
            prompt_tokens=50, completion_tokens=1, latency_s=0.2,
            error="HTTP 500" if i == 3 else None, error_kind="api" if i == 3 else None,
        ))
    variant = f"t{temperature}" if variant is None else variant
    item = ItemResult(
        nodeid=f"cases/sentiment.yaml::sentiment[{variant}]", suite="sentiment", case="sentiment", variant=variant,
        item_id=f"sentiment[{variant}]", source="cases/sentiment.yaml:3",
        model={"name": "gpt-4o-mini", "provider": "openai"}, params={"temperature": temperature},
        record_mode="none", cassette="cassettes/sentiment.json", dataset_fingerprint="0123456789abcdef",
        n_examples=n, records=records, metrics=[], errors=1, unparsed=sum(not r.parsed for r in records),
        tokens={"prompt": 50 * n, "completion": n}, cost_usd=0.001 * n, wall_s=1.5,
    )
    return rejudge(item, baseline, min_accuracy)


def rejudge(item: ItemResult, baseline: dict[str, dict[str, Any]] | None = None, min_accuracy: float = 0.8) -> ItemResult:
    """(Re)compute the item's metrics from its records' scores with the real verdict code."""
    keys = [str(r.key) for r in item.records]
    item.metrics = [
        judge(mean_metric("accuracy"), MetricSpec(min=min_accuracy), [r.scores["accuracy"] for r in item.records], keys,
              baseline.get("accuracy") if baseline is not None else None),
        judge(mean_metric("similarity", kind="mean"), MetricSpec(), [r.scores["similarity"] for r in item.records], keys,
              baseline.get("similarity") if baseline is not None else None),
    ]
    item.passed = not any(m.failed for m in item.metrics)
    return item


def baseline_of(item: ItemResult) -> dict[str, dict[str, Any]]:
    """The per-example values of an item's metrics, keyed as a baseline stores them."""
    return {m.name: {str(r.key): r.scores[m.name] for r in item.records} for m in item.metrics}
