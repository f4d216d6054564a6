"""An LLM judge as a metric: ``<name>: {judge: {model: ..., rubric: ..., scale: [1, 5]}, min: ...}``.

Three ways to judge, all recorded in the judge's own cassette (see ``_calls``):
- **a scale** (``scale: [1, 5]``): the mean verdict, or with ``model.logprobs: true`` the mean of each verdict's
  expectation over the scale tokens' probabilities (``_judge_prompt.weighted_score``);
- **pass/fail** (no ``scale``): the share of PASS verdicts, a proportion (Wilson interval, McNemar vs baseline);
- **pairwise** (``compare: <field>``): the answer against another one (a dataset field, or ``expected``), asked in
  both orders (A/B then B/A), because judges favour a position ("the first option scores higher"); a win counts
  only when both orders agree (``order_bias: agree``; disagreeing orders are a tie), or the two orders' outcomes
  are averaged (``order_bias: average``). The value is the win rate, ties counting one half.

Reference-guided grading: the built-in prompt shows the example's ``expected`` as the reference answer when the
dataset has one. ``template`` replaces the whole prompt (Jinja over the row's fields, ``answer``, ``expected``,
``reference``, ``input``, ``rubric``, ``choices``; pairwise: ``answer_a``, ``answer_b``).

Why a judge model should be pinned: a hosted alias (``gpt-4o``) moves to a new snapshot under the same name,
which silently changes every historical score; the judge's model name is in every cassette key, so a dated name
(``gpt-4o-2024-08-06``) makes a judge upgrade a visible re-recording. An undated hosted judge is a
``CaseFileWarning`` at the model name's line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal
from urllib.parse import urlparse

import jinja2
from pydantic import Field, ValidationError, field_validator, model_validator

from evalsuite.cases.schema import ModelSettings, PromptSpec, Strict
from evalsuite.errors import EvalsuiteError, MetricError, MetricParamError, display_path
from evalsuite.metrics._base import REQUIRED
from evalsuite.metrics._calls import CallingMetric
from evalsuite.metrics._judge_prompt import (
    DEFAULT_RUBRIC,
    GRADE_TEMPLATE,
    PAIRWISE,
    PAIRWISE_TEMPLATE,
    PASS_FAIL,
    choices,
    final_verdict,
    scale_value,
    weighted_score,
)
from evalsuite.records import Answer, Call, Example, Scored

SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
# A pinned snapshot: a date (-2024-08-06, -20241022, @20241022), an OpenAI/Mistral MMDD or YYMM (-0613, -2411), a
# Google revision (-001), a Bedrock version (-v2:0, :0). A family version alone (gpt-4, gpt-4.1) is an alias.
PINNED = re.compile(r"(?:[-@_](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3,4})|-v\d+(?::\d+)?|:\d+)$")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
SHOWN_UNPARSED = 10


class JudgeSpec(Strict):
    """What a ``judge:`` metric key holds."""

    model: ModelSettings = Field(description="The judge: any case-file model key (provider, name, base_url, api, "
                                 "temperature, max_tokens, logprobs, top_logprobs, ...).")
    rubric: str | None = Field(default=None, description="The criteria (a Jinja template over the row's fields).")
    template: str | None = Field(default=None, description="The whole judge prompt instead of the built-in one; it "
                                 "must ask for the verdict last, as 'VERDICT: <value>'.")
    scale: list[int] | None = Field(default=None, description="[low, high]: grade on this integer scale; "
                                    "omitted: PASS/FAIL.")
    input: str | None = Field(default=None, description="The dataset field shown to the judge as the task.")
    compare: str | None = Field(default=None, description="Pairwise: the other answer, a dataset field or "
                                "'expected'; judged in both orders.")
    order_bias: Literal["agree", "average"] = Field(default="agree", description="Pairwise: a win only when both "
                                                    "orders agree (else a tie), or the mean of both orders.")

    @field_validator("scale")
    @classmethod
    def _two_points(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (len(value) != 2 or value[0] >= value[1]):
            raise ValueError("give [low, high] with low < high, e.g. [1, 5]")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> JudgeSpec:
        if self.compare is not None and self.scale is not None:
            raise ValueError("pairwise judging (compare) gives A, B or TIE: drop scale")
        return self


class JudgeMetric(CallingMetric):
    name: ClassVar[str] = "judge"
    defaults: ClassVar[dict[str, Any]] = {"judge": REQUIRED}

    def __init__(self, params: dict[str, Any]) -> None:
        if not SAFE_NAME.match(self.name):
            raise MetricParamError(f"{self.name}: a judge metric's name names its cassette: use only letters, "
                                   "digits, '_', '.' and '-'")
        try:
            self.spec = JudgeSpec.model_validate(params["judge"])
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in ("judge", *error["loc"]))
            raise MetricParamError(f"{self.name}: {where}: {error['msg']}") from None
        spec = self.spec
        self.pairwise = spec.compare is not None
        self.scale = (spec.scale[0], spec.scale[1]) if spec.scale else None
        self.kind = "proportion" if self.scale is None and not self.pairwise else "mean"
        mode = "pairwise" if self.pairwise else "grade"
        rubric = spec.rubric if spec.rubric is not None else DEFAULT_RUBRIC[mode]
        self.template = spec.template if spec.template is not None else (
            (PAIRWISE_TEMPLATE if self.pairwise else GRADE_TEMPLATE).replace("{{ rubric }}", rubric))
        try:
            jinja2.Environment().parse(self.template)
        except jinja2.TemplateSyntaxError as exc:
            key = "template" if spec.template is not None else "rubric"
            raise MetricParamError(f"{self.name}: judge.{key}: template syntax error on line {exc.lineno}: "
                                   f"{exc.message}") from None
        self.prompt_hash = hashlib.sha256(self.template.encode()).hexdigest()[:12]
        super().__init__(params)

    def bounds(self) -> tuple[float, float] | None:
        return (float(self.scale[0]), float(self.scale[1])) if self.scale else (0.0, 1.0)

    def describe(self) -> str:
        model = self.spec.model
        who = f"LLM judge {model.provider}:{model.name} ({model.api}, prompt {self.prompt_hash})"
        if self.pairwise:
            what = (f"win rate of the answer against {self.spec.compare!r}, judged in both orders (A/B and B/A); "
                    + ("a win only when both orders agree, else a tie (0.5)" if self.spec.order_bias == "agree"
                       else "the mean of both orders' outcomes (win 1, tie 0.5, loss 0)"))
        elif self.scale:
            what = (f"mean verdict on {self.scale[0]}..{self.scale[1]}"
                    + ("; each verdict weighted by the scale tokens' probabilities (logprobs)"
                       if self.spec.model.logprobs else ""))
        else:
            what = "share of answers judged PASS"
        return (f"{who}: {what}; reasoning first, the final 'VERDICT:' line is read; an unparsed judgement is not "
                "scored; an answer that errored counts as the worst outcome")

    def setting_warnings(self) -> list[tuple[tuple[str | int, ...], str]]:
        model = self.spec.model
        host = urlparse(model.base_url).hostname if model.base_url else None
        hosted = model.provider == "azure_openai" or (model.provider == "openai" and host not in LOCAL_HOSTS)
        if not hosted or PINNED.search(model.name):
            return []
        return [(("judge", "model", "name"),
                 f"judge model {model.name!r} on {model.provider} has no date or version suffix: a hosted alias "
                 "moves to new snapshots under the same name, silently changing judged scores; name a pinned "
                 "snapshot (e.g. gpt-4o-2024-08-06; on Azure, a deployment of a fixed model version with automatic "
                 "updates off, named after it)")]

    # scoring --------------------------------------------------------------------------------------

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        worst = float(self.scale[0]) if self.scale else 0.0
        values: list[Any] = [worst] * len(scored)
        examples: list[Example] = []
        owners: list[int] = []  # index into scored of each judge call
        for index, item in enumerate(scored):
            if not item.answer.ok or item.answer.text is None:
                continue  # the model under test gave no answer: the worst outcome, nothing to judge
            for order in ("ab", "ba") if self.pairwise else ("",):
                examples.append(self._example(item, order))
                owners.append(index)
        calls = self._calls(examples, scored, owners)
        answers = self.context().answer(self.name, calls, self.spec.model, "judge") if calls else []
        judgements: dict[int, list[Answer]] = {}
        for owner, answer in zip(owners, answers):
            judgements.setdefault(owner, []).append(answer)
        tally = _Tally()
        for index, judged in judgements.items():
            key = str(scored[index].answer.key)
            if not all(answer.ok for answer in judged):
                values[index] = None
                tally.errors += 1
                continue
            values[index] = self._pairwise(judged, tally) if self.pairwise else self._grade(judged[0], key, tally)
            if values[index] is None:
                tally.unparsed.append(key)
        self._note(len(calls), len(judgements), tally)
        return values

    def _grade(self, answer: Answer, key: str, tally: _Tally) -> float | None:
        """The verdict as a score (PASS 1, FAIL 0, a scale point or its logprob-weighted expectation); None:
        unparsed."""
        verdict = final_verdict(answer)
        if verdict is None:
            return None
        if self.scale is None:
            return PASS_FAIL.get(verdict.value.upper())
        point = scale_value(verdict, self.scale)
        if point is None:
            return None
        tally.verdicts[key] = point
        weighted = weighted_score(answer, verdict, self.scale)
        tally.weighted += weighted is not None
        return weighted if weighted is not None else point

    def _pairwise(self, judged: list[Answer], tally: _Tally) -> float | None:
        """The answer's outcome over both orders (win 1, tie 0.5, loss 0) by ``order_bias``; None: unparsed."""
        ab, ba = (self._outcome(answer, order) for answer, order in zip(judged, ("ab", "ba")))
        if ab is None or ba is None:
            return None
        tally.agreed += ab == ba
        tally.first_wins += (ab == 1.0) + (ba == 0.0)
        tally.decided += (ab != 0.5) + (ba != 0.5)
        if ab == ba:
            return ab
        return 0.5 if self.spec.order_bias == "agree" else (ab + ba) / 2

    def _example(self, item: Scored, order: str) -> Example:
        example = item.example
        answer = self.context().sendable(item.answer.text or "")
        fields: dict[str, Any] = {"input": None, "rubric": None, **example.fields, "answer": answer,
                                  "expected": example.expected, "reference": example.expected,
                                  "choices": choices(self.scale, self.pairwise)}
        if self.spec.input is not None:  # else a dataset field named input (or rubric) is the row's own
            fields["input"] = self._field(example, self.spec.input)
        if self.spec.rubric is not None:
            fields["rubric"] = self.spec.rubric
        if self.pairwise:
            other = self._field(example, self.spec.compare)
            if other is None:
                raise MetricError(f"{self.name}: example {example.id!r} has no {self.spec.compare!r} to compare the "
                                  "answer with")
            answer_a, answer_b = (answer, other) if order == "ab" else (other, answer)
            fields.update(answer_a=answer_a, answer_b=answer_b)
        return Example(example.id, fields, example.expected)

    def _field(self, example: Example, name: str | None) -> Any:
        if name is None:
            return None
        if name == "expected":
            return example.expected
        if name not in example.fields:
            raise MetricError(f"{self.name}: judge names the dataset field {name!r}, which example {example.id!r} "
                              f"does not have; fields: {', '.join(sorted(example.fields))}")
        return example.fields[name]

    def _calls(self, examples: list[Example], scored: Sequence[Scored], owners: list[int]) -> list[Call]:
        """The judge's requests, built like a case's (prompts.build_calls: sandboxed template, the model's
        sampling and logprobs parameters); sample = the answer's sample (times two plus the order, pairwise)."""
        from evalsuite import prompts
        from evalsuite.cases.schema import Case

        if not examples:
            return []
        case = Case.model_construct(id=self.name, model=self.spec.model, prompt=PromptSpec(user=self.template),
                                    repeats=1)
        try:
            built = prompts.build_calls(case, examples)
        except EvalsuiteError as exc:
            problem = str(exc).replace(f"case {self.name!r}: prompt.user", "the judge's template")
            raise MetricError(f"{self.name}: {problem}") from None
        calls = []
        for position, (call, owner) in enumerate(zip(built, owners)):
            sample = scored[owner].answer.sample
            if self.pairwise:
                sample = 2 * sample + (position > 0 and owners[position - 1] == owner)
            calls.append(replace(call, sample=sample))
        return calls

    def _outcome(self, answer: Answer, order: str) -> float | None:
        """The answer under test's outcome in one order: 1 win, 0.5 tie, 0 loss; None when unparsed."""
        verdict = final_verdict(answer)
        said = verdict.value.upper() if verdict else None
        if said not in PAIRWISE:
            return None
        if said == "TIE":
            return 0.5
        return 1.0 if (said == "A") == (order == "ab") else 0.0

    def _note(self, calls: int, judged: int, tally: _Tally) -> None:
        context = self.context()
        model = self.spec.model
        unparsed = tally.unparsed
        remarks = []
        if unparsed:
            remarks.append(f"{len(unparsed)} of {judged} judgements unparsed (no valid final VERDICT line, or cut off at max_tokens; not scored)")
        if tally.errors:
            remarks.append(f"{tally.errors} judge call(s) errored (not scored)")
        note: dict[str, Any] = {
            "kind": "pairwise judge" if self.pairwise else "judge",
            "model": {"provider": model.provider, "name": model.name, "api": model.api},
            "prompt_hash": self.prompt_hash,
            "cassette": display_path(context.cassette(self.name), context.rootdir),
            "calls": calls, "unparsed": len(unparsed), "errors": tally.errors,
            "unparsed_examples": unparsed[:SHOWN_UNPARSED],
        }
        if self.scale:
            note["logprob_weighted"] = tally.weighted
            if tally.weighted:
                note["verdicts"] = tally.verdicts  # the parsed verdicts, for judge-check: the values are expectations
        if self.pairwise:
            pairs = judged - len(unparsed) - tally.errors
            note["orders_agree"] = tally.agreed / pairs if pairs else None
            note["first_position_wins"] = tally.first_wins / tally.decided if tally.decided else None
            if pairs:
                remarks.append(f"the two orders agreed on {tally.agreed} of {pairs} pairs")
        note["remark"] = "; ".join(remarks)
        context.note(self.name, **note)


@dataclass
class _Tally:
    """What one scoring run of a judge counted, for report.json and the metric's reason."""

    unparsed: list[str] = field(default_factory=list)
    errors: int = 0
    weighted: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    agreed: int = 0  # pairs whose two orders agreed
    first_wins: int = 0  # decided verdicts that went to answer A
    decided: int = 0
