"""report.html: one self-contained page (inline CSS, plots as base64 PNG from matplotlib's Agg).

Per item: each metric's value with its CI against the threshold and the baseline; a confusion
matrix when predictions are labels; score histograms for per-example numeric metrics. Per case with
a temperature / max_tokens / top_p sweep: metric vs parameter (e.g. accuracy vs temperature).
All text is escaped; plots are capped per item so the page renders fast even for large suites.
matplotlib is imported only when a page is rendered: importing the plugin stays cheap.
"""

from __future__ import annotations

import base64
import io
import math
from collections import Counter, defaultdict
from html import escape
from typing import TYPE_CHECKING, Any

from evalsuite.records import ItemResult, MetricResult
from evalsuite.report._common import (
    baseline_text,
    coverage_lines,
    error_kinds,
    flaky_text,
    item_status,
    mde_text,
    named,
    outcome_label,
    p_text,
    packages_text,
    quarantine_text,
    sort_items,
    summary_line,
    threshold_text,
    value_text,
)
from evalsuite.verdict.format import fmt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SWEEP_PARAMS = ("temperature", "max_tokens", "top_p")
MAX_METRIC_PANELS = 6
MAX_HISTOGRAMS = 3
MAX_SWEEP_METRICS = 3
MAX_LABELS = 12
MAX_EXAMPLE_ROWS = 10
MAX_FLIP_ROWS = 20
_DPI = 80
_NOW, _BASE, _MIN, _MAX = "#4C72B0", "#AAAAAA", "#C44E52", "#DD8452"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.regression,.fail,.not_recorded{color:#b00020;font-weight:600} .error{color:#b26a00;font-weight:600}
.skipped,.xfailed,.xpassed{color:#8a6d00}
.improved{color:#1b7a1b} section{border-top:2px solid #eee;margin-top:1.5rem}
.plots img{margin:.25rem;border:1px solid #eee} .reason{font-size:.85rem;color:#444}
code{font-size:.85rem} .meta{color:#666;font-size:.8rem}
"""


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure  # Agg-backed, no pyplot state

    return Figure(figsize=(width, height))


def _whisker(m: MetricResult) -> tuple[float, float]:
    """Distances from the value down to the CI's low end and up to its high end (0 without an interval)."""
    if m.value is None or m.ci_low is None or m.ci_high is None:
        return 0.0, 0.0
    return max(0.0, m.value - m.ci_low), max(0.0, m.ci_high - m.value)


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(fig: Figure, alt: str) -> str:
    return f'<img class="plot" alt="{escape(alt)}" src="data:image/png;base64,{_png(fig)}">'


def metrics_plot(item: ItemResult) -> str | None:
    """Per metric: the value (CI whisker) next to the baseline, with min/max threshold lines."""
    metrics = [(m, m.value) for m in item.metrics if m.value is not None][:MAX_METRIC_PANELS]
    if not metrics:
        return None
    fig = _figure(2.1 * len(metrics), 2.4)
    for i, (m, value) in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        labels, heights, colors = ["now"], [value], [_NOW]
        if m.baseline is not None:
            labels.append("baseline")
            heights.append(m.baseline)
            colors.append(_BASE)
        ax.bar(range(len(heights)), heights, color=colors, width=0.6)
        if m.ci_low is not None and m.ci_high is not None:
            low, high = _whisker(m)
            ax.errorbar([0], [value], yerr=[[low], [high]], color="black", capsize=4, linewidth=1)
        for bound, color in ((m.min, _MIN), (m.max, _MAX)):
            if bound is not None:
                ax.axhline(bound, color=color, linestyle="--", linewidth=1)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(f"{m.name}: {m.verdict}", fontsize=8, color=_MIN if m.failed else "black")
    fig.tight_layout()
    return _img(fig, f"{item.item_id}: metrics vs threshold and baseline")


def _is_label(value: Any) -> bool:
    return isinstance(value, (str, int, bool)) and len(str(value)) <= 32


def confusion_plot(item: ItemResult) -> str | None:
    """Expected vs predicted when the task is a labelling task (few short, repeated expected values)."""
    records = item.records
    if not records or not all(_is_label(r.expected) for r in records):
        return None
    labels = sorted({str(r.expected) for r in records})
    if len(labels) > MAX_LABELS or len(records) < 2 * len(labels):
        return None
    columns = list(labels)

    def column(r: Any) -> str:
        if not r.parsed or r.prediction is None:
            return "(unparsed)"
        return str(r.prediction) if str(r.prediction) in labels else "(other)"

    counts = Counter((str(r.expected), column(r)) for r in records)
    columns += [c for c in ("(other)", "(unparsed)") if any(key[1] == c for key in counts)]
    grid = [[counts.get((row, col), 0) for col in columns] for row in labels]
    fig = _figure(1.6 + 0.6 * len(columns), 1.4 + 0.5 * len(labels))
    ax = fig.add_subplot()
    ax.imshow(grid, cmap="Blues")
    peak = max(max(row) for row in grid) or 1
    for y, row in enumerate(grid):
        for x, n in enumerate(row):
            ax.text(x, y, str(n), ha="center", va="center", fontsize=7, color="white" if n > peak / 2 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("prediction", fontsize=8)
    ax.set_ylabel("expected", fontsize=8)
    ax.set_title("confusion matrix", fontsize=8)
    fig.tight_layout()
    return _img(fig, f"{item.item_id}: confusion matrix")


def _numeric_scores(item: ItemResult, name: str) -> list[float] | None:
    values = [r.scores.get(name) for r in item.records]
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    numbers = [v for v in numbers if math.isfinite(v)]
    if len(numbers) < 2 or all(v in (0.0, 1.0) for v in numbers):
        return None  # 0/1 values: the confusion matrix and the bar say it all
    return numbers


def histogram_plots(item: ItemResult) -> list[str]:
    out: list[str] = []
    for m in item.metrics:
        if len(out) >= MAX_HISTOGRAMS:
            break
        numbers = _numeric_scores(item, m.name)
        if numbers is None:
            continue
        fig = _figure(3.0, 2.2)
        ax = fig.add_subplot()
        ax.hist(numbers, bins=20, color=_NOW)
        ax.axvline(sum(numbers) / len(numbers), color="black", linewidth=1, label="mean")
        ax.set_title(f"{m.name}: per-example values", fontsize=8)
        ax.tick_params(labelsize=7)
        fig.tight_layout()
        out.append(_img(fig, f"{item.item_id}: {m.name} distribution"))
    return out


def sweep_plots(items: list[ItemResult]) -> list[tuple[str, str]]:
    """(case label, img) for each case whose items vary a sampling parameter: metric vs parameter."""
    by_case: dict[tuple[str, str], list[ItemResult]] = defaultdict(list)
    for item in items:
        by_case[(item.suite, item.case)].append(item)
    out = []
    for (suite, case), group in by_case.items():
        for param in SWEEP_PARAMS:
            xs = {item.params.get(param) for item in group if isinstance(item.params.get(param), (int, float))}
            if len(xs) < 2:
                continue
            names = [m.name for m in group[0].metrics if m.value is not None][:MAX_SWEEP_METRICS]
            if not names:
                continue
            series: dict[str, list[tuple[float, float, MetricResult]]] = defaultdict(list)
            for item in group:
                x = item.params.get(param)
                if not isinstance(x, (int, float)):
                    continue
                others = [str(item.meta.get("prompt_variant", ""))] + [
                    f"{p}={item.params[p]}" for p in SWEEP_PARAMS if p != param and item.params.get(p) is not None]
                label = ", ".join(o for o in others if o) or case
                for m in item.metrics:
                    if m.name in names and m.value is not None:
                        series[f"{label}\0{m.name}"].append((float(x), m.value, m))
            fig = _figure(3.2 * len(names), 2.6)
            for i, name in enumerate(names):
                ax = fig.add_subplot(1, len(names), i + 1)
                for key, points in series.items():
                    label, metric_name = key.split("\0")
                    if metric_name != name:
                        continue
                    points.sort(key=lambda p: p[0])
                    x = [p[0] for p in points]
                    y = [p[1] for p in points]
                    low, high = zip(*(_whisker(p[2]) for p in points))
                    ax.errorbar(x, y, yerr=[list(low), list(high)], marker="o", capsize=3, linewidth=1, markersize=4, label=label)
                bound = next((m for m in group[0].metrics if m.name == name), None)
                if bound is not None and bound.min is not None:
                    ax.axhline(bound.min, color=_MIN, linestyle="--", linewidth=1)
                if bound is not None and bound.max is not None:
                    ax.axhline(bound.max, color=_MAX, linestyle="--", linewidth=1)
                ax.set_xlabel(param, fontsize=8)
                ax.set_title(f"{name} vs {param}", fontsize=8)
                ax.tick_params(labelsize=7)
                if len({k.split(chr(0))[0] for k in series}) > 1:
                    ax.legend(fontsize=6)
            fig.tight_layout()
            title = f"{suite}/{case}" if suite else case
            out.append((title, _img(fig, f"{title}: metrics vs {param}")))
    return out


def _metric_table(item: ItemResult) -> str:
    rows = []
    for m in item.metrics:
        rows.append(
            f"<tr><td>{escape(m.name)}</td><td class=num>{m.n}</td><td class=num>{escape(value_text(m))}</td>"
            f"<td>{escape(threshold_text(m))}</td><td>{escape(baseline_text(m))}</td><td>{escape(p_text(m))}</td>"
            f"<td class=num>{escape(mde_text(m))}</td>"
            f'<td class="{escape(m.verdict)}">{escape(m.verdict)}</td><td class=reason>{escape(m.reason)}</td></tr>')
    return ("<table><tr><th>metric</th><th>n</th><th>value [95% CI]</th><th>threshold</th><th>vs baseline</th>"
            "<th>p (drop)</th><th>MDE</th><th>verdict</th><th>reason</th></tr>" + "".join(rows) + "</table>")


def _flips_table(item: ItemResult) -> str:
    """The examples whose value changed against the baseline, with both answers."""
    if not item.flipped:
        return ""
    rows = "".join(
        f"<tr><td><code>{_clip(f.get('example_id'), 60)}</code></td><td>{_clip(f.get('metric'), 40)}</td>"
        f"<td>{_clip(f.get('before'), 20)} &rarr; {_clip(f.get('after'), 20)}</td>"
        f"<td>{_clip(f.get('baseline_answer'))}</td><td>{_clip(f.get('answer'))}</td></tr>"
        for f in item.flipped[:MAX_FLIP_ROWS])
    return (f"<details open><summary>{len(item.flipped)} example(s) flipped against the baseline</summary><table>"
            "<tr><th>example</th><th>metric</th><th>before &rarr; after</th><th>baseline answer</th><th>answer</th></tr>"
            f"{rows}</table></details>")


def _clip(value: Any, limit: int = 160) -> str:
    text = "" if value is None else str(value)
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _examples_table(item: ItemResult) -> str:
    """A few examples that went wrong (error, unparsed, or a 0 on a proportion metric)."""
    proportion = [m.name for m in item.metrics if m.kind == "proportion"]
    wrong = [r for r in item.records
             if r.error or not r.parsed or any(r.scores.get(name) == 0 for name in proportion)]
    if not wrong:
        return ""
    rows = "".join(
        f"<tr><td><code>{_clip(r.key, 60)}</code></td><td>{_clip(r.input_excerpt)}</td>"
        f"<td>{_clip(r.expected, 60)}</td><td>{_clip(r.prediction, 60)}</td><td>{_clip(r.answer)}</td>"
        f"<td>{_clip(r.error_kind or r.error, 80)}</td></tr>" for r in wrong[:MAX_EXAMPLE_ROWS])
    return (f"<details><summary>{len(wrong)} example(s) wrong, unparsed or errored (first {min(len(wrong), MAX_EXAMPLE_ROWS)})"
            "</summary><table><tr><th>example</th><th>input</th><th>expected</th><th>prediction</th><th>answer</th>"
            f"<th>error</th></tr>{rows}</table></details>")


def render_html(items: list[ItemResult], run: dict[str, Any]) -> str:
    items = named(items)
    parts = ["<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>evalsuite report</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{escape(summary_line(items))}</h1>"]
    parts.append(f"<p class=meta>record mode {escape(str(run.get('record_mode', '')))} · {escape(packages_text(run))}"
                 + (f" · est. cost ${run['cost_usd']:.4f}" if run.get("cost_usd") is not None else "") + "</p>")
    rows = []
    for item in sort_items(items):
        status = item_status(item)
        rows.append(f'<tr><td><a href="#{escape(item.item_id)}">{escape(item.item_id)}</a></td>'
                    f'<td class="{status}">{outcome_label(status)}</td><td class=num>{item.n_examples}</td>'
                    f"<td class=num>{item.unparsed}</td><td class=num>{item.errors}</td>"
                    f"<td>{escape(', '.join(f'{m.name} {fmt(m.value)}' for m in item.metrics))}</td></tr>")
    parts.append("<table><tr><th>item</th><th>status</th><th>n</th><th>unparsed</th><th>errors</th><th>metrics</th></tr>"
                 + "".join(rows) + "</table>")
    coverage = coverage_lines(run)
    if coverage:
        parts.append("<h2>Baseline coverage</h2><ul>" + "".join(f"<li>{escape(t)}</li>" for t in coverage) + "</ul>")
    sweeps = sweep_plots(items)
    if sweeps:
        parts.append("<h2>Parameter sweeps</h2><div class=plots>")
        parts += [f"<figure>{img}<figcaption>{escape(title)}</figcaption></figure>" for title, img in sweeps]
        parts.append("</div>")
    for item in sort_items(items):
        parts.append(f'<section id="{escape(item.item_id)}"><h2>{escape(item.item_id)} '
                     f'<span class="{item_status(item)}">{outcome_label(item_status(item))}</span></h2>')
        notes = [text for text in (quarantine_text(item), flaky_text(item)) if text]
        parts += [f"<p class=reason>{escape(text)}</p>" for text in notes]
        params = ", ".join(f"{k}={v}" for k, v in item.params.items())
        parts.append(f"<p class=meta>{escape(item.source)} · model {escape(str(item.model.get('name', '')))}"
                     f" · {escape(params)} · dataset {escape(item.dataset_fingerprint)} · {item.n_examples} examples"
                     f" · {item.unparsed} unparsed · {item.errors} errors"
                     + (f" ({escape(error_kinds(item))})" if item.errors else "") + "</p>")
        if item.message:
            parts.append(f"<pre>{escape(item.message)}</pre>")
        parts.append(_metric_table(item))
        plots = [metrics_plot(item), confusion_plot(item), *histogram_plots(item)]
        parts.append("<div class=plots>" + "".join(p for p in plots if p) + "</div>")
        parts.append(_examples_table(item) + _flips_table(item) + "</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
