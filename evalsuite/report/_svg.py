"""The report's plots, as inline SVG built from the data.

SVG is text: sharp at any zoom or DPI, part of the page without JavaScript, and cheap to make (well under a
millisecond per plot; no plotting library is imported, so writing the reports of a run stays proportional
to its size). Each function returns one ``<figure>`` (the ``<svg>``, a legend where needed, a caption) or None
when there is nothing to draw. Axes are zoomed to what the gate compares: the value, its interval, the
threshold and the baseline, so a drop from 1.000 to 0.925 fills the plot instead of being a sliver.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from typing import Any

from evalsuite.records import ExampleRecord, MetricResult
from evalsuite.verdict.format import fmt

NOW, BASELINE, MIN, MAX, GRID, INK = "#1f5fbf", "#5f6672", "#c62828", "#b8500f", "#e3e6ea", "#2b2f36"
FAIL_FILL, OK = "#fbe3e3", "#2e7d32"
SERIES = ("#1f5fbf", "#c2410c", "#2e7d32", "#7b1fa2", "#00838f", "#ad1457")
MARKERS = ("circle", "square", "triangle", "diamond")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
MAX_LABELS = 12  # a confusion matrix with more labels is a table nobody reads
HIST_BINS = 20


# ---------------------------------------------------------------- axes

def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if not high > low:
        return [low]
    raw = (high - low) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.ceil(low / step - 1e-9)
    return [round(i * step, 12) for i in range(first, math.floor(high / step + 1e-9) + 1)]


def tick_label(value: float, step: float) -> str:
    """``value`` with as many decimals as the step needs (0.925 -> "0.925" at step 0.025, 1.0 -> "1")."""
    return f"{value:.{_decimals(step)}f}"


@lru_cache(maxsize=256)
def _decimals(step: float) -> int:
    return next((d for d in range(9) if abs(round(step, d) - step) <= 1e-9 * max(1.0, abs(step))), 9)


def zoomed(values: Iterable[float | None], *, clamp: tuple[float, float] | None = None,
           pad: float = 0.08) -> tuple[float, float]:
    """An axis range around ``values`` with a margin, widened to round ticks; inside ``clamp`` (0..1 for a proportion)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return (0.0, 1.0)
    low, high = min(finite), max(finite)
    span = high - low or (abs(high) * 0.1 or 1.0)
    low, high = low - span * pad, high + span * pad
    if clamp is not None:
        low, high = max(low, clamp[0]), min(high, clamp[1])
    marks = ticks(low, high)
    step = marks[1] - marks[0] if len(marks) > 1 else span
    low, high = math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step
    if clamp is not None:
        low, high = max(low, clamp[0]), min(high, clamp[1])
    low, high = round(low, 12), round(high, 12)
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def _scale(domain: tuple[float, float], pixels: tuple[float, float]) -> Callable[[float], float]:
    (d0, d1), (p0, p1) = domain, pixels
    return lambda v: p0 + (v - d0) * (p1 - p0) / (d1 - d0)


def _n(value: float) -> str:
    """A coordinate: one decimal is finer than any screen needs."""
    return f"{value:.1f}"


def _text(x: float, y: float, text: str, *, anchor: str = "middle", size: int = 12, color: str = INK,
          weight: str = "", rotate: bool = False) -> str:
    extra = f' font-weight="{weight}"' if weight else ""
    turn = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
    return (f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="{size}" fill="{color}"{extra}{turn}>'
            f"{escape(text)}</text>")


def _line(x1: float, y1: float, x2: float, y2: float, color: str, width: float = 1, dash: str = "") -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{color}" '
            f'stroke-width="{width}"{dashed}/>')


def _marker(shape: str, x: float, y: float, color: str, *, size: float = 5, hollow: bool = False) -> str:
    paint = f'fill="#fff" stroke="{color}" stroke-width="2"' if hollow else f'fill="{color}" stroke="#fff" stroke-width="1"'
    if shape == "square":
        return f'<rect x="{_n(x - size)}" y="{_n(y - size)}" width="{_n(2 * size)}" height="{_n(2 * size)}" {paint}/>'
    if shape == "triangle":
        points = f"{_n(x)},{_n(y - size * 1.2)} {_n(x - size * 1.1)},{_n(y + size * 0.9)} {_n(x + size * 1.1)},{_n(y + size * 0.9)}"
        return f'<polygon points="{points}" {paint}/>'
    if shape == "diamond":
        points = f"{_n(x)},{_n(y - size * 1.3)} {_n(x + size * 1.3)},{_n(y)} {_n(x)},{_n(y + size * 1.3)} {_n(x - size * 1.3)},{_n(y)}"
        return f'<polygon points="{points}" {paint}/>'
    return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(size)}" {paint}/>'


def _svg(width: float, height: float, label: str, body: Sequence[str], *, scroll: bool = False) -> str:
    """The root element; it scales down with its box (``scroll``: keeps its size, the box scrolls instead)."""
    css = "plot wide" if scroll else "plot"
    return (f'<svg class="{css}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" '
            f'width="{_n(width)}" height="{_n(height)}" role="img" aria-label="{escape(label)}" '
            f'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif"><title>{escape(label)}</title>'
            + "".join(body) + "</svg>")


def _figure(svg: str, caption: str, legend: Sequence[tuple[str, str]] = (), *, kind: str) -> str:
    """``legend``: (swatch SVG, label) pairs, as HTML so that it wraps on a narrow screen."""
    items = "".join(f"<li>{swatch}{escape(label)}</li>" for swatch, label in legend)
    wrapped = f'<div class="scroll">{svg}</div>' if 'class="plot wide"' in svg else svg
    return (f'<figure class="plot {kind}">{wrapped}' + (f'<ul class="legend">{items}</ul>' if items else "")
            + f"<figcaption>{escape(caption)}</figcaption></figure>")


def _swatch(color: str, shape: str = "circle", dash: str = "", hollow: bool = False) -> str:
    line = _line(1, 7, 21, 7, color, 2, dash) if not hollow else ""
    return (f'<svg class="swatch" viewBox="0 0 22 14" width="22" height="14" aria-hidden="true">{line}'
            f"{_marker(shape, 11, 7, color, size=4, hollow=hollow)}</svg>")


def _x_axis(x: Callable[[float], float], domain: tuple[float, float], y0: float, y1: float, label: str,
            *, grid: bool = True) -> list[str]:
    """Vertical grid lines from ``y0`` to ``y1``, tick labels under ``y1`` and the axis label."""
    marks = ticks(*domain)
    step = marks[1] - marks[0] if len(marks) > 1 else 1.0
    out = [_line(x(v), y0, x(v), y1, GRID) for v in marks] if grid else []
    out += [_text(x(v), y1 + 15, tick_label(v, step), size=11) for v in marks]
    left, right = x(domain[0]), x(domain[1])
    out.append(_line(left, y1, right, y1, INK))
    out.append(_text((left + right) / 2, y1 + 32, label, size=12))
    return out


def _y_axis(y: Callable[[float], float], domain: tuple[float, float], x0: float, x1: float, label: str,
            extent: tuple[float, float]) -> list[str]:
    """Horizontal grid lines from ``x0`` to ``x1``, tick labels left of ``x0``, the axis over ``extent`` (pixels)."""
    marks = ticks(*domain, count=5)
    step = marks[1] - marks[0] if len(marks) > 1 else 1.0
    out = [_line(x0, y(v), x1, y(v), GRID) for v in marks]
    out += [_text(x0 - 5, y(v) + 4, tick_label(v, step), anchor="end", size=11) for v in marks]
    out.append(_line(x0, extent[0], x0, extent[1], INK))
    out.append(_text(13, sum(extent) / 2, label, rotate=True))
    return out


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


# ---------------------------------------------------------------- per metric: value, CI, threshold, baseline

def tolerated(m: MetricResult) -> float | None:
    """Where the baseline gate starts to fail: the baseline moved by ``max_drop`` / ``max_increase`` in the bad direction."""
    if m.baseline is None:
        return None
    if m.higher_is_better and m.max_drop is not None:
        return m.baseline - m.max_drop
    if not m.higher_is_better and m.max_increase is not None:
        return m.baseline + m.max_increase
    return None


def interval_plot(m: MetricResult) -> str | None:
    """This run's value with its CI, the baseline, and the thresholds, on an axis zoomed to them."""
    if m.value is None or not math.isfinite(m.value):
        return None
    rows = [("this run", m.value)] + ([("baseline", m.baseline)] if m.baseline is not None else [])
    gate = tolerated(m)
    domain = zoomed([m.value, m.ci_low, m.ci_high, m.baseline, m.min, m.max, gate],
                    clamp=(0.0, 1.0) if m.kind == "proportion" else None)
    width, left, right, top, row_h = 340, 70, 16, 26, 30
    height = top + row_h * len(rows) + 44
    x = _scale(domain, (left + 6, width - right - 6))  # a marker at an end of the axis stays whole
    bottom = top + row_h * len(rows)
    out: list[str] = []
    low, high = x(domain[0]), x(domain[1])
    if m.min is not None and m.min > domain[0]:  # the failing side of each threshold, shaded
        out.append(f'<rect x="{_n(low)}" y="{top}" width="{_n(x(min(m.min, domain[1])) - low)}" '
                   f'height="{row_h * len(rows)}" fill="{FAIL_FILL}"/>')
    if m.max is not None and m.max < domain[1]:
        start = x(max(m.max, domain[0]))
        out.append(f'<rect x="{_n(start)}" y="{top}" width="{_n(high - start)}" height="{row_h * len(rows)}" '
                   f'fill="{FAIL_FILL}"/>')
    method = f" · 95% CI ({m.interval})" if m.interval and m.ci_low is not None else ""
    out += _x_axis(x, domain, top, bottom, m.name + method)
    for bound, name, color in ((m.min, "min", MIN), (m.max, "max", MAX)):
        if bound is not None and domain[0] <= bound <= domain[1]:
            out.append(_line(x(bound), top - 4, x(bound), bottom, color, 2, "5 3"))
            out.append(_text(_clamp(x(bound), left + 20, width - right - 20), top - 9, f"{name} {fmt(bound)}",
                             color=color, size=11, weight="600"))
    failed = m.failed
    for i, (label, value) in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        out.append(_text(left - 8, cy + 4, label, anchor="end", size=11))
        if value is None:
            continue
        if i == 0:
            if m.ci_low is not None and m.ci_high is not None:
                a, b = x(max(m.ci_low, domain[0])), x(min(m.ci_high, domain[1]))
                out += [_line(a, cy, b, cy, NOW, 3), _line(a, cy - 6, a, cy + 6, NOW, 2), _line(b, cy - 6, b, cy + 6, NOW, 2)]
            out.append(_marker("circle", x(value), cy, MIN if failed else NOW, size=6))
        else:
            if gate is not None:
                out.append(_line(x(_clamp(gate, *domain)), cy, x(value), cy, BASELINE, 2, "2 3"))
                out.append(_line(x(_clamp(gate, *domain)), cy - 6, x(_clamp(gate, *domain)), cy + 6, BASELINE, 2))
            out.append(_marker("circle", x(value), cy, BASELINE, size=5, hollow=True))
        out.append(_text(_clamp(x(value), left + 14, width - right - 14), cy - 9, fmt(value), size=11, weight="600"))
    ci = f" [{fmt(m.ci_low)}, {fmt(m.ci_high)}]" if m.ci_low is not None and m.ci_high is not None else ""
    label = (f"{m.name}: this run {fmt(m.value)}{ci}" + (f", baseline {fmt(m.baseline)}" if m.baseline is not None else "")
             + (f", min {fmt(m.min)}" if m.min is not None else "") + (f", max {fmt(m.max)}" if m.max is not None else ""))
    return _svg(width, height, label, out)


# ---------------------------------------------------------------- sweeps: parameter -> metric with CI bands

@dataclass
class SweepPoint:
    x: float
    metric: MetricResult


def sweep_plot(title: str, param: str, metric: str, series: dict[str, list[SweepPoint]]) -> str | None:
    """``metric`` against ``param``, one line per series with its CI band, hollow markers at the baseline, the
    thresholds as dashed lines. Series that coincide are dodged sideways and drawn with distinct markers and
    dashes, so that none hides another."""
    series = {name: sorted(points, key=lambda p: p.x) for name, points in series.items() if points}
    if not series:
        return None
    metrics = [p.metric for points in series.values() for p in points]
    first = metrics[0]
    xs = [p.x for points in series.values() for p in points]
    values = [v for m in metrics for v in (m.value, m.ci_low, m.ci_high, m.baseline)] + [first.min, first.max]
    y_domain = zoomed(values, clamp=(0.0, 1.0) if first.kind == "proportion" else None)
    x_low, x_high = min(xs), max(xs)
    pad = (x_high - x_low) * 0.1 or 0.5
    x_domain = (x_low - pad, x_high + pad)
    width, height, left, right, top, bottom = 400, 260, 54, 14, 16, 214
    x, y = _scale(x_domain, (left, width - right)), _scale(y_domain, (bottom - 6, top + 8))
    out = _y_axis(y, y_domain, left, width - right, metric, (bottom, top))
    distinct = sorted(set(xs))
    step = min((b - a for a, b in zip(distinct, distinct[1:])), default=1.0)
    out += [_text(x(v), bottom + 15, tick_label(v, _decimal_step(distinct)), size=11) for v in distinct]
    out += [_line(left, bottom, width - right, bottom, INK), _text((left + width - right) / 2, bottom + 34, param)]
    for bound, name, color in ((first.min, "min", MIN), (first.max, "max", MAX)):
        if bound is not None and y_domain[0] <= bound <= y_domain[1]:
            out.append(_line(left, y(bound), width - right, y(bound), color, 2, "5 3"))
            out.append(_text(width - right - 2, y(bound) - 5, f"{name} {fmt(bound)}", anchor="end", color=color,
                             size=11, weight="600"))
    legend: list[tuple[str, str]] = []
    count = len(series)
    dodge = min(8.0, (x(x_low + step) - x(x_low)) / (2 * count)) if count > 1 else 0.0
    for i, (name, points) in enumerate(series.items()):
        color, shape, dash = SERIES[i % len(SERIES)], MARKERS[i % len(MARKERS)], DASHES[i % len(DASHES)]
        shift = (i - (count - 1) / 2) * dodge
        xy = [(x(p.x) + shift, p.metric) for p in points if p.metric.value is not None]
        band = [(px, m.ci_low, m.ci_high) for px, m in xy if m.ci_low is not None and m.ci_high is not None]
        if len(band) > 1:
            edge = [f"{_n(px)},{_n(y(lo))}" for px, lo, _ in band] + [f"{_n(px)},{_n(y(hi))}" for px, _, hi in reversed(band)]
            out.append(f'<polygon points="{" ".join(edge)}" fill="{color}" fill-opacity="0.07" stroke="none"/>')
        for px, m in xy:
            if m.ci_low is not None and m.ci_high is not None:
                out.append(_line(px, y(m.ci_low), px, y(m.ci_high), color, 1.5))
        if len(xy) > 1:
            path = " ".join(f"{_n(px)},{_n(y(m.value or 0.0))}" for px, m in xy)
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dashed}/>')
        for px, m in xy:
            if m.baseline is not None:
                out.append(_marker(shape, px, y(m.baseline), BASELINE, size=4, hollow=True))
            out.append(_marker(shape, px, y(m.value or 0.0), MIN if m.failed else color, size=5))
        legend.append((_swatch(color, shape, dash), name))
    if any(m.baseline is not None for m in metrics):
        legend.append((_swatch(BASELINE, hollow=True), "baseline"))
    label = f"{title}: {metric} against {param}, " + "; ".join(
        f"{name}: " + ", ".join(f"{param} {fmt(p.x)} -> {fmt(p.metric.value)}" for p in points)
        for name, points in series.items())
    return _figure(_svg(width, height, label, out), f"{title}: {metric} by {param} (95% CI bands; red markers fail)",
                   legend, kind="sweep")


def _decimal_step(values: Sequence[float]) -> float:
    """The coarsest power of ten that writes every value exactly (0.7 -> 0.1, 8 -> 1)."""
    for decimals in range(6):
        if all(abs(round(v, decimals) - v) < 1e-9 for v in values):
            return 10.0 ** -decimals
    return 1e-6


# ---------------------------------------------------------------- labels: confusion matrix

def _is_label(value: Any) -> bool:
    return isinstance(value, (str, int, bool)) and len(str(value)) <= 40


def confusion_plot(records: Sequence[ExampleRecord], caption: str) -> str | None:
    """Expected (rows) against predicted (columns) when the task is labelling: few short, repeated expected values.
    Unparsed answers and predictions outside the expected labels get columns of their own."""
    if not records or not all(_is_label(r.expected) for r in records):
        return None
    labels = sorted({str(r.expected) for r in records})
    if len(labels) > MAX_LABELS or len(records) < 2 * len(labels):
        return None

    def column(r: ExampleRecord) -> str:
        if not r.parsed or r.prediction is None:
            return "(unparsed)"
        return str(r.prediction) if str(r.prediction) in labels else "(other)"

    counts = Counter((str(r.expected), column(r)) for r in records)
    columns = labels + [c for c in ("(other)", "(unparsed)") if any(key[1] == c for key in counts)]
    shown = [_short(c) for c in columns]
    cell = 50
    row_label = max(len(s) for s in shown[: len(labels)]) * 7 + 14
    turn = max(len(s) for s in shown) > 6  # long column labels are written at an angle
    head = (max(len(s) for s in shown) * 6 + 16) if turn else 22
    left, top = 26 + row_label, 24 + head
    overhang = max(len(s) for s in shown) * 5 - cell / 2 if turn else 0  # the last rotated label reaches past the grid
    width, height = left + cell * len(columns) + max(10.0, overhang), top + cell * len(labels) + 10
    peak = max(counts.values())
    out = [_text(left + cell * len(columns) / 2, 14, "predicted", weight="600"),
           _text(12, top + cell * len(labels) / 2, "expected", rotate=True, weight="600")]
    for j, name in enumerate(shown):
        cx = left + cell * j + cell / 2
        if turn:
            out.append(f'<text x="{_n(cx)}" y="{_n(top - 6)}" font-size="11" fill="{INK}" text-anchor="start" '
                       f'transform="rotate(-40 {_n(cx)} {_n(top - 6)})">{escape(name)}</text>')
        else:
            out.append(_text(cx, top - 7, name, size=11))
    for i, row in enumerate(labels):
        cy = top + cell * i
        out.append(_text(left - 6, cy + cell / 2 + 4, _short(row), anchor="end", size=11))
        total = sum(counts[(row, c)] for c in columns) or 1
        for j, col in enumerate(columns):
            n = counts[(row, col)]
            shade = n / peak
            fill = _blend("#f4f6f9", "#1f4f9f", shade)
            stroke = f' stroke="{OK}" stroke-width="3"' if col == row else ' stroke="#fff" stroke-width="1"'
            out.append(f'<rect x="{left + cell * j}" y="{cy}" width="{cell}" height="{cell}" fill="{fill}"{stroke}>'
                       f"<title>expected {escape(row)}, predicted {escape(col)}: {n} of {total}</title></rect>")
            out.append(_text(left + cell * j + cell / 2, cy + cell / 2 + 5, str(n), size=13, weight="600",
                             color="#fff" if shade > 0.55 else INK))
    label = f"confusion matrix: expected (rows) against predicted (columns); " + "; ".join(
        f"{row}: " + ", ".join(f"{counts[(row, c)]} {c}" for c in columns if counts[(row, c)]) for row in labels)
    return _figure(_svg(width, height, label, out, scroll=True), caption, kind="confusion")


def _short(text: str, limit: int = 16) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _blend(light: str, dark: str, share: float) -> str:
    a = [int(light[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(dark[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(p + (q - p) * share):02x}" for p, q in zip(a, b))


# ---------------------------------------------------------------- per-example values: distribution

def numeric_scores(records: Sequence[ExampleRecord], name: str) -> list[float]:
    """The finite numeric per-example values of metric ``name`` (booleans and lists, e.g. corpus statistics, left out)."""
    out = []
    for r in records:
        v = r.scores.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out


def distribution_plot(m: MetricResult, values: Sequence[float]) -> str | None:
    """A histogram of the per-example values, with the statistic the gate tests (``m.value``: a mean, a p95, ...)
    as a solid line and the thresholds dashed. None for 0/1 values: the bar and the confusion matrix say it all."""
    if len(values) < 2 or all(v in (0.0, 1.0) for v in values):
        return None
    low, high = min(values), max(values)
    bins = max(5, min(HIST_BINS, int(math.sqrt(len(values))) + 1)) if high > low else 1
    width_bin = (high - low) / bins if high > low else (abs(high) * 0.05 or 0.5)
    start = low if high > low else low - width_bin / 2
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - start) / width_bin))] += 1
    domain = zoomed([start, start + bins * width_bin, m.value, m.min, m.max], pad=0.02)
    peak = max(counts)
    y_domain = (0.0, float(max(ticks(0.0, peak * 1.08, 4)[-1], peak)))
    width, height, left, right, top, bottom = 360, 230, 50, 14, 26, 180
    x, y = _scale(domain, (left, width - right)), _scale(y_domain, (bottom, top))
    out = _y_axis(y, y_domain, left, width - right, "examples", (bottom, top))
    for i, n in enumerate(counts):
        if n:
            x0, x1 = x(start + i * width_bin), x(start + (i + 1) * width_bin)
            out.append(f'<rect x="{_n(x0 + 0.5)}" y="{_n(y(n))}" width="{_n(max(1.0, x1 - x0 - 1))}" '
                       f'height="{_n(bottom - y(n))}" fill="{NOW}" fill-opacity="0.75"><title>{n} examples in '
                       f"[{fmt(start + i * width_bin)}, {fmt(start + (i + 1) * width_bin)}]</title></rect>")
    out += _x_axis(x, domain, top, bottom, f"{m.name} per example", grid=False)
    middle = (left + width - right) / 2
    for bound, name, color in ((m.min, "min", MIN), (m.max, "max", MAX)):
        if bound is not None:
            out.append(_line(x(bound), top, x(bound), bottom, color, 2, "5 3"))
            right_side = x(bound) < middle
            out.append(_text(x(bound) + (4 if right_side else -4), top + 12, f"{name} {fmt(bound)}",
                             anchor="start" if right_side else "end", color=color, size=11, weight="600"))
    if m.value is not None and math.isfinite(m.value):
        out.append(_line(x(m.value), top - 4, x(m.value), bottom, INK, 2))
        out.append(_text(_clamp(x(m.value), left + 50, width - right - 50), top - 9, f"{m.name} {fmt(m.value)}",
                         size=11, weight="600"))
    label = (f"{m.name}: distribution of {len(values)} per-example values from {fmt(min(values))} to "
             f"{fmt(max(values))}; the gated value {fmt(m.value)}")
    caption = f"{m.name}: {len(values):,} per-example values; solid line: the {m.name} the gate tests"
    return _figure(_svg(width, height, label, out), caption, kind="distribution")
