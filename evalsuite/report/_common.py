"""What every format shows the same way: item status and order, the summary, run metadata, table cells.

Every selected item is listed, run or not (not recorded, an error, skipped, quarantined), so the counts
equal pytest's. Answers and inputs are cut to ``MAX_TEXT_CHARS`` in every report file: a 20 MB answer
must not make a 20 MB report, and the full text stays in the cassette.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from importlib import metadata
from typing import Any

from evalsuite.records import ItemResult, MetricResult
from evalsuite.verdict import agreement
from evalsuite.verdict.format import fmt, fmt_delta, fmt_p

_RANK = {"regression": 0, "fail": 1, "error": 2, "not_recorded": 3, "xfailed": 4, "xpassed": 5, "improved": 6,
         "pass": 7, "skipped": 8}
# pytest's outcomes, in the order the summary line lists them; the first three fail the run.
OUTCOMES = ("passed", "failed", "not_recorded", "error", "skipped", "xfailed", "xpassed")
FAILING_OUTCOMES = ("failed", "not_recorded", "error")
MAX_TEXT_CHARS = 4000  # per answer / input excerpt in report files; the cassette keeps the whole text


def outcome_of(item: ItemResult) -> str:
    """pytest's outcome for the item; a result without one (an older report.json) is passed or failed by its verdict."""
    if item.outcome == "passed" and not item.passed:
        return "failed"
    return item.outcome if item.outcome in OUTCOMES else "error"


def outcome_label(outcome: str) -> str:
    """``not_recorded`` -> ``not recorded``: how an outcome reads in tables and the summary line."""
    return outcome.replace("_", " ")


def item_status(item: ItemResult) -> str:
    """The worst verdict among an item's metrics; the outcome itself for an item not run to a verdict or quarantined;
    "error" when the item itself failed otherwise."""
    outcome = outcome_of(item)
    incomplete = outcome == "error" and (not item.metrics or item.meta.get("not_run"))  # not_run: the spend guard's
    if outcome in ("not_recorded", "skipped", "xfailed", "xpassed") or incomplete:
        return outcome
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
    """Counts for the headline; ``passed`` and ``failed`` (failed + not recorded + error) are pytest's counts."""
    statuses = Counter(item_status(item) for item in items)
    outcomes = Counter(outcome_of(item) for item in items)
    costs = [item.cost_usd for item in items if item.cost_usd is not None]
    return {
        "items": len(items),
        "passed": outcomes["passed"],
        "failed": sum(outcomes[o] for o in FAILING_OUTCOMES),
        "outcomes": {o: outcomes[o] for o in OUTCOMES},
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
    if not any(record.sample for record in item.records):  # one sample per example: nothing to agree on
        return None
    repeats = agreement((record.example_id, record.prediction) for record in item.records)
    if repeats.samples < 2:
        return None
    shown = f"agreement {fmt(item.agreement)}" if item.agreement is not None else "agreement -"
    return (f"{item.item_id}: {repeats.samples} samples per example, {shown}; "
            f"{repeats.split} of {repeats.examples} examples not unanimous")


def summary_line(items: list[ItemResult]) -> str:
    """``evalsuite: 6 items: 3 passed, 1 failed, 1 not recorded, 1 error, 1 skipped | 24 examples | ...``."""
    s = summary(items)
    outcomes = s["outcomes"]
    parts = [f"{s['items']} item{'s' if s['items'] != 1 else ''}: {outcomes['passed']} passed, "
             f"{outcomes['failed']} failed"]
    if s["regressions"]:
        parts[0] += f" ({s['regressions']} regression{'s' if s['regressions'] != 1 else ''})"
    for outcome in OUTCOMES[2:]:
        if outcomes[outcome]:
            plural = "s" if outcome == "error" and outcomes[outcome] != 1 else ""
            parts[0] += f", {outcomes[outcome]} {outcome_label(outcome)}{plural}" + (
                " (quarantined)" if outcome == "xfailed" else "")
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


def clip(text: Any, limit: int = MAX_TEXT_CHARS) -> Any:
    """``text`` cut to ``limit`` characters with a marker saying how much was cut (each string of a list: a
    reference list, a label pair); anything else unchanged."""
    if isinstance(text, list):
        return [clip(part, limit) for part in text]
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit:,} of {len(text):,} characters cut; the full text is in the cassette]"


def named(items: list[ItemResult]) -> list[ItemResult]:
    """The items as text reports name them: by item id, or by identity (``suite::item_id``) where two suites
    share an item id, so that their rows can be told apart. report.json keeps both fields as they are."""
    suites: dict[str, set[str]] = {}
    for item in items:
        suites.setdefault(item.item_id, set()).add(item.suite)
    return [replace(item, item_id=item.identity) if len(suites[item.item_id]) > 1 else item for item in items]


def clipped(item: ItemResult, scrub: Callable[[Any], Any] = lambda value: value) -> ItemResult:
    """A copy of ``item`` whose answers, inputs, prompts, predictions, references, per-example scores (a label metric
    keeps the prediction) and errors fit in a report (``MAX_TEXT_CHARS`` each; the prompt's shared start 5 times that).

    ``scrub`` (``Scrubber.structure``) runs on each value before it is cut: a cut inside a secret, or a word diff
    through one, would leave pieces no scrub of the written page can recognise."""
    def cut(value: Any, limit: int = MAX_TEXT_CHARS) -> Any:
        return clip(scrub(value), limit)

    records = [replace(r, answer=cut(r.answer), input_excerpt=cut(r.input_excerpt), expected=cut(r.expected),
                       prediction=cut(r.prediction), error=cut(r.error), prompt=cut(r.prompt),
                       scores={name: cut(value) for name, value in r.scores.items()}) for r in item.records]
    flipped = [{k: cut(v) for k, v in flip.items()} for flip in item.flipped]
    metrics = [replace(m, reason=scrub(m.reason), definition=scrub(m.definition)) for m in item.metrics]
    return replace(item, records=records, flipped=flipped, metrics=metrics, message=cut(item.message),
                   meta=scrub(item.meta), prompt_prefix=cut(item.prompt_prefix, 5 * MAX_TEXT_CHARS))


def not_run_text(item: ItemResult) -> str | None:
    """``sentiment[terse]: not recorded: 8 call(s) not recorded in ...``: why an item has no verdict (None if it has)."""
    outcome = outcome_of(item)
    if (item.metrics and not item.meta.get("not_run")) or outcome not in ("not_recorded", "error", "skipped", "xfailed",
                                                                          "xpassed"):
        return None
    reason = (item.message.strip().splitlines() or ["no reason given"])[0].removeprefix(f"{item.item_id}: ")
    return f"{item.item_id}: {outcome_label(outcome)}: {reason}"


def quarantine_text(item: ItemResult) -> str | None:
    """``sentiment[terse] quarantined (xfailed): flaky at t0.7; owner alice, until 2027-01-31``."""
    entry = item.quarantine
    if not entry:
        return None
    return (f"{item.item_id} quarantined ({outcome_label(outcome_of(item))}): {entry.get('reason', '')}; "
            f"owner {entry.get('owner', '-')}, until {entry.get('expires', '-')}")


def p_text(m: MetricResult) -> str:
    """The one-sided p for a drop with the method that gave it: ``p=0.062 exact``, ``p=0.059 ±0.005 Monte Carlo``."""
    if m.p_value is None:
        return "-"
    method = m.p_method
    if method == "monte-carlo":
        se = m.p_mc_se
        return f"{fmt_p(m.p_value)}" + (f" ±{se:.1g}" if se else "") + " Monte Carlo"
    return f"{fmt_p(m.p_value)} {method}".rstrip()


def mde_text(m: MetricResult) -> str:
    """The minimum detectable drop at this n (80% power): ``-`` when unknown."""
    mde = m.mde
    return "-" if mde is None else fmt(mde)


def flaky_text(item: ItemResult) -> str | None:
    """``sentiment[t0.7]: verdict flips on a re-run with probability 0.31; examples that vary most r3, r7``."""
    flakiness = item.flakiness
    if flakiness is None:
        return None
    examples = item.flaky_examples
    shown = f"; examples that vary most {', '.join(examples[:5])}" if examples else ""
    return f"{item.item_id}: verdict flips on a re-run with probability {fmt(flakiness)}{shown}"


def flip_text(flip: dict[str, Any], answer_chars: int | None = None) -> str:
    """``r3 accuracy 1 -> 0: 'Positive' -> 'Negative'`` (answers cut to ``answer_chars`` when given)."""
    def answer(key: str) -> str:
        text = flip.get(key)
        if text is None:
            return "-"
        text = str(text)
        return repr(text if answer_chars is None or len(text) <= answer_chars else text[:answer_chars] + "…")

    return (f"{flip.get('example_id')} {flip.get('metric')} {fmt_value(flip.get('before'))} -> "
            f"{fmt_value(flip.get('after'))}: {answer('baseline_answer')} -> {answer('answer')}")


def fmt_value(value: Any) -> str:
    return fmt(value) if isinstance(value, float) else str(value)


def coverage_lines(run: dict[str, Any]) -> list[str]:
    """The baseline coverage lines the session printed (``run["coverage"]["lines"]``), for report.md and report.html."""
    return list((run.get("coverage") or {}).get("lines", []))
