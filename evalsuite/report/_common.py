"""What every format shows the same way: item status and order, the summary, run metadata, table cells."""

from __future__ import annotations

import platform
from collections import Counter
from importlib import metadata
from typing import Any

from evalsuite.records import ItemResult, MetricResult
from evalsuite.verdict import agreement
from evalsuite.verdict.format import fmt, fmt_delta, fmt_p

_RANK = {"regression": 0, "fail": 1, "error": 2, "improved": 3, "pass": 4}


def item_status(item: ItemResult) -> str:
    """The worst verdict among an item's metrics; "error" when the item itself failed otherwise."""
    verdicts = {m.verdict for m in item.metrics}
    for status in ("regression", "fail", "error"):
        if status in verdicts:
            return status
    if not item.passed:
        return "error"
    return "improved" if "improved" in verdicts else "pass"


def sort_items(items: list[ItemResult]) -> list[ItemResult]:
    """Regressions first, then failures, errors, improvements, passes; stable within a group."""
    return sorted(items, key=lambda item: _RANK[item_status(item)])


def summary(items: list[ItemResult]) -> dict[str, Any]:
    statuses = Counter(item_status(item) for item in items)
    costs = [item.cost_usd for item in items if item.cost_usd is not None]
    return {
        "items": len(items),
        "passed": sum(1 for item in items if item_status(item) in ("pass", "improved")),
        "failed": statuses["fail"] + statuses["error"] + statuses["regression"],
        "regressions": statuses["regression"],
        "improved": statuses["improved"],
        "examples": sum(item.n_examples for item in items),
        "unparsed": sum(item.unparsed for item in items),
        "errors": sum(item.errors for item in items),
        "cost_usd": round(sum(costs), 6) if costs else None,
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def run_metadata(items: list[ItemResult], run_meta: dict[str, Any]) -> dict[str, Any]:
    """report.json's ``run``: models, package versions, cost, tokens; ``run_meta`` (from the runner) wins."""
    models: list[dict[str, Any]] = []
    for item in items:
        if item.model not in models:
            models.append(item.model)
    tokens: Counter[str] = Counter()
    for item in items:
        tokens.update(item.tokens)
    costs = [item.cost_usd for item in items if item.cost_usd is not None]
    run = {
        "record_mode": ",".join(sorted({item.record_mode for item in items})),
        "models": models,
        "packages": {"evalsuite": _version("evalsuite"), "openai": _version("openai"), "vcrpy": _version("vcrpy"),
                     "python": platform.python_version()},
        "cost_usd": round(sum(costs), 6) if costs else None,
        "tokens": dict(tokens),
        "wall_s": round(sum(item.wall_s for item in items), 3),
    }
    run.update(run_meta)  # the runner knows better (e.g. the record mode it was asked for)
    return run


def repeat_text(item: ItemResult) -> str | None:
    """Nondeterminism across repeats: the runner's agreement, and how many examples were not unanimous."""
    repeats = agreement((record.example_id, record.prediction) for record in item.records)
    if repeats.samples < 2:
        return None
    shown = f"agreement {fmt(item.agreement)}" if item.agreement is not None else "agreement -"
    return (f"{item.item_id}: {repeats.samples} samples per example, {shown}; "
            f"{repeats.split} of {repeats.examples} examples not unanimous")


def summary_line(items: list[ItemResult]) -> str:
    s = summary(items)
    parts = [f"{s['items']} items: {s['passed']} passed, {s['failed']} failed"]
    if s["regressions"]:
        parts[0] += f" ({s['regressions']} regression{'s' if s['regressions'] != 1 else ''})"
    if s["improved"]:
        parts[0] += f", {s['improved']} improved"
    parts += [f"{s['examples']:,} examples", f"{s['unparsed']} unparsed", f"{s['errors']} errors"]
    if s["cost_usd"] is not None:
        parts.append(f"est. cost ${s['cost_usd']:.4f}")
    return "evalsuite: " + " | ".join(parts)


def value_text(m: MetricResult) -> str:
    if m.value is None:
        return "-"
    if m.ci_low is None or m.ci_high is None:
        return fmt(m.value)
    return f"{fmt(m.value)} [{fmt(m.ci_low)}, {fmt(m.ci_high)}]"


def threshold_text(m: MetricResult) -> str:
    if m.min is not None and m.max is not None:
        return f"{fmt(m.min)}..{fmt(m.max)}"
    if m.min is not None:
        return f">= {fmt(m.min)}"
    if m.max is not None:
        return f"<= {fmt(m.max)}"
    return "-"


def baseline_text(m: MetricResult) -> str:
    """``-0.031 p<0.001`` against the baseline; "no match" when a baseline existed but nothing paired."""
    if m.delta is None:
        return "no match" if m.test == "" and "no baseline comparison" in m.reason else "-"
    return f"{fmt_delta(m.delta)} {fmt_p(m.p_value)}"


def error_kinds(item: ItemResult) -> str:
    kinds = Counter(r.error_kind or "other" for r in item.records if r.error)
    return ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())


def packages_text(run: dict[str, Any]) -> str:
    """``evalsuite 0.4.0, openai 1.2.3, ...`` for the footers of report.md and report.html."""
    return ", ".join(f"{k} {v}" for k, v in run.get("packages", {}).items() if v)
