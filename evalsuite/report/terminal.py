"""The plain-text table printed at the end of a run and by ``evalsuite compare``: fits the terminal, verdicts in colour.

Columns take the width their cells need. When a row is wider than the terminal, each item moves to a line of
its own above its metrics; if that is still too wide, the longest cells (metric, value, threshold, baseline)
wrap inside their column, so no line is longer than ``width`` (down to about 50 columns). Colour comes from
the caller's ``markup`` (pytest's ``TerminalWriter.markup``, which honours ``--color`` and ``NO_COLOR``);
without one, plain text.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from evalsuite.records import ItemResult
from evalsuite.report._common import (
    FAILING_OUTCOMES,
    baseline_text,
    error_kinds,
    flaky_text,
    flip_text,
    named,
    not_run_text,
    outcome_label,
    outcome_of,
    quarantine_text,
    repeat_text,
    sort_items,
    summary,
    summary_line,
    threshold_text,
    value_text,
)


class Markup(Protocol):
    """``markup(text, green=True)``: the text with those styles, or unchanged where colour is off."""

    def __call__(self, text: str, **styles: bool) -> str: ...


def _plain(text: str, **styles: bool) -> str:
    return text


_STYLES: dict[str, dict[str, bool]] = {
    "pass": {"green": True}, "unchanged": {"green": True}, "improved": {"green": True, "bold": True},
    "fail": {"red": True}, "error": {"red": True}, "regression": {"red": True, "bold": True},
    "no match": {"yellow": True},  # a baseline existed but no example paired with it
    "not recorded": {"red": True}, "skipped": {"yellow": True}, "xfailed": {"yellow": True}, "xpassed": {"yellow": True},
}
FLIPS_SHOWN = 3
_HEAD = ("n", "metric", "value [95% CI]", "threshold", "vs baseline", "verdict")
_WRAPPABLE = (1, 2, 3, 4)  # metric, value, threshold, baseline: the columns that wrap when space runs out
_MIN_WRAP = 6
_GAP = "  "
_INDENT = "  "  # metric rows under an item line of their own


@dataclass
class _Item:
    label: str
    rows: list[tuple[str, ...]] = field(default_factory=list)  # cells in _HEAD order


def _items(items: list[ItemResult]) -> list[_Item]:
    out = []
    for item in sort_items(items):
        entry = _Item(item.item_id + (" (quarantined)" if item.quarantine else ""))
        if not item.metrics:
            outcome = outcome_of(item)
            label = outcome_label(outcome)
            entry.rows.append((str(item.n_examples) if item.records else "-", "-", "-", "-", "-",
                               label.upper() if outcome in FAILING_OUTCOMES else label))
        for m in item.metrics:
            entry.rows.append((str(m.n), m.name, value_text(m), threshold_text(m), baseline_text(m),
                               m.verdict.upper() if m.failed else m.verdict))
        out.append(entry)
    return out


def _widths(rows: Sequence[Sequence[str]], head: Sequence[str]) -> list[int]:
    return [max(len(cell) for cell in column) for column in zip(head, *rows)]


def _span(widths: Sequence[int]) -> int:
    return sum(widths) + len(_GAP) * (len(widths) - 1)


def _fit(widths: list[int], rows: Sequence[Sequence[str]], room: int) -> list[int]:
    """Narrow the widest wrappable column until the row fits in ``room``: words are broken only if must be."""
    longest_word = [max(len(word) for row in [_HEAD, *rows] for word in row[i].split()) for i in range(len(widths))]
    for floor in (longest_word, [_MIN_WRAP] * len(widths)):
        while _span(widths) > room:
            narrowable = [i for i in _WRAPPABLE if widths[i] > max(floor[i], _MIN_WRAP)]
            if not narrowable:
                break  # a terminal this narrow gets the narrowest table
            widths[max(narrowable, key=lambda i: widths[i])] -= 1
    return widths


def _lines(cells: Sequence[str], widths: Sequence[int], markup: Markup, indent: str = "") -> list[str]:
    """One table row, as many lines as its tallest wrapped cell; verdict and baseline cells in colour."""
    wrapped = [(textwrap.wrap(cell, width, break_on_hyphens=False) or [""]) if len(cell) > width else [cell]
               for cell, width in zip(cells, widths)]
    styles: list[dict[str, bool]] = [{}] * (len(cells) - 2)
    styles += [_STYLES.get(cells[-2], {}), _STYLES.get(cells[-1].lower(), {})]  # baseline, verdict
    lines = []
    for depth in range(max(len(parts) for parts in wrapped)):
        out = []
        for parts, width, style in zip(wrapped, widths, styles):
            text = parts[depth] if depth < len(parts) else ""
            out.append((markup(text, **style) if text and style else text) + " " * (width - len(text)))
        lines.append((indent + _GAP.join(out)).rstrip())
    return lines


def _table(entries: list[_Item], width: int, markup: Markup) -> list[str]:
    rows = [row for entry in entries for row in entry.rows]
    labels = [entry.label for entry in entries]
    inline = [max(len(label) for label in ["item", *labels]), *_widths(rows, _HEAD)]
    if _span(inline) <= width:  # the item in a column of its own, beside its first metric
        lines = [_GAP.join(h.ljust(w) for h, w in zip(("item", *_HEAD), inline)).rstrip(), "-" * _span(inline)]
        for entry in entries:
            for i, row in enumerate(entry.rows):
                lines += _lines((entry.label if i == 0 else "", *row), inline, markup)
        return lines
    widths = _fit(_widths(rows, _HEAD), rows, width - len(_INDENT))  # each item on a line of its own
    span = len(_INDENT) + _span(widths)
    lines = [*_lines(_HEAD, widths, markup, _INDENT), "-" * min(span, width)]
    for entry in entries:
        lines += [markup(line, bold=True) for line in textwrap.wrap(entry.label, width, break_on_hyphens=False)]
        for row in entry.rows:
            lines += _lines(row, widths, markup, _INDENT)
    return lines


def _summary(items: list[ItemResult], width: int) -> list[str]:
    """The summary line, broken between its ``|`` parts when it is wider than ``width``."""
    lines: list[str] = []
    for part in summary_line(items).split(" | "):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " | " + part
        else:
            lines += textwrap.wrap(part, width, initial_indent="  " if lines else "", subsequent_indent="  ")
    return lines


def _wrap(text: str, width: int, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False)


def _notes(items: list[ItemResult], width: int, markup: Markup) -> list[str]:
    """Items without a verdict and why, quarantines, measured flakiness, and examples that flipped."""
    lines: list[str] = []
    sections = [("not run:", [text for text in map(not_run_text, sort_items(items)) if text]),
                ("quarantined (failures expected, see quarantine.yaml):", [t for t in map(quarantine_text, items) if t]),
                ("verdict stability (from repeats):", [text for text in map(flaky_text, items) if text])]
    for title, texts in sections:
        if texts:
            lines += ["", markup(title, yellow=True)]
            for text in texts:
                lines += _wrap(text, width)
    flipped = [item for item in items if item.flipped]
    if flipped:
        lines += ["", "flipped against the baseline:"]
        for item in flipped:
            lines += _wrap(f"{item.item_id}: {len(item.flipped)} example(s) flipped", width)
            for flip in item.flipped[:FLIPS_SHOWN]:
                lines += _wrap(flip_text(flip, answer_chars=40), width, indent="    ")
    return lines


def render(items: list[ItemResult], *, reasons: bool = True, width: int | None = None,
           markup: Markup | None = None) -> str:
    """One row per metric, failing items first; then unparsed/error counts and (``reasons``) why items failed.

    ``width``: the terminal's (default: ``shutil.get_terminal_size()``); ``markup``: colours (default none).
    pytest passes ``reasons=False`` when its failure section already shows every reason.
    """
    width = width or shutil.get_terminal_size().columns
    markup = markup or _plain
    items = named(items)
    failed = summary(items)["failed"] > 0
    lines = [markup(line, red=failed, green=not failed) for line in _summary(items, width)]
    lines += _table(_items(items), width, markup) if items else []
    noisy = [item for item in items if item.unparsed or item.errors]
    if noisy:
        lines += ["", markup("unparsed answers / failed calls:", yellow=True)]
        for item in noisy:
            kinds = error_kinds(item)
            text = f"{item.item_id}: {item.unparsed} unparsed, {item.errors} errors" + (f" ({kinds})" if kinds else "")
            lines += _wrap(text, width)
    repeats = [text for text in map(repeat_text, items) if text]
    if repeats:
        lines += ["", "repeats (per-example agreement across samples):"]
        for text in repeats:
            lines += _wrap(text, width)
    lines += _notes(items, width, markup)
    if reasons:
        why: list[str] = []
        for item in sort_items(items):
            texts = [f"{item.item_id} {m.reason}" for m in item.metrics if m.failed]
            if not texts and not item.passed and item.message and not_run_text(item) is None:  # those: "not run"
                texts = [f"{item.item_id}: {item.message}"]
            for text in texts:
                why += _wrap(text, width)
        if why:
            lines += ["", "why:", *why]
    return "\n".join(lines) + "\n"
