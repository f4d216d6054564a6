"""Report files: ``report.json`` (schema: report.schema.json), ``report.md`` (PR comment / GitHub step
summary) and ``report.html`` (self-contained, with plots).

Reports hold what the records hold. As a last line of defence, every written text is scrubbed of
the values of environment variables that look like credentials, in case one leaked into a prompt,
an answer or an error message.
"""

from __future__ import annotations

import html
import json
import os
import platform
from collections import Counter
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from evalsuite._util.atomic import write_atomic
from evalsuite.verdict.baseline import SCHEMA_VERSION, jsonable
from evalsuite.records import ItemResult
from evalsuite.report.common import (baseline_text, error_kinds, item_status, repeat_text, sort_items, summary, summary_line,
                              threshold_text, value_text)

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
_SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
REDACTED = "[REDACTED]"


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values (>= 8 chars) of env vars whose name contains KEY/TOKEN/SECRET/PASSWORD, longest first."""
    env = os.environ if environ is None else environ
    found = {value for name, value in env.items()
             if len(value) >= 8 and any(marker in name.upper() for marker in _SECRET_MARKERS)}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace credential-looking env values, also in their JSON- and HTML-escaped forms."""
    for value in secret_values(environ):
        for form in {value, json.dumps(value)[1:-1], html.escape(value), json.dumps(value, ensure_ascii=True)[1:-1]}:
            text = text.replace(form, REDACTED)
    return text


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def run_metadata(items: list[ItemResult], run_meta: dict[str, Any]) -> dict[str, Any]:
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


def report_document(items: list[ItemResult], run_meta: dict[str, Any]) -> dict[str, Any]:
    """The report.json content (see report.schema.json)."""
    return jsonable({
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": run_metadata(items, run_meta),
        "summary": summary(items),
        "items": [{**asdict(item), "status": item_status(item)} for item in items],
    })


def _md(text: str) -> str:
    """One Markdown table cell: no HTML, no pipes, no newlines."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """Inline code outside a table (backticks inside are dropped)."""
    return "`" + str(text).replace("`", "'") + "`"


_ICON = {"regression": ":x:", "fail": ":x:", "error": ":warning:", "improved": ":arrow_up:", "pass": ":white_check_mark:"}


def render_markdown(items: list[ItemResult], run: dict[str, Any]) -> str:
    lines = [f"### {_md(summary_line(items))}", "",
             "| | item | n | metric | value [95% CI] | threshold | vs baseline | verdict |",
             "|---|---|--:|---|---|---|---|---|"]
    for item in sort_items(items):
        icon = _ICON[item_status(item)]
        for i, m in enumerate(item.metrics):
            verdict = f"**{m.verdict}**" if m.failed else m.verdict
            lines.append("| " + " | ".join([icon if i == 0 else "", _md(item.item_id) if i == 0 else "", str(m.n),
                                            _md(m.name), _md(value_text(m)), _md(threshold_text(m)),
                                            _md(baseline_text(m)), verdict]) + " |")
        if not item.metrics:
            lines.append(f"| {icon} | {_md(item.item_id)} | {item.n_examples} | | | | | {_md(item_status(item))} |")
    failing = [(item, m) for item in sort_items(items) for m in item.metrics if m.failed]
    if failing:
        lines += ["", "**Regressions and failures**", ""]
        lines += [f"- {_code(item.item_id)} {html.escape(m.reason, quote=False)}" for item, m in failing]
    noisy = [item for item in items if item.unparsed or item.errors]
    if noisy:
        lines += ["", "**Unparsed answers / failed calls**", ""]
        for item in noisy:
            kinds = error_kinds(item)
            lines.append(f"- {_code(item.item_id)}: {item.unparsed} unparsed, {item.errors} errors"
                         + (f" ({html.escape(kinds, quote=False)})" if kinds else ""))
    repeats = [text for text in map(repeat_text, items) if text]
    if repeats:
        lines += ["", "**Repeats** (per-example agreement across samples)", ""]
        lines += [f"- {_md(text)}" for text in repeats]
    packages = ", ".join(f"{k} {v}" for k, v in run["packages"].items() if v)
    lines += ["", f"<sub>record mode {_md(run['record_mode'])} · {_md(packages)}</sub>", ""]
    return "\n".join(lines)


def write_reports(out_dir: Path | str, items: list[ItemResult], run_meta: dict[str, Any]) -> dict[str, Path]:
    """Write report.json, report.md and report.html into ``out_dir``; append report.md to
    ``$GITHUB_STEP_SUMMARY`` when set. Returns the paths by format ("json", "md", "html")."""
    from evalsuite.report.html import render_html  # matplotlib is imported only when writing files

    out_dir = Path(out_dir)
    doc = report_document(items, run_meta)
    markdown = scrub(render_markdown(items, doc["run"]))
    texts = {
        "json": scrub(json.dumps(doc, indent=1, ensure_ascii=False)) + "\n",
        "md": markdown,
        "html": scrub(render_html(items, doc["run"])),
    }
    paths: dict[str, Path] = {}
    for fmt, text in texts.items():
        paths[fmt] = out_dir / f"report.{fmt}"
        write_atomic(paths[fmt], text)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    return paths
