"""report.html: one self-contained page (inline CSS, SVG plots, data and script; no network) that opens from disk
or from a CI artifact.

What the verdict says is static HTML, readable with JavaScript off: the overview of every item with pytest's
outcome and the totals pytest prints, why items failed, parameter sweeps, and per item its metric cards (value,
CI, threshold, baseline, change, p, minimum detectable drop, each with a plot on an axis zoomed to what the gate
compares), confusion matrix, score distributions, worst examples and examples flipped against the baseline.
The script adds overview filters and a per-example browser (rendered prompt, answer, prediction, expected,
scores, error; sortable, filterable, searchable, one page of rows at a time) over compact JSON embedded per
item (``_examples``). All run text is escaped in HTML and set as text by the script.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

from evalsuite.records import ExampleRecord, ItemResult, MetricResult
from evalsuite.report._common import (
    FAILING_OUTCOMES,
    coverage_lines,
    error_kinds,
    flaky_text,
    item_status,
    mde_text,
    named,
    not_run_text,
    outcome_label,
    outcome_of,
    p_text,
    packages_text,
    quarantine_text,
    repeat_text,
    sort_items,
    summary,
    summary_line,
    threshold_text,
)
from evalsuite.report._examples import flip_entries, item_data, script_json, worst_examples
from evalsuite.report._svg import (
    SweepPoint,
    confusion_plot,
    distribution_plot,
    interval_plot,
    numeric_scores,
    sweep_plot,
)
from evalsuite.verdict.format import fmt, fmt_delta

SWEEP_PARAMS = ("temperature", "max_tokens", "top_p")
MAX_SWEEP_METRICS = 4
MAX_DISTRIBUTIONS = 6
WORST_SHOWN = 5
FLAKY_AT = 0.05  # a verdict that flips on one re-run in 20 or more is listed under "flaky"
CELL_CHARS = 300
FILTERS = (("all", "all"), ("failing", "failing"), ("regressed", "regressed"), ("flaky", "flaky / quarantined"),
           ("new", "new"), ("not_recorded", "not recorded"), ("skipped", "skipped"))
_ASSETS = Path(__file__).with_name("assets")


@lru_cache(maxsize=None)
def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def _clip(value: Any, limit: int = CELL_CHARS) -> str:
    text = "" if value is None else str(value)
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _tags(item: ItemResult, new: set[str]) -> list[str]:
    """The overview filters an item belongs to."""
    outcome, status = outcome_of(item), item_status(item)
    tags = []
    if outcome in FAILING_OUTCOMES:
        tags.append("failing")
    if status == "regression":
        tags.append("regressed")
    if item.quarantine or (item.flakiness is not None and item.flakiness >= FLAKY_AT):
        tags.append("flaky")
    if item.identity in new:
        tags.append("new")
    if outcome in ("not_recorded", "skipped"):
        tags.append(outcome)
    return tags


def _badge(status: str) -> str:
    return f'<span class="badge {escape(status)}">{escape(outcome_label(status))}</span>'


def _overview(ordered: list[ItemResult], new: set[str]) -> str:
    counts = {tag: 0 for tag, _ in FILTERS}
    rows = []
    for index, item in enumerate(ordered):
        tags = _tags(item, new)
        for tag in ["all", *tags]:
            counts[tag] += 1
        metrics = ", ".join(f'<span class="{"m-fail" if m.failed else ""}">{escape(m.name)} {escape(fmt(m.value))}</span>'
                            for m in item.metrics) or '<span class="muted">-</span>'
        notes = [text for text, shown in (("quarantined", item.quarantine), ("new", "new" in tags),
                                          (f"flaky {fmt(item.flakiness)}", item.flakiness and item.flakiness >= FLAKY_AT),
                                          (f"{item.unparsed} unparsed", item.unparsed),
                                          (f"{item.errors} call errors", item.errors),
                                          (f"{len(item.flipped)} flipped", item.flipped)) if shown]
        rows.append(
            f'<tr data-tags="{" ".join(tags)}" data-section="item-{index}">'
            f'<td data-label="item"><a href="#item-{index}">{escape(item.item_id)}</a></td>'
            f'<td data-label="verdict">{_badge(item_status(item))}</td>'
            f'<td data-label="pytest">{escape(outcome_label(outcome_of(item)))}</td>'
            f'<td class=num data-label="examples">{item.n_examples:,}</td><td data-label="metrics">{metrics}</td>'
            f'<td data-label="notes">{escape(", ".join(notes))}</td></tr>')
    buttons = "".join(
        f'<button type="button" data-tag="{tag}" aria-pressed="{str(tag == "all").lower()}"'
        f'{" disabled" if not counts[tag] else ""}>{escape(label)} ({counts[tag]})</button>' for tag, label in FILTERS)
    s = summary(ordered)
    totals = summary_line(ordered).removeprefix("evalsuite: ").split(" | ")[0]  # the counts pytest prints
    return ('<section id="overview"><h2>Items</h2>'
            f'<div id="filters" class="filters" role="group" aria-label="show items" hidden>{buttons}'
            '<span id="filter-status" class="muted" aria-live="polite"></span></div>'
            '<div class="scroll"><table class="overview stack"><thead><tr><th>item</th><th>verdict</th><th>pytest</th>'
            '<th class=num>examples</th><th>metrics</th><th>notes</th></tr></thead><tbody>' + "".join(rows) +
            f'</tbody><tfoot><tr><td colspan=6>{escape(totals)} · {s["examples"]:,} examples</td></tr></tfoot>'
            "</table></div></section>")


def _reasons(ordered: list[ItemResult]) -> str:
    """Why each failing item failed, and why items did not run: the answer to "what broke?" without a click."""
    lines = []
    for index, item in enumerate(ordered):
        link = f'<a href="#item-{index}">{escape(item.item_id)}</a>'
        texts = [m.reason for m in item.metrics if m.failed]
        not_run = not_run_text(item)
        if not_run:
            texts = [not_run.removeprefix(f"{item.item_id}: {outcome_label(outcome_of(item))}: ")]  # the badge says it
        elif not texts and outcome_of(item) in FAILING_OUTCOMES:
            texts = [(item.message.strip().splitlines() or ["failed"])[0]]
        lines += [f"<li>{link} {_badge(item_status(item))} {escape(text)}</li>" for text in texts]
    if not lines:
        return ""
    return ('<section id="reasons"><h2>Failures and items not run</h2><ul class="reasons">' + "".join(lines)
            + "</ul></section>")


def _sweeps(items: list[ItemResult]) -> str:
    """Per case whose items vary a sampling parameter: each metric against that parameter, one series per
    combination of whatever else varies (prompt variant, other parameters)."""
    by_case: dict[tuple[str, str], list[ItemResult]] = defaultdict(list)
    for item in items:
        if item.metrics:
            by_case[(item.suite, item.case)].append(item)
    figures = []
    for (suite, case), group in by_case.items():
        varying = [p for p in SWEEP_PARAMS
                   if len({_number(item.params.get(p)) for item in group} - {None}) > 1]
        variants = len({item.meta.get("prompt_variant", "") for item in group}) > 1
        for param in varying:
            names = list(dict.fromkeys(m.name for item in group for m in item.metrics if m.value is not None))
            for name in names[:MAX_SWEEP_METRICS]:
                series: dict[str, list[SweepPoint]] = defaultdict(list)
                for item in group:
                    x = _number(item.params.get(param))
                    metric = next((m for m in item.metrics if m.name == name and m.value is not None), None)
                    if x is None or metric is None:
                        continue
                    others = ([str(item.meta.get("prompt_variant", ""))] if variants else []) + [
                        f"{p}={item.params.get(p)}" for p in varying if p != param]
                    series[", ".join(o for o in others if o) or case].append(SweepPoint(x, metric))
                figure = sweep_plot(f"{suite}/{case}" if suite and suite != case else case, param, name, series)
                if figure:
                    figures.append(figure)
    if not figures:
        return ""
    return '<section id="sweeps"><h2>Parameter sweeps</h2><div class="plots">' + "".join(figures) + "</div></section>"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _card(m: MetricResult) -> str:
    ci = (f"<small>95% CI [{escape(fmt(m.ci_low))}, {escape(fmt(m.ci_high))}]"
          + (f" {escape(m.interval)}" if m.interval else "") + "</small>") if m.ci_low is not None else ""
    facts = [("threshold", threshold_text(m)), ("baseline", fmt(m.baseline) if m.baseline is not None else "-"),
             ("change", fmt_delta(m.delta) if m.delta is not None else "-"), ("p (worse)", p_text(m)),
             ("detectable drop", mde_text(m)), ("examples", f"{m.n:,}" + (f" ({m.n_paired:,} paired)" if m.n_paired else ""))]
    plot = interval_plot(m) or ""
    return (f'<article class="card{" failed" if m.failed else ""}"><header><h3>{escape(m.name)}</h3>{_badge(m.verdict)}'
            f'</header><p class="value">{escape(fmt(m.value))} {ci}</p>{plot}<dl>'
            + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
            + f'</dl><details class="reason"{" open" if m.failed else ""}><summary>how it was judged</summary>'
            f"<p>{escape(m.reason)}</p></details></article>")


def _example_row(r: ExampleRecord, m: MetricResult) -> str:
    score = r.scores.get(m.name)
    value = fmt(score) if isinstance(score, float) else str(score) if isinstance(score, (int, bool)) else "-"
    answer = r.error if r.error and r.answer is None else r.answer
    return (f'<tr><td data-label="example"><code>{_clip(r.key if r.sample else r.example_id, 80)}</code></td>'
            f'<td data-label="input">{_clip(r.input_excerpt)}</td><td data-label="expected">{_clip(r.expected)}</td>'
            f'<td data-label="prediction">{_clip(r.prediction)}</td><td data-label="answer">{_clip(answer)}</td>'
            f'<td class=num data-label="{escape(m.name)}">{escape(value)}</td></tr>')


def _worst(item: ItemResult) -> str:
    failed = next((m for m in item.metrics if m.failed), None)
    if failed is None:
        return ""
    worst = worst_examples(item, failed, WORST_SHOWN)
    if not worst:
        return ""
    return (f'<h3>Worst examples for {escape(failed.name)}</h3><div class="scroll"><table class="worst stack"><thead>'
            f'<tr><th>example</th><th>input</th><th>expected</th><th>prediction</th><th>answer</th>'
            f'<th class=num>{escape(failed.name)}</th></tr></thead><tbody>'
            + "".join(_example_row(r, failed) for r in worst) + "</tbody></table></div>")


def _diff_html(diff: list[tuple[int, str]]) -> str:
    return "".join(escape(text) if op == 0 else f"<{'del' if op < 0 else 'ins'}>{escape(text)}</{'del' if op < 0 else 'ins'}>"
                   for op, text in diff)


def _flips(item: ItemResult) -> str:
    """Examples whose value changed against the baseline, the baseline's answer beside this run's, and their diff."""
    if not item.flipped:
        return ""
    rows = []
    for flip in flip_entries(item):
        rows.append(
            f'<tr><td data-label="example"><code>{_clip(flip["example"], 80)}</code></td>'
            f'<td data-label="change">{_clip(flip["metric"], 40)} {_clip(flip["before"], 20)} &rarr; '
            f'{_clip(flip["after"], 20)}</td><td data-label="baseline answer">{_clip(flip["baseline"])}</td>'
            f'<td data-label="this answer">{_clip(flip["answer"])}</td>'
            f'<td data-label="diff" class="diff">{_diff_html(flip["diff"]) if flip["diff"] else "-"}</td></tr>')
    return (f'<h3>{len(item.flipped)} example(s) flipped against the baseline</h3><div class="scroll">'
            '<table class="flips stack"><thead><tr><th>example</th><th>change</th><th>baseline answer</th>'
            '<th>this answer</th><th>diff</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table></div>")


def _plots(item: ItemResult) -> list[str]:
    """The confusion matrix (labelling tasks) and the distributions of per-example values."""
    figures = [confusion_plot(item.records, "confusion matrix: expected (rows) against predicted (columns); "
                                            "the diagonal is right")]
    for m in item.metrics:
        if len(figures) > MAX_DISTRIBUTIONS:
            break
        figures.append(distribution_plot(m, numeric_scores(item.records, m.name)))
    return [f'<div class="panel">{f}</div>' for f in figures if f]


def _explorer(item: ItemResult, index: int, failing: bool) -> str:
    if not item.records:
        return ""
    return (f'<details class="examples" data-source="data-{index}"{" open" if failing else ""}><summary>All '
            f"{len(item.records):,} example{'s' if len(item.records) != 1 else ''}: prompt, answer, scores "
            '(search, filter, sort)</summary><div class="explorer"><p class="muted">The example browser needs '
            "JavaScript; report.json has every example.</p></div></details>"
            f'<script type="application/json" id="data-{index}">{script_json(item_data(item))}</script>')


def _item(item: ItemResult, index: int) -> str:
    status = item_status(item)
    failing = outcome_of(item) in FAILING_OUTCOMES
    params = ", ".join(f"{k}={v}" for k, v in item.params.items())
    meta = [item.source, f"model {item.model.get('name', '')}", params,
            f"dataset {item.dataset_fingerprint}" if item.dataset_fingerprint else "",
            f"{item.n_examples:,} examples", f"{item.unparsed} unparsed",
            f"{item.errors} call errors" + (f" ({error_kinds(item)})" if error_kinds(item) else ""),
            f"cassette {item.cassette}" if item.cassette else ""]
    parts = [f'<section class="item" id="item-{index}"><h2><span>{escape(item.item_id)}</span>{_badge(status)}'
             f'<span class="meta">pytest: {escape(outcome_label(outcome_of(item)))}</span></h2>',
             f'<p class="meta">{escape(" · ".join(m for m in meta if m))}</p>']
    parts += [f'<p class="note">{escape(text)}</p>'
              for text in (quarantine_text(item), flaky_text(item), repeat_text(item)) if text]
    if item.message:
        parts.append(f"<details{' open' if failing else ''}><summary>pytest's message</summary>"
                     f"<pre>{escape(item.message)}</pre></details>")
    panels = [_card(m) for m in item.metrics] + _plots(item)
    if panels:
        parts.append('<div class="panels">' + "".join(panels) + "</div>")
    parts += [_worst(item), _flips(item), _explorer(item, index, failing), "</section>"]
    return "".join(parts)


def render_html(items: list[ItemResult], run: dict[str, Any]) -> str:
    items = named(items)
    ordered = sort_items(items)
    new = set((run.get("coverage") or {}).get("new", []))
    s = summary(items)
    title = f"evalsuite: {s['failed']} failed, {s['passed']} passed" if items else "evalsuite: no items"
    parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
             '<meta name="viewport" content="width=device-width,initial-scale=1">'
             f"<title>{escape(title)}</title><style>{_asset('report.css')}</style></head><body><main>",
             f'<header><h1>evalsuite report</h1><p class="headline {"failed" if s["failed"] else "passed"}">'
             f"{escape(summary_line(items))}</p>",
             f'<p class="meta">record mode {escape(str(run.get("record_mode", "")))} · {escape(packages_text(run))}'
             + (f" · est. cost ${run['cost_usd']:.4f}" if run.get("cost_usd") is not None else "") + "</p></header>",
             _overview(ordered, new), _reasons(ordered)]
    coverage = coverage_lines(run)
    if coverage:
        parts.append('<section id="coverage"><h2>Baseline coverage</h2><ul class="reasons">'
                     + "".join(f"<li>{escape(t)}</li>" for t in coverage) + "</ul></section>")
    parts.append(_sweeps(items))
    parts += [_item(item, index) for index, item in enumerate(ordered)]
    parts.append(f'<footer>evalsuite report · {escape(packages_text(run))}</footer></main>'
                 f"<script>{_asset('report.js')}</script></body></html>\n")
    return "".join(parts)
