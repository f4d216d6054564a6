"""Every way to add a metric, end to end through pytest: a conftest class and function, an installed
package's entry point, a case's ``python:`` file and a Hugging Face ``evaluate`` module folder, recorded
against the local chat server and replayed offline; load-time errors; ``evalsuite compare`` sees them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests._support.dist_info import install_package
from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.evaluate_modules import OVERLAP
from tests._support.project import CANARY, REVIEWS, report_json, run

CASE = """
suite: reviews
cases:
  - id: custom
    model: {{name: test-model, temperature: 0, max_tokens: 3}}
    dataset: {{path: data/reviews.jsonl, label_names: [negative, positive], expected: label}}
    prompt:
      system: Classify the sentiment of the review as positive or negative.
      user: "Review: {{{{ text }}}}"
    parse:
      kind: label
      labels: {{positive: [positive, pos], negative: [negative, neg]}}
    metrics:
{metrics}
"""
METRICS = """\
      accuracy: {min: 0.5}
      says: {label: positive, max: 1}
      label_spread: {}
      capitals: {}
      polite: {python: "local_metrics.py:mentions", word: Negative, min: 0.1}
      overlap: {evaluate: {path: ./metrics/overlap}, min: 0.5}
"""

CONFTEST = '''
import evalsuite


@evalsuite.metric("says")
def says(scored, *, label="positive") -> bool:
    """Share of answers predicting the label."""
    return scored.prediction == label


@evalsuite.metric("label_spread")
class LabelSpread(evalsuite.Metric):
    kind = "corpus"

    def describe(self):
        return "number of distinct predicted labels"

    def score(self, scored):
        return [str(s.prediction) for s in scored]

    def aggregate(self, values):
        return float(len(set(values)))
'''

# An installed package: what pip leaves for [project.entry-points."evalsuite.metrics"] capitals = "caps_metric:Capitals"
CAPS_MODULE = '''
from evalsuite.metrics import Metric


class Capitals(Metric):
    """A corpus metric: the share of capital letters over all answers (not a mean of per-answer shares)."""

    kind = "corpus"

    def describe(self):
        return "capital letters / letters, over all answers"

    def score(self, scored):
        return [[sum(c.isupper() for c in s.answer.text or ""), sum(c.isalpha() for c in s.answer.text or "")]
                for s in scored]

    def aggregate(self, values):
        upper, letters = (sum(column) for column in zip(*values))
        return upper / letters
'''

LOCAL_METRICS = '''
def mentions(scored, *, word="please"):
    return word in (scored.answer.text or "")
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\n")
    cases = pytester.path / "cases"
    (cases / "data").mkdir(parents=True)
    (cases / "data" / "reviews.jsonl").write_text(
        "\n".join(json.dumps({"id": i, "text": t, "label": y}) for i, t, y in REVIEWS) + "\n"
    )
    write_case(pytester, METRICS)
    (pytester.path / "conftest.py").write_text(CONFTEST)
    (cases / "local_metrics.py").write_text(LOCAL_METRICS)
    (cases / "metrics" / "overlap").mkdir(parents=True)
    (cases / "metrics" / "overlap" / "overlap.py").write_text(OVERLAP)
    # on sys.path already: pytest's rootdir is the working directory of the nested run
    install_package(pytester.path, "caps-metric", {"evalsuite.metrics": {"capitals": "caps_metric:Capitals"}},
                    {"caps_metric": CAPS_MODULE})
    return pytester


def write_case(pytester: pytest.Pytester, metrics: str) -> None:
    (pytester.path / "cases" / "reviews.yaml").write_text(CASE.format(metrics=metrics))


def offline_env(pytester: pytest.Pytester, **extra: str) -> dict[str, str]:
    return {"HF_MODULES_CACHE": str(pytester.path / "hf-modules"), "HF_EVALUATE_OFFLINE": "1", **extra}


def values(report: dict[str, Any]) -> dict[str, Any]:
    (item,) = report["items"]
    return {m["name"]: (m["value"], m["kind"], m["verdict"]) for m in item["metrics"]}


def test_every_kind_of_user_metric_records_and_replays(project: pytest.Pytester) -> None:
    with ChatServer(sentiment_responder) as server:
        live = run(project, "cases", "--record-mode=once", "--eval-baseline", "baseline.json", "--eval-update-baseline",
                   env=offline_env(project, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=CANARY))
    assert live.returncode == 0, live.stdout + live.stderr
    recorded = values(report_json(project))
    # the toy classifier gets all 8 right: 4 positive, answers "Positive" / "Negative" (capitalised)
    assert recorded == {
        "accuracy": (1.0, "proportion", "pass"),
        "says": (0.5, "proportion", "pass"),  # conftest function, parameter from the case
        "label_spread": (2.0, "corpus", "pass"),  # conftest class
        "capitals": (pytest.approx(8 / 64), "corpus", "pass"),  # entry point: 8 capitals in 4 x 8 + 4 x 8 letters
        "polite": (0.5, "proportion", "pass"),  # python: file beside the case
        "overlap": (1.0, "proportion", "pass"),  # evaluate module folder beside the case, per-example values
    }
    replay = run(project, "cases", "--record-mode=none", env=offline_env(project))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert values(report_json(project)) == recorded

    compare = subprocess.run([sys.executable, "-m", "evalsuite", "compare", "baseline.json", "baseline.json"],
                             cwd=project.path, capture_output=True, text=True, timeout=120,
                             env={**os.environ, **offline_env(project)})
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert "capitals" in compare.stdout and "label_spread skipped" in compare.stdout
    assert "capitals skipped" not in compare.stdout  # the entry point's aggregate recomputes the corpus value


@pytest.mark.parametrize(
    "metrics,message",
    [
        ("      sayz: {}\n", "cases/reviews.yaml:14: metrics.sayz: unknown metric 'sayz'"),
        ("      says: {lable: negative}\n",
         "cases/reviews.yaml:14: metrics.says: unknown parameter 'lable'; did you mean 'label'? valid: label"),
        ("      polite: {python: local_metrics.py:mention}\n",
         "cases/reviews.yaml:14: metrics.polite: python: local_metrics.py has no function 'mention'; did you mean "
         "'mentions'? functions defined there: mentions"),
        ("      overlap: {evaluate: {path: ./metrics/overlp}}\n",
         "cases/reviews.yaml:14: metrics.overlap: evaluate.path: ./metrics/overlp (a module folder or a .py file) not found"),
    ],
    ids=["name", "parameter", "python", "evaluate"],
)
def test_load_time_errors_name_the_line_and_the_fix(project: pytest.Pytester, metrics: str, message: str) -> None:
    write_case(project, metrics)
    result = run(project, "cases", "--collect-only", env=offline_env(project))
    assert result.returncode != 0
    assert message in result.stdout, result.stdout
    assert "Traceback" not in result.stdout


def test_a_misspelt_custom_name_suggests_it(project: pytest.Pytester) -> None:
    write_case(project, "      label_sprad: {}\n")
    result = run(project, "cases", "--collect-only", env=offline_env(project))
    assert "did you mean 'label_spread'?" in result.stdout, result.stdout
