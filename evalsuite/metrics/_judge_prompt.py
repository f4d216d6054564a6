"""What a judge is asked, and how its judgement is read: reasoning first, the verdict on the last line.

Why this order: a judge that writes its verdict before its reasoning commits before thinking, and its
reasoning then argues for whatever it wrote (a schema that put the boolean first silently reversed 2 of 68
grades in Toloka's tolokaforge, PR #528). The built-in prompts ask for a few sentences of reasoning, then a
last line ``VERDICT: <value>``; the reader takes the *final* ``VERDICT:`` in the text, so a judge that
mentions a verdict while reasoning is read by the one it ends on. A judgement without a valid final verdict
(no marker, a 7 on a 1..5 scale, a truncated answer) is "unparsed": not scored, counted and reported.

Logprob weighting (G-Eval, DeepEval's ``calculate_weighted_summed_score``): when the endpoint returned the
alternatives of each generated token, the score is the expectation over the scale values' probabilities at
the verdict token, sum(s * p(s)) / sum(p(s)), instead of the single sampled value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from evalsuite.records import Answer

GRADE_TEMPLATE = """\
You are grading an answer{% if input is not none %} to a task{% endif %}.

Criteria: {{ rubric }}
{% if input is not none %}
Task:
{{ input }}
{% endif %}{% if reference is not none %}
Reference answer:
{{ reference }}
{% endif %}
Answer to grade:
{{ answer }}

First explain your reasoning in two or three sentences. Then, on the last line, write "VERDICT: " followed by \
{{ choices }}.
"""

PAIRWISE_TEMPLATE = """\
You are comparing two answers{% if input is not none %} to a task{% endif %}.

Criteria: {{ rubric }}
{% if input is not none %}
Task:
{{ input }}
{% endif %}
Answer A:
{{ answer_a }}

Answer B:
{{ answer_b }}

First explain your reasoning in two or three sentences. Then, on the last line, write "VERDICT: " followed by \
{{ choices }}.
"""

DEFAULT_RUBRIC = {
    "grade": "The answer is correct, complete and relevant{% if reference is not none %}, and agrees with the "
             "reference answer{% endif %}.",
    "pairwise": "Which answer is more correct, complete and relevant.",
}

_VERDICT = re.compile(r"verdict\s*\**\s*[:=]\s*\**\s*([A-Za-z]+|\d+(?:\.\d+)?)", re.IGNORECASE)
PASS_FAIL = {"PASS": 1, "FAIL": 0}
PAIRWISE = ("A", "B", "TIE")


@dataclass(frozen=True)
class Verdict:
    """The final ``VERDICT:`` value of a judgement and where it starts in the text."""

    value: str
    start: int


def choices(scale: tuple[int, int] | None, pairwise: bool) -> str:
    """How the prompt says what may follow ``VERDICT:``."""
    if pairwise:
        return "A, B or TIE (when neither is better)"
    if scale is not None:
        return f"one whole number from {scale[0]} (worst) to {scale[1]} (best)"
    return "PASS or FAIL"


def final_verdict(answer: Answer) -> Verdict | None:
    """The last ``VERDICT: <value>`` of the judgement, None when there is none or the judgement was cut off at its
    token limit (``finish_reason`` "length": its last verdict may be one it was still reasoning about)."""
    if answer.finish_reason == "length":
        return None
    last = None
    for last in _VERDICT.finditer(answer.text or ""):
        pass
    return Verdict(last.group(1), last.start(1)) if last else None


def scale_value(verdict: Verdict | None, scale: tuple[int, int]) -> int | None:
    """The verdict as a point of the scale; None when it is not one (unparsed)."""
    if verdict is None:
        return None
    try:
        number = float(verdict.value)
    except ValueError:
        return None
    return int(number) if number.is_integer() and scale[0] <= number <= scale[1] else None


def weighted_score(answer: Answer, verdict: Verdict, scale: tuple[int, int]) -> float | None:
    """sum(s * p(s)) / sum(p(s)) over the scale values among the verdict token's alternatives; None when the
    answer has no alternatives or the verdict token cannot be found among its tokens (the caller then uses the
    parsed verdict)."""
    if not answer.tokens or not answer.top_logprobs:
        return None
    index = _token_at(answer.tokens, answer.text or "", verdict)
    if index is None:
        return None
    probability: dict[int, float] = {}
    for token, logprob in answer.top_logprobs[index].items():
        point = _scale_point(token, scale)
        if point is not None:
            probability[point] = probability.get(point, 0.0) + math.exp(logprob)
    total = math.fsum(probability.values())
    return math.fsum(point * p for point, p in probability.items()) / total if total > 0 else None


def _token_at(tokens: list[str], text: str, verdict: Verdict) -> int | None:
    """The index of the token the verdict's value starts in: by character offsets when the tokens spell the
    text, else the last token that is the value itself."""
    if "".join(tokens) == text:
        end = 0
        for index, token in enumerate(tokens):
            end += len(token)
            if end > verdict.start:
                return index
        return None
    matches = [i for i, token in enumerate(tokens) if token.strip() == verdict.value]
    return matches[-1] if matches else None


def _scale_point(token: str, scale: tuple[int, int]) -> int | None:
    text = token.strip()
    if not text.isdigit():
        return None
    point = int(text)
    return point if scale[0] <= point <= scale[1] else None
