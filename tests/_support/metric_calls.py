"""Projects whose metrics call a model (a judge, an embeddings endpoint), and a deterministic judge for the
127.0.0.1 chat server.

One server plays both roles, as a local llama.cpp server does in the example suite: a request for
``JUDGE_MODEL`` (any model name containing "judge") is judged, every other request is echoed (the model under
test repeats its prompt). The judge reasons first and ends on ``VERDICT: <value>``:
- grading: the share of the reference's words the answer has, on the prompt's scale (or PASS/FAIL at one half);
- comparing: the answer with more words wins (consistent in both orders); ``first_wins_responder`` always says
  A (a judge that only looks at positions).
``verdict_alternatives`` gives the verdict token's top logprobs: 20% one point lower, 50% as said, 30% one higher.
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import Any

from tests._support.chat_server import echo_responder, words_of

JUDGE_MODEL = "judge-model-2025-01-01"
SCALE = re.compile(r"from (\d+) \(worst\) to (\d+) \(best\)")


def _prompt(body: dict[str, Any]) -> str:
    return echo_responder(body)


def _section(prompt: str, header: str) -> str:
    match = re.search(rf"^{re.escape(header)}:\n(.*?)(?:\n\n|\Z)", prompt, re.MULTILINE | re.DOTALL)
    return match.group(1) if match else ""


def judge_responder(body: dict[str, Any]) -> str:
    if "judge" not in str(body.get("model", "")):
        return echo_responder(body)
    prompt = _prompt(body)
    if "Answer A:" in prompt:
        a, b = len(words_of(_section(prompt, "Answer A"))), len(words_of(_section(prompt, "Answer B")))
        return f"A has {a} words and B has {b}. VERDICT: {'A' if a > b else 'B' if b > a else 'TIE'}"
    answer, reference = set(words_of(_section(prompt, "Answer to grade"))), set(words_of(_section(prompt, "Reference answer")))
    share = len(answer & reference) / len(reference) if reference else 0.0
    scale = SCALE.search(prompt)
    if scale:
        low, high = int(scale.group(1)), int(scale.group(2))
        verdict: str = str(low + round(share * (high - low)))
    else:
        verdict = "PASS" if share >= 0.5 else "FAIL"
    return f"The answer has {share:.0%} of the reference's words, so the verdict is not in doubt. VERDICT: {verdict}"


def first_wins_responder(body: dict[str, Any]) -> str:
    if "judge" not in str(body.get("model", "")):
        return echo_responder(body)
    return "Answer A comes first. VERDICT: A"


def verdict_alternatives(token: str, body: dict[str, Any]) -> dict[str, float]:
    """The verdict token's alternatives (the server's tokens carry their leading space)."""
    if "judge" not in str(body.get("model", "")) or not token.strip().isdigit():
        return {}
    said = int(token)
    return {f" {said - 1}": math.log(0.2), token: math.log(0.5), f" {said + 1}": math.log(0.3)}


ROWS = [("q1", "the cat sat on the mat", "the cat sat on the mat"),
        ("q2", "a dog ran", "the dog ran far away today"),
        ("q3", "birds fly south", "whales swim deep in the cold ocean")]


def judge_project(root: Path, judge: str, *, metric: str = "quality", extra: str = "") -> Path:
    """A case whose answers (the echoed ``text``) are judged with the ``judge:`` mapping given as YAML flow text."""
    rows = ", ".join(f"{{id: {i}, text: '{t}', expected: '{e}', other: '{e} and more words'}}" for i, t, e in ROWS)
    return _echo_case(root, "graded", "answers", rows, f"{metric}: {{judge: {judge}{extra}}}")


def _echo_case(root: Path, suite: str, case_id: str, examples: str, metric: str) -> Path:
    """``cases/<suite>.yaml``: one case over the inline ``examples`` (answers echo ``text``), scored by ``metric``."""
    path = root / "cases" / f"{suite}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""\
        suite: {suite}
        cases:
          - id: {case_id}
            model: {{name: test-model, temperature: 0}}
            dataset:
              id: id
              examples: [{examples}]
            prompt: {{user: "{{{{ text }}}}"}}
            metrics:
              {metric}
        """))
    return path


SIMILARITY_ROWS = [("s1", "the storm cut power to the valley", "a storm cut the power in the valley"),
                   ("s2", "the museum opens late", "free entry after six at the museum"),
                   ("s3", "prices rose again", "the team won the final")]


def similarity_project(root: Path, metric: str = "{model: {name: embedder}, min: 0.2}",
                       rows: list[tuple[str, str, str]] = SIMILARITY_ROWS) -> Path:
    """A case whose answers (the echoed ``text``) are compared with ``expected`` by ``semantic_similarity: <metric>``."""
    examples = ", ".join(f"{{id: {i}, text: '{t}', expected: '{e}'}}" for i, t, e in rows)
    return _echo_case(root, "similar", "summaries", examples, f"semantic_similarity: {metric}")
