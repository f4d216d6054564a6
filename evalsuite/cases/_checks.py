"""Settings that validate but cannot mean what they say, caught at load time.

Why: each of these passed the schema and then cost a whole run to notice (``accuracy: {min: 80}`` can never
pass, accuracy without ``expected`` scores every answer wrong, a label the parser cannot produce is always
wrong, a label metric without ``parse:`` compares whole answers). A mistake that has no legitimate reading is
a ``CaseFileError`` at the key's line; a setting that can be meant (repeats at temperature 0, raw answers
compared with labels) is a ``CaseFileWarning`` at its line, shown in pytest's warnings summary.
The metric's own declarations (``needs_expected``, ``needs_parser``, ``bounds()``) decide, not its name.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalsuite.cases._layers import Layer, error_at, line_of
from evalsuite.cases._source import KeyPath, dotted
from evalsuite.cases.schema import Case, MetricSpec
from evalsuite.errors import CaseFileWarning, display_path, suggest

if TYPE_CHECKING:
    from evalsuite.metrics import Metric


def check_metric_settings(case: Case, metrics: dict[str, Metric], layers: list[Layer], rootdir: Path) -> None:
    """Thresholds within the metric's range, ``expected`` mapped where a metric compares with it, a parser where
    a metric compares labels, and label names the parser can produce."""
    parse_written = any("parse" in layer.data for layer in layers)
    for name, metric in metrics.items():
        _check_thresholds(name, case.metrics[name], metric, layers, rootdir)
        for key, message in metric.setting_warnings():
            warn_at(layers, ("metrics", name, *key), message, rootdir)
        if metric.needs_expected and case.dataset.expected is None:
            raise error_at(layers, ("dataset", "expected"), f"null, but {name} compares each answer with the "
                           "expected value; set dataset.expected to the reference column, or drop the metric",
                           rootdir)
        if metric.needs_parser and not parse_written:
            warn_at(layers, ("metrics", name), f"{name} compares parsed labels, but the case has no parse: section, "
                    "so each whole answer (stripped) is its prediction; add parse: {kind: label, labels: {...}} "
                    "(or kind: regex / json), or write parse: {kind: raw} if the answers are exactly the labels",
                    rootdir)
    if case.dataset.label_names is not None:
        names = case.dataset.label_names
        mapped = names.values() if isinstance(names, dict) else names
        check_labels(case, metrics, (("a stored label is named", name) for name in mapped), layers, rootdir,
                     key=("dataset", "label_names"))


def check_labels(case: Case, metrics: dict[str, Metric], expected: Iterable[tuple[str, Any]], layers: list[Layer],
                 rootdir: Path, *, key: KeyPath) -> None:
    """Every expected label, given as (what says where it comes from, value), must be one ``parse.labels`` can
    produce, when a metric compares labels."""
    labels = list(case.parse.labels)
    if case.parse.kind != "label" or case.parse.python is not None or not any(m.needs_parser for m in metrics.values()):
        return
    for what, value in expected:
        choices = value if isinstance(value, (list, tuple)) else [value]
        if value is None or any(str(choice) in labels for choice in choices):
            continue
        raise error_at(layers, key, f"{what} {value!r}, which is not one of parse.labels ({', '.join(labels)}): the "
                       "parser never produces it, so those examples always count as wrong; "
                       f"{suggest(value, labels, 'labels')}; fix the label, or add it to parse.labels", rootdir)


def check_repeats(case: Case, item_id: str, layers: list[Layer], rootdir: Path) -> None:
    """``repeats`` > 1 at temperature 0 draws the same greedy answer again and again: a warning, since some
    endpoints are nondeterministic at temperature 0 and the repeats then measure that."""
    if case.repeats > 1 and case.model.temperature == 0:
        warn_at(layers, ("repeats",), f"{case.repeats} samples at temperature 0 ({item_id}): greedy decoding "
                "gives the same answer each time, so the extra samples cost calls and measure nothing; set "
                "repeats: 1, or a sampling temperature (unless this endpoint is nondeterministic at temperature 0)",
                rootdir)


def warn_at(layers: list[Layer], key: KeyPath, message: str, rootdir: Path) -> None:
    """A ``CaseFileWarning`` attributed to the case file and line of ``key`` (where pytest's summary shows it)."""
    file, line = line_of(layers, key)
    shown = display_path(file, rootdir)
    warning = CaseFileWarning(f"{dotted(key)}: {message}", f"{shown}:{line}")
    warnings.warn_explicit(warning, CaseFileWarning, shown, line)


def _check_thresholds(name: str, spec: MetricSpec, metric: Metric, layers: list[Layer], rootdir: Path) -> None:
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        raise error_at(layers, ("metrics", name, "max"), f"below min ({spec.max:g} < {spec.min:g}), so no value can "
                       "pass; swap them, or drop one", rootdir)
    bounds = metric.bounds()
    if bounds is None:
        return
    lowest, highest = bounds
    allowed = {"min": (lowest, highest), "max": (lowest, highest), "max_drop": (0.0, highest - lowest)}
    for threshold, (low, high) in allowed.items():
        value = getattr(spec, threshold)
        if value is None or low <= value <= high:
            continue
        scale = "a proportion" if metric.kind == "proportion" else "its scale"
        hint = f"did you mean {value / 100:g}? " if highest == 1 and 2 <= value <= 100 else ""  # 80: a percentage
        raise error_at(layers, ("metrics", name, threshold), f"{value:g} is outside {low:g}..{high:g}, the values "
                       f"{name} {'takes' if threshold != 'max_drop' else 'can drop by'} ({scale}); {hint}write the "
                       "threshold on that scale", rootdir)
