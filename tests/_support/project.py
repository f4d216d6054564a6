"""A user project for end-to-end plugin tests: a sentiment case file, its dataset, and pytest run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

CANARY = "sk-canary-0123456789abcdef"  # a key that must never reach a cassette or a report

REVIEWS = [
    ("r1", "A great film, I love it", 1),
    ("r2", "Awful and boring, the worst", 0),
    ("r3", "Excellent acting and a wonderful score", 1),
    ("r4", "Terrible plot, bad jokes", 0),
    ("r5", "The best movie this year, great fun", 1),
    ("r6", "I hate how boring it was", 0),
    ("r7", "Good but a bit long", 1),
    ("r8", "Bad sound and awful pacing", 0),
]

SENTIMENT_CASE = """
suite: reviews
cases:
  - id: sentiment
    tags: [sentiment, smoke]
    model: {{name: test-model, temperature: 0, max_tokens: 3{provider}}}
    dataset: {{path: data/reviews.jsonl, label_names: [negative, positive], expected: label}}
    prompt:
      system: Classify the sentiment of the review as positive or negative.
      user: "Review: {{{{ text }}}}"
    variants:
      prompts:
        plain: {{}}
        terse: {{system: "Sentiment? positive/negative."}}
      matrix: {{temperature: [0, 0.7]}}
    parse:
      kind: label
      labels: {{positive: [positive, pos], negative: [negative, neg]}}
    metrics:
      accuracy: {{min: {min_accuracy}}}
      f1: {{average: macro, min: {min_f1}}}
"""
SENTIMENT_ITEMS = {"sentiment[plain-t0]", "sentiment[plain-t0.7]", "sentiment[terse-t0]", "sentiment[terse-t0.7]"}


def make_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytest.ini, the sentiment case file (4 items) and its 8-row dataset."""
    pytester.makeini("[pytest]\n")
    data = pytester.path / "cases" / "data"
    data.mkdir(parents=True)
    (data / "reviews.jsonl").write_text(
        "\n".join(json.dumps({"id": i, "text": t, "label": y}) for i, t, y in REVIEWS) + "\n"
    )
    write_case(pytester)
    return pytester


def write_case(pytester: pytest.Pytester, *, min_accuracy: float = 0.75, min_f1: float = 0.5, provider: str = "") -> None:
    (pytester.path / "cases" / "reviews.yaml").write_text(
        SENTIMENT_CASE.format(min_accuracy=min_accuracy, min_f1=min_f1, provider=provider)
    )


def run(pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run pytest in a fresh process, as a user would, with only the given credentials in the environment.

    ``CI``/``BUILD_NUMBER`` are dropped (pytest prints longer summaries under them) unless passed in ``env``.
    """
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "AZURE_OPENAI_")) and k not in ("CI", "BUILD_NUMBER")}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=pytester.path, env=base, capture_output=True, text=True, timeout=300,
    )


def report_json(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "reports" / "report.json").read_text())


def scores(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {item["item_id"]: {m["name"]: m["value"] for m in item["metrics"]} for item in report["items"]}
