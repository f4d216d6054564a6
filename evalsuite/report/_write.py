"""Writing the report files: one renderer per format, one scrub, one atomic write each.

Reports hold what the records hold, with each answer and input cut to ``_common.MAX_TEXT_CHARS`` (the
cassette keeps the whole text). As a last line of defence every written text is scrubbed of the
environment's secrets and the user's ``eval_redact`` list (the one rule in ``_util/secrets``), in every
written form (as is, JSON-, HTML- or URL-encoded, base64), in case one leaked into a prompt, an answer
or an error message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evalsuite._util.atomic import write_atomic, write_failure
from evalsuite._util.secrets import Scrubber
from evalsuite.records import ItemResult
from evalsuite.report._common import clipped, run_metadata
from evalsuite.report.html import render_html
from evalsuite.report.json import render_json
from evalsuite.report.markdown import render_markdown

# Format -> renderer of (items, run metadata); each writes report.<format>.
WRITERS: dict[str, Callable[[list[ItemResult], dict[str, Any]], str]] = {
    "json": render_json,
    "md": render_markdown,
    "html": render_html,
}


def write_reports(
    out_dir: Path | str, items: list[ItemResult], run_meta: dict[str, Any], *, redact: Sequence[str] = ()
) -> dict[str, Path]:
    """Write report.json, report.md and report.html into ``out_dir``; append report.md to
    ``$GITHUB_STEP_SUMMARY`` when set. Returns the paths by format ("json", "md", "html").
    ``redact``: the ``eval_redact`` lines."""
    out_dir = Path(out_dir)
    scrubber = Scrubber(redact=redact)
    items = [clipped(item, scrubber.structure if scrubber else _as_is) for item in items]
    run = scrubber.structure(run_metadata(items, run_meta))
    paths: dict[str, Path] = {}
    summary = ""
    for fmt, render in WRITERS.items():  # one text at a time: a 25k-example report.json is 37 MB
        text = scrubber.known(render(items, run))  # the backstop: the user's patterns ran on the values above
        paths[fmt] = out_dir / f"report.{fmt}"
        write_atomic(paths[fmt], text)
        summary = text if fmt == "md" else summary
        del text
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(summary + "\n")
        except OSError as exc:
            raise write_failure(Path(step_summary), exc, "GitHub step summary") from None
    return paths


def _as_is(value: Any) -> Any:
    return value
