"""report.md: the table and the reasons for a PR comment or the GitHub step summary.

Failing items come first, with why; passing items are folded in a ``<details>`` block (a PR comment stays short
when all is well); items that did not run (skipped, not recorded, an error) are listed with their reason.
"""

from __future__ import annotations

import html
from typing import Any

from evalsuite.records import ItemResult
from evalsuite.report._common import (
    FAILING_OUTCOMES,
    baseline_text,
    coverage_lines,
    error_kinds,
    flaky_text,
    flip_text,
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
    summary_line,
    threshold_text,
    value_text,
)

_ICON = {"regression": ":x:", "fail": ":x:", "error": ":warning:", "improved": ":arrow_up:", "pass": ":white_check_mark:",
         "not_recorded": ":x:", "skipped": ":fast_forward:", "xfailed": ":construction:", "xpassed": ":construction:"}
FLIPS_SHOWN = 20  # per item; report.json lists them all


def _md(text: str) -> str:
    """One Markdown table cell: no HTML, no pipes, no newlines."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """Inline code outside a table (backticks inside are dropped)."""
    return "`" + str(text).replace("`", "'") + "`"


def _notes(items: list[ItemResult], run: dict[str, Any]) -> list[str]:
    """Items without a verdict, quarantines, flakiness, flipped examples and baseline coverage."""
    lines: list[str] = []
    sections = [("**Not run**", [t for t in map(not_run_text, sort_items(items)) if t]),
                ("**Quarantined** (failures expected; see quarantine.yaml)", [t for t in map(quarantine_text, items) if t]),
                ("**Verdict stability** (from repeats)", [t for t in map(flaky_text, items) if t]),
                ("**Baseline coverage**", coverage_lines(run))]
    for title, texts in sections:
        if texts:
            lines += ["", title, ""] + [f"- {_md(text)}" for text in texts]
    for item in (item for item in items if item.flipped):
        lines += ["", f"**Flipped against the baseline: {_code(item.item_id)}** ({len(item.flipped)})", ""]
        lines += [f"- {_md(flip_text(flip, answer_chars=200))}" for flip in item.flipped[:FLIPS_SHOWN]]
    return lines


_HEAD = ["| | item | n | metric | value [95% CI] | threshold | vs baseline | p (drop) | MDE | verdict |",
         "|---|---|--:|---|---|---|---|---|--:|---|"]


def _rows(items: list[ItemResult]) -> list[str]:
    lines = []
    for item in items:
        icon = _ICON[item_status(item)]
        label = item.item_id + (" (quarantined)" if item.quarantine else "")
        for i, m in enumerate(item.metrics):
            verdict = f"**{m.verdict}**" if m.failed else m.verdict
            lines.append("| " + " | ".join([icon if i == 0 else "", _md(label) if i == 0 else "", str(m.n),
                                            _md(m.name), _md(value_text(m)), _md(threshold_text(m)),
                                            _md(baseline_text(m)), _md(p_text(m)), _md(mde_text(m)), verdict]) + " |")
        if not item.metrics:
            status = _md(outcome_label(item_status(item)))
            lines.append(f"| {icon} | {_md(label)} | {item.n_examples} | | | | | | | **{status}** |")
    return lines


def render_markdown(items: list[ItemResult], run: dict[str, Any]) -> str:
    items = named(items)
    ordered = sort_items(items)
    failing = [item for item in ordered if outcome_of(item) in FAILING_OUTCOMES]
    passing = [item for item in ordered if outcome_of(item) in ("passed", "xfailed", "xpassed")]
    lines = [f"### {_md(summary_line(items))}"]
    if failing:
        lines += ["", *_HEAD, *_rows(failing)]
    reasons = [(item, m) for item in failing for m in item.metrics if m.failed]
    if reasons:
        lines += ["", "**Regressions and failures**", ""]
        lines += [f"- {_code(item.item_id)} {html.escape(m.reason, quote=False)}" for item, m in reasons]
    noisy = [item for item in ordered if item.unparsed or item.errors]
    if noisy:
        lines += ["", "**Unparsed answers / failed calls**", ""]
        for item in noisy:
            kinds = error_kinds(item)
            lines.append(f"- {_code(item.item_id)}: {item.unparsed} unparsed, {item.errors} errors"
                         + (f" ({html.escape(kinds, quote=False)})" if kinds else ""))
    lines += _notes(items, run)
    repeats = [text for text in map(repeat_text, items) if text]
    if repeats:
        lines += ["", "**Repeats** (per-example agreement across samples)", ""]
        lines += [f"- {_md(text)}" for text in repeats]
    if passing:
        quarantined = sum(1 for item in passing if outcome_of(item) != "passed")
        what = f"{len(passing)} passing item{'s' if len(passing) != 1 else ''}" + (
            f" ({quarantined} quarantined)" if quarantined else "")
        lines += ["", f"<details><summary>{what}</summary>", "", *_HEAD, *_rows(passing), "", "</details>"]
    lines += ["", f"<sub>record mode {_md(run['record_mode'])} · {_md(packages_text(run))}</sub>", ""]
    return "\n".join(lines)
