"""Any Hugging Face ``evaluate`` module as a metric: ``{evaluate: {path: ./metrics/bertscore}}`` (a module
folder or script, relative to the case file) or ``{evaluate: {name: exact_match}}`` (from the Hub).

Per example when the module allows it: a gated value with one entry per example (bertscore's f1) is a
per-example metric, and so is any module under ``per_example: true`` (compute on each pair); a single
number (sacrebleu's score) makes a corpus metric whose aggregate recomputes the module on any subset.

Why the reachability probe: evaluate fetches a named module's script from the Hub on every load, ignores
``HF_HUB_OFFLINE`` (it reads ``HF_EVALUATE_OFFLINE``) and waits up to 300 s on an endpoint that accepts
connections but never answers; a 3 s probe turns that into an immediate error naming both fixes.
Why ``keep_in_memory``: compute otherwise writes Arrow files under a file lock (slower; evaluate #473).
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from evalsuite.errors import MetricError, MetricParamError
from evalsuite.metrics._base import Kind, Metric
from evalsuite.records import Scored

PROBE_TIMEOUT_S = 3.0
_loaded: dict[str, Any] = {}  # resolved path or Hub name -> evaluate.EvaluationModule, loaded once per process


class EvaluateMetric(Metric):
    kind: Kind = "corpus"
    defaults = {"path": None, "name": None, "value": None, "args": {}, "per_example": None}
    base_dir: ClassVar[Path | None] = None

    def __init__(self, params: dict[str, Any]) -> None:
        if (params["path"] is None) == (params["name"] is None):
            raise MetricParamError(
                f"{self.name}: evaluate needs one of path (a module folder or .py file, relative to the case file) "
                "or name (a module on the Hugging Face Hub), e.g. {evaluate: {name: exact_match}}"
            )
        if not isinstance(params["args"], dict):
            raise MetricParamError(f"{self.name}: evaluate.args must be a mapping of compute() arguments")
        if params["per_example"] not in (None, True, False):
            raise MetricParamError(f"{self.name}: evaluate.per_example must be true or false")
        if params["value"] is not None and not isinstance(params["value"], str):
            raise MetricParamError(f"{self.name}: evaluate.value must name one of the module's returned values")
        self.module = load_module(self.name, params["path"], params["name"], self.base_dir)
        features = self.module.features
        self.takes_references = any("references" in f for f in (features if isinstance(features, list) else [features]))
        self.kind = "mean" if params["per_example"] else "corpus"
        self.values: dict[str, float] = {}  # every numeric value the module returned on the whole batch
        super().__init__(params)

    def describe(self) -> str:
        source = f"path {self.params['path']}" if self.params["path"] else f"name {self.params['name']!r}"
        how = {"mean": "mean of the per-example values", "proportion": "share of per-example values equal to 1",
               "corpus": "the module's value on all examples (recomputed on any subset)"}[self.kind]
        args = f", compute args {self.params['args']}" if self.params["args"] else ""
        values = ", ".join(f"{k} {v:.4g}" for k, v in self.values.items())
        returned = f"; on all examples it returned {values}" if values else ""
        return (f"Hugging Face evaluate module {self.module.name!r} ({source}{args}): {self.params['value'] or 'its value'}, "
                f"{how}; an unparsed answer is passed as an empty prediction{returned}")

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        if not scored:
            return []
        predictions = [s.prediction if s.parsed else "" for s in scored]
        references = [s.example.expected for s in scored]
        batch = self._compute(predictions, references)
        self.values = {k: v for k, v in ((k, _summary(v)) for k, v in batch.items()) if v is not None}
        gated = self._gated(batch)
        per_example = self.params["per_example"]
        listed = isinstance(gated, (list, tuple)) and len(gated) == len(scored)
        values: list[Any]
        if per_example is False or (per_example is None and not listed):
            self.kind = "corpus"
            values = [[p, r] for p, r in zip(predictions, references)]
        else:
            values = [_number(v) for v in gated] if listed else [
                _summary(self._gated(self._compute([p], [r]))) for p, r in zip(predictions, references)
            ]
            self.kind = "proportion" if all(v in (0, 1) for v in values if v is not None) else "mean"
        self.definition = self.describe()
        return values

    def aggregate(self, values: Sequence[Any]) -> float:
        if self.kind != "corpus":
            return super().aggregate(values)
        if not values:
            return math.nan
        value = _summary(self._gated(self._compute([p for p, _ in values], [r for _, r in values])))
        return math.nan if value is None else value

    def _compute(self, predictions: list[Any], references: list[Any]) -> dict[str, Any]:
        inputs = {"predictions": predictions, **({"references": references} if self.takes_references else {})}
        try:
            result = self.module.compute(**inputs, **self.params["args"])
        except Exception as exc:
            raise MetricError(
                f"{self.name}: evaluate module {self.module.name!r} failed in compute(): {type(exc).__name__}: {exc}; "
                "check evaluate.args, and that `expected` holds what the module takes as references"
            ) from None
        return dict(result or {})

    def _gated(self, result: dict[str, Any]) -> Any:
        key: str | None = self.params["value"]  # "value", not "key": the loader rejects keys named like credentials
        if key is None:
            numeric = [k for k, v in result.items() if _number(v) is not None or isinstance(v, (list, tuple))]
            key = self.module.name if self.module.name in result else (numeric[0] if len(numeric) == 1 else None)
        if key is None or key not in result:
            problem = f"returned no {key!r}" if key else "returns several values"
            raise MetricError(
                f"{self.name}: evaluate module {self.module.name!r} {problem}; set evaluate.value to the one to gate: "
                f"{', '.join(result)}"
            )
        self.params["value"] = key  # shown in the definition
        return result[key]


def _number(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, (str, list, tuple, dict)) else float(value)
    except (TypeError, ValueError):
        return None


def _summary(value: Any) -> float | None:
    """A returned value as one number: itself, or the mean of a per-example list."""
    if isinstance(value, (list, tuple)):
        numbers = [n for n in map(_number, value) if n is not None]
        return math.fsum(numbers) / len(numbers) if numbers and len(numbers) == len(value) else None
    return _number(value)


def load_module(metric: str, path: str | None, name: str | None, base_dir: Path | None) -> Any:
    """The evaluate module, loaded once per process; every way it cannot be had is a MetricParamError."""
    if path is not None:
        target = _local_script(metric, path, base_dir)
    else:
        assert name is not None
        target = name
    if target in _loaded:
        return _loaded[target]
    try:
        import evaluate  # ~1 s: imported only when a case uses an evaluate metric
    except ImportError:
        raise MetricParamError(f"{metric}: evaluate metrics need the evaluate package: pip install evaluate") from None
    if name is not None and not evaluate.config.HF_EVALUATE_OFFLINE:
        unreachable = _unreachable(evaluate.config.HF_ENDPOINT)
        if unreachable:
            raise MetricParamError(
                f"{metric}: evaluate module {name!r} is loaded from the Hugging Face Hub, which is unreachable "
                f"({evaluate.config.HF_ENDPOINT}: {unreachable}); if it was loaded before, set HF_EVALUATE_OFFLINE=1 "
                f"to use the cached copy (evaluate ignores HF_HUB_OFFLINE), or copy the module folder next to the "
                f"case and write evaluate: {{path: ./metrics/{name}}}"
            )
    try:
        module = evaluate.load(target, keep_in_memory=True)
    except Exception as exc:
        if name is not None and evaluate.config.HF_EVALUATE_OFFLINE:
            raise MetricParamError(
                f"{metric}: evaluate module {name!r} is not in the cache and HF_EVALUATE_OFFLINE is set: load it once "
                f"with Hub access, or copy the module folder next to the case and write "
                f"evaluate: {{path: ./metrics/{name}}}"
            ) from None
        where = f"path {path}" if path is not None else f"name {name!r}"
        raise MetricParamError(f"{metric}: evaluate {where} cannot be loaded: {type(exc).__name__}: {exc}") from None
    _loaded[target] = module
    return module


def _local_script(metric: str, path: str, base_dir: Path | None) -> str:
    """The module script's absolute path: evaluate would look a missing local path up on the Hub instead."""
    resolved = ((base_dir or Path.cwd()) / path).resolve()
    script = resolved / f"{resolved.name}.py" if resolved.is_dir() else resolved
    if not script.is_file() or script.suffix != ".py":
        expected = f"{path}/{resolved.name}.py" if resolved.is_dir() else f"{path} (a module folder or a .py file)"
        raise MetricParamError(
            f"{metric}: evaluate.path: {expected} not found (looked in {resolved}); the path is relative to the "
            "case file's folder"
        )
    return str(script)


def _unreachable(endpoint: str) -> str | None:
    """Why ``endpoint`` gave no HTTP answer within PROBE_TIMEOUT_S; None when it answered (any status)."""
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
    return None
