"""The metric registry: ``@metric("name")`` registers a ``Metric`` class or a per-example function,
``get_metric`` builds the metric a case names.

Why a registry: case files name metrics by string, so the loader needs one place that knows every valid
name and every valid parameter, to reject ``acuracy`` or ``averge`` at load time with a suggestion rather
than failing after the model calls were paid for. Built-ins, a ``conftest.py``, installed packages (entry
point group ``evalsuite.metrics``), a case's ``python:`` file and ``evaluate:`` modules all end up as a
``Metric`` subclass checked by the same code.
"""

from __future__ import annotations

import inspect
import numbers
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from evalsuite._registry import Registry
from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import EvalsuiteError, MetricError, MetricParamError, suggest
from evalsuite.metrics._base import REQUIRED, Kind, Metric
from evalsuite.records import Scored

Registered = TypeVar("Registered")
_METRICS: Registry[object] = Registry("metric")  # a Metric subclass, or a function (an entry point's raw object)


def metric(name: str, **attributes: Any) -> Callable[[Registered], Registered]:
    """Register a metric under ``name`` (what case files write); returns the decorated object unchanged.

    On a ``Metric`` subclass, keyword arguments set class attributes of the registered variant, so one class
    serves several names (``@metric("rouge1", rouge_type="rouge1")``). On a function of one ``Scored`` answer
    returning a number, a bool or None (not measured), its keyword parameters are the metric's parameters and
    ``kind``, ``higher_is_better`` and ``needs_logprobs`` may be given here.
    """

    def register(obj: Registered) -> Registered:
        _METRICS.add(name, as_metric_class(name, obj, attributes))
        return obj

    return register


def names() -> list[str]:
    return _METRICS.names()


def get_metric(name: str, spec: MetricSpec | None = None, *, base_dir: Path | None = None) -> Metric:
    """Build the metric a case names; parameters come from ``params`` and from the short form's extra keys.

    ``base_dir`` (the case file's folder) anchors the relative paths of ``python:`` and ``evaluate:``."""
    spec = spec or MetricSpec()
    given = {**(spec.model_extra or {}), **spec.params}
    given_kinds = [key for key in ("python", "evaluate", "judge") if getattr(spec, key) is not None]
    if len(given_kinds) > 1:
        raise MetricParamError(f"{name}: give one of python, evaluate or judge, not {' and '.join(given_kinds)}")
    if spec.judge is not None:
        from evalsuite.metrics._judge import JudgeMetric

        if given:
            raise MetricParamError(f"{name}: a judge metric takes its settings under judge: "
                                   f"({', '.join(given)} given beside it)")
        cls, given = as_metric_class(name, JudgeMetric), {"judge": spec.judge}
    elif spec.python is not None:
        from evalsuite.metrics._python import load_python

        target = load_python(name, spec.python, base_dir)
        try:
            cls = as_metric_class(name, target)
        except EvalsuiteError as exc:  # not a function of one answer nor a Metric subclass
            raise MetricParamError(f"{name}: python: {spec.python}: {exc}") from None
    elif spec.evaluate is not None:
        from evalsuite.metrics._evaluate import EvaluateMetric

        if given:
            raise MetricParamError(
                f"{name}: an evaluate metric takes no parameters beside evaluate ({', '.join(given)}); "
                "put arguments of the module's compute() under evaluate.args"
            )
        cls, given = as_metric_class(name, EvaluateMetric, {"base_dir": base_dir}), spec.evaluate
    else:
        cls = as_metric_class(name, _METRICS.get(name))
    return cls(_check_params(name, cls, given))


def as_metric_class(name: str, obj: object, attributes: dict[str, Any] | None = None) -> type[Metric]:
    """The ``Metric`` subclass registered as ``name``: ``obj`` itself, a variant of it, or a function's wrapper."""
    attributes = attributes or {}
    if isinstance(obj, type) and issubclass(obj, Metric):
        missing = [key for key in attributes if not hasattr(obj, key)]
        if missing:
            raise EvalsuiteError(f"@metric({name!r}): {obj.__qualname__} has no attribute {missing[0]!r} to set")
        if not attributes and obj.name == name:
            return obj
        if not attributes and "name" not in vars(obj):  # a class registered once: named in place
            obj.name = name
            return obj
        namespace = {"name": name, "__module__": obj.__module__, "__qualname__": f"{obj.__qualname__}[{name}]"}
        return type(obj.__name__, (obj,), {**namespace, **attributes})
    if callable(obj):
        return _function_metric(name, obj, attributes)
    raise EvalsuiteError(f"metric {name!r} is {obj!r}: register a Metric subclass or a function of one answer")


class PerExample(Metric):
    """A function of one scored answer as a metric: the mean of its values (None = not measured).

    Its kind is "proportion" (Wilson interval, McNemar against a baseline) when declared, when the function
    is annotated ``-> bool``, or when it returns bools; "mean" otherwise."""

    kind: Kind = "mean"
    function: ClassVar[Callable[..., Any]]
    declared_kind: ClassVar[Kind | None] = None

    def __init__(self, params: dict[str, Any]) -> None:
        self.kind = self.declared_kind or "mean"  # known before scoring when declared (what compare rebuilds)
        super().__init__(params)

    def describe(self) -> str:
        doc = inspect.getdoc(self.function)
        what = " ".join(doc.split("\n\n")[0].split()) if doc else f"mean of {self.function.__qualname__}() per example"
        shown = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{what} ({shown})" if shown else what

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        values = [self._checked(s, self.function(s, **self.params)) for s in scored]
        if self.declared_kind is None:
            measured = [v for v in values if v is not None]
            self.kind = "proportion" if measured and all(isinstance(v, bool) for v in measured) else "mean"
        return [int(v) if isinstance(v, bool) else v for v in values]

    def _checked(self, item: Scored, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if type(value).__name__ == "bool_":  # numpy's bool
            return bool(value)
        if isinstance(value, numbers.Real):
            return value if isinstance(value, int) else float(value)
        raise MetricError(
            f"{self.name}: {self.function.__qualname__} returned {value!r} for example {item.example.id!r}; "
            "return a number, a bool, or None (not measured)"
        )


def _function_metric(name: str, function: Callable[..., Any], attributes: dict[str, Any]) -> type[Metric]:
    allowed = {"kind", "higher_is_better", "needs_logprobs"}
    extra = sorted(set(attributes) - allowed)
    if extra:
        raise EvalsuiteError(f"@metric({name!r}) on a function takes {', '.join(sorted(allowed))}; got {extra[0]!r}")
    attributes = dict(attributes)
    kind = attributes.pop("kind", None) or _annotated_kind(function)
    if kind not in (None, *typing.get_args(Kind)):
        raise EvalsuiteError(f"@metric({name!r}): kind must be one of {', '.join(typing.get_args(Kind))}; got {kind!r}")
    parameters = list(inspect.signature(function).parameters.values())
    if not parameters or parameters[0].kind not in (parameters[0].POSITIONAL_ONLY, parameters[0].POSITIONAL_OR_KEYWORD):
        raise EvalsuiteError(f"metric {name!r}: {function.__qualname__} must take the scored answer as its first argument")
    defaults = {
        p.name: REQUIRED if p.default is p.empty else p.default
        for p in parameters[1:]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    namespace: dict[str, Any] = {
        "name": name, "function": staticmethod(function), "defaults": defaults,
        "declared_kind": kind,
        "__module__": function.__module__, "__qualname__": function.__qualname__, **attributes,
    }
    return type(function.__name__, (PerExample,), namespace)


def _annotated_kind(function: Callable[..., Any]) -> Kind | None:
    """"proportion" for ``-> bool`` (or ``bool | None``), "mean" for another annotation, None when unannotated."""
    try:
        returns = typing.get_type_hints(function).get("return")
    except Exception:  # an annotation that does not resolve: decide from the values
        return None
    if returns is None:
        return None
    options = set(typing.get_args(returns)) - {type(None)} or {returns}
    return "proportion" if options == {bool} else "mean"


def _check_params(name: str, cls: type[Metric], given: dict[str, Any]) -> dict[str, Any]:
    valid = list(cls.defaults)
    for key in given:
        if key not in cls.defaults:
            listed = suggest(key, valid, "valid", none="none (this metric takes no parameters)")
            raise MetricParamError(f"{name}: unknown parameter {key!r}; {listed}")
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
