"""The plain-text table printed at the end of a run and by ``evalsuite compare`` (fits ~120 columns)."""

from __future__ import annotations

import textwrap

from evalsuite.records import ItemResult
from evalsuite.report._common import (baseline_text, error_kinds, repeat_text, sort_items, summary_line, threshold_text,
                                     value_text)

_COLUMNS = (("item", 28), ("n", 6), ("metric", 16), ("value [95% CI]", 24), ("threshold", 12),
            ("vs baseline", 18), ("verdict", 10))


def _row(cells: list[str]) -> str:
    out = []
    for (_, width), cell in zip(_COLUMNS, cells):
        cell = cell if len(cell) <= width else cell[: width - 1] + "~"
        out.append(cell.ljust(width))
    return " ".join(out).rstrip()


def render(items: list[ItemResult], *, reasons: bool = True) -> str:
    """One row per metric, failing items first; then unparsed/error counts and the failing reasons."""
    lines = [summary_line(items), _row([name for name, _ in _COLUMNS]), "-" * 119]
    for item in sort_items(items):
        label = item.item_id
        if not item.metrics:
            lines.append(_row([label, str(item.n_examples), "-", "-", "-", "-", "ERROR" if not item.passed else "pass"]))
        for i, m in enumerate(item.metrics):
            verdict = m.verdict.upper() if m.failed else m.verdict
            lines.append(_row([label if i == 0 else "", str(m.n), m.name, value_text(m), threshold_text(m),
                               baseline_text(m), verdict]))
    noisy = [item for item in items if item.unparsed or item.errors]
    if noisy:
        lines.append("")
        lines.append("unparsed answers / failed calls:")
        for item in noisy:
            kinds = error_kinds(item)
            lines.append(f"  {item.item_id}: {item.unparsed} unparsed, {item.errors} errors" + (f" ({kinds})" if kinds else ""))
    repeats = [text for text in map(repeat_text, items) if text]
    if repeats:
        lines += ["", "repeats (per-example agreement across samples):", *(f"  {t}" for t in repeats)]
    if reasons:
        why: list[str] = []
        for item in sort_items(items):
            texts = [f"{item.item_id} {m.reason}" for m in item.metrics if m.failed]
            if not texts and not item.passed and item.message:
                texts = [f"{item.item_id}: {item.message}"]
            for text in texts:
                why.extend(textwrap.wrap(text, width=118, initial_indent="  ", subsequent_indent="    "))
        if why:
            lines += ["", "why:", *why]
    return "\n".join(lines) + "\n"
