"""The metric registry: ``@metric("name")`` registers a class, ``get_metric`` builds one from a case's spec.

Why a registry: case files name metrics by string, so the loader needs one place that knows every valid
name and every valid parameter, to reject ``acuracy`` or ``averge`` at load time with a suggestion rather
than failing after the model calls were paid for.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import MetricError, MetricParamError, UnknownName
from evalsuite.records import Scored


Kind = Literal["proportion", "mean", "corpus"]


@dataclass(frozen=True)
class MetricInfo:
    """What the verdict needs of a metric, and all a stored report can give back: the one metric type
    that ``verdict.judge`` takes (from a live ``Metric.info()``, or rebuilt from report.json / a baseline)."""

    name: str
    kind: Kind
    higher_is_better: bool
    definition: str
    aggregate: Callable[[Sequence[Any]], float]
    # Optional: the aggregate of every row of an int matrix [resamples, n] of indices at once. Corpus metrics with a
    # costly aggregate (sklearn F1 at n = 25,000 costs ~70 ms a call; a gated metric needs ~3,000) provide it.
    aggregate_resamples: Callable[[Sequence[Any], np.ndarray], np.ndarray] | None = None


class Metric:
    """One metric: per-example values from a batch of scored answers, and an aggregate over them.

    Subclasses declare ``kind``, ``higher_is_better``, ``needs_logprobs``, their parameters with defaults in
    ``defaults`` (``choices`` restricts string values; a default of ``REQUIRED`` makes a parameter mandatory)
    and build ``definition`` (a sentence a report reader can check the number against).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[Kind]
    higher_is_better: ClassVar[bool] = True
    needs_logprobs: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.definition = self.describe()

    def describe(self) -> str:
        raise NotImplementedError

    def info(self) -> MetricInfo:
        return MetricInfo(self.name, self.kind, self.higher_is_better, self.definition, self.aggregate,
                          getattr(self, "aggregate_resamples", None))

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        raise NotImplementedError

    def aggregate(self, values: Sequence[Any]) -> float:
        """Default for proportion and mean metrics: the mean of the measured values (``None`` = not measured)."""
        measured = [float(v) for v in values if v is not None]
        return math.fsum(measured) / len(measured) if measured else math.nan


class SummedStats(Metric):
    """A corpus metric whose per-example values are count vectors and whose score is a formula of their sum.

    ``aggregate_resamples`` lets the bootstrap sum each resample's vectors with numpy instead of calling
    ``aggregate`` a thousand times on Python lists. ``None`` (not measured) contributes nothing.
    """

    kind = "corpus"

    def from_totals(self, totals: list[float]) -> float:
        raise NotImplementedError

    def aggregate(self, values: Sequence[Any]) -> float:
        measured = [v for v in values if v is not None]
        return self.from_totals([sum(column) for column in zip(*measured)]) if measured else math.nan

    def aggregate_resamples(self, values: Sequence[Any], idx: np.ndarray) -> np.ndarray:
        width = len(next(v for v in values if v is not None))
        stats = np.array([[0] * width if v is None else v for v in values])
        return np.array([self.from_totals(stats[row].sum(axis=0).tolist()) for row in idx], dtype=float)


REQUIRED = object()
_REGISTRY: dict[str, type[Metric]] = {}


def metric(name: str) -> Callable[[type[Metric]], type[Metric]]:
    """Class decorator registering a metric under ``name`` (what case files write)."""

    def register(cls: type[Metric]) -> type[Metric]:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is registered twice ({_REGISTRY[name].__qualname__}, {cls.__qualname__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return register


def names() -> list[str]:
    return sorted(_REGISTRY, key=str.lower)


def _check_params(name: str, cls: type[Metric], given: dict[str, Any]) -> dict[str, Any]:
    valid = list(cls.defaults)
    for key in given:
        if key not in cls.defaults:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(valid) if valid else "none (this metric takes no parameters)"
            raise MetricParamError(f"{name}: unknown parameter {key!r}; valid: {listed}{hint}")
    params = {**cls.defaults, **given}
    for key, value in params.items():
        default = cls.defaults[key]
        if value is REQUIRED:
            raise MetricParamError(f"{name}: parameter {key!r} is required, e.g. `{name}: {{{key}: ...}}`")
        if key in cls.choices and value not in cls.choices[key]:
            allowed = ", ".join(str(c) for c in cls.choices[key])
            raise MetricParamError(f"{name}: {key} must be one of {allowed}; got {value!r}")
        if isinstance(default, bool) and not isinstance(value, bool):
            raise MetricParamError(f"{name}: {key} must be true or false; got {value!r}")
    return params


def get_metric(name: str, spec: MetricSpec | None = None, *, base_dir: Path | None = None) -> Metric:
    """Build the metric a case names; parameters come from ``params`` and from the short form's extra keys.

    ``base_dir`` (the case file's folder) anchors relative paths a spec names (``python:``, ``evaluate:``)."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise UnknownName("metric", name, names())
    spec = spec or MetricSpec()
    given = {**(spec.model_extra or {}), **spec.params}
    return cls(_check_params(name, cls, given))
