"""The values that flow between pipeline stages.

Each stage reads the previous stage's records and adds its own; every record is plain data
(JSON-serialisable through ``dataclasses.asdict``) so it can cross an xdist worker boundary,
be written into ``report.json`` and be compared against a baseline.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

import orjson

# Body fields that do not change the answer: left out of a request's identity (and so of cassette matching).
# ``store`` and ``previous_response_id`` (Responses API) are server-side state: evalsuite sends ``store: false``, and a
# recorded id would never match a live one.
IGNORED_BODY_FIELDS = ("user", "metadata", "stream_options", "store", "service_tier", "previous_response_id")  # and n == 1


def canonical_body(body: dict[str, Any]) -> bytes:
    """The bytes that identify a request body: answer-irrelevant fields dropped, keys sorted."""
    kept = {
        k: int(v) if isinstance(v, float) and v.is_integer() else v
        for k, v in body.items()
        if k not in IGNORED_BODY_FIELDS and not (k == "n" and v == 1)
    }
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)


def body_hash(body: dict[str, Any]) -> str:
    """sha256 of :func:`canonical_body`: a call's ``prompt_hash`` and its cassette match key."""
    return hashlib.sha256(canonical_body(body)).hexdigest()


def item_identity(suite: str, item_id: str) -> str:
    """An item's identity, ``"<suite>::<item_id>"``; without a suite (a legacy baseline entry), its item id."""
    return f"{suite}::{item_id}" if suite else item_id


class SampleKey(NamedTuple):
    """One sample of one example: ``"<example_id>#<sample>"`` in baselines, cassette tags and reports."""

    example_id: str
    sample: int = 0

    def __str__(self) -> str:
        return f"{self.example_id}#{self.sample}"

    @classmethod
    def parse(cls, text: str) -> SampleKey:
        """The inverse of ``str()``; example ids may themselves contain '#'. A bare id is sample 0."""
        example_id, sep, sample = text.rpartition("#")
        return cls(example_id, int(sample)) if sep and sample.isdigit() else cls(text, 0)


class _OneSample:
    """Records of one sample of one example: their ``key``."""

    example_id: str
    sample: int

    @property
    def key(self) -> SampleKey:
        return SampleKey(self.example_id, self.sample)


@dataclass(frozen=True)
class Example:
    """One dataset row after column mapping (stage: examples)."""

    id: str
    fields: dict[str, Any]
    expected: Any = None  # label, reference text, or list of reference texts


@dataclass(frozen=True)
class Call(_OneSample):
    """One request the engine sends (stage: prompts -> model calls)."""

    example_id: str
    sample: int  # repeat index, 0-based; repeats of one example are sent in order
    api: Literal["chat", "completions", "responses", "embeddings"]  # embeddings: a metric's call (semantic_similarity)
    body: dict[str, Any]  # the JSON body, e.g. {"model": ..., "messages": [...], "temperature": 0}

    @cached_property
    def prompt_hash(self) -> str:
        """body_hash(body): names the exact prompt in reports and keys the cassette."""
        return body_hash(self.body)


# "endpoint": a failure of the endpoint, not of the request (401/403/404, a non-JSON page, 5xx after retries);
# "not_run": never sent, because the spend guard (--eval-max-cost) was reached.
ErrorKind = Literal["not_recorded", "api", "endpoint", "timeout", "connection", "rate_limited", "interrupted",
                    "not_run"]


@dataclass
class Answer(_OneSample):
    """What came back for one call (stage: model calls)."""

    example_id: str
    sample: int
    text: str | None = None
    token_logprobs: list[float] | None = None
    # With logprobs: each generated token and its most likely alternatives (token -> logprob), for a judge's
    # logprob-weighted score; an embeddings call's vectors, one per input.
    tokens: list[str] | None = None
    top_logprobs: list[dict[str, float]] | None = None
    embeddings: list[list[float]] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None  # measured live; the recorded value on replay
    finish_reason: str | None = None
    system_fingerprint: str | None = None
    retries: int = 0
    error: str | None = None
    error_kind: ErrorKind | None = None
    # The tools the model called, in order: [{"name": ..., "arguments": "<JSON text as the model wrote it>"}];
    # None when it called none.
    tool_calls: list[dict[str, str]] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Scored:
    """One answer after parsing, ready for metrics (stage: parsed answers)."""

    example: Example
    answer: Answer
    prompt_hash: str
    prediction: Any = None
    parsed: bool = False  # False: unparseable or errored -> counts as wrong, shown in the report


@dataclass
class ExampleRecord(_OneSample):
    """Per-example row of the report and the baseline (stage: per-example scores)."""

    example_id: str
    sample: int
    prompt_hash: str
    input_excerpt: str
    expected: Any
    answer: str | None
    prediction: Any
    parsed: bool
    scores: dict[str, Any] = field(default_factory=dict)  # metric name -> per-example value
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    error: str | None = None
    error_kind: str | None = None
    finish_reason: str | None = None
    system_fingerprint: str | None = None  # which backend build answered: explains drift under a fixed seed
    prompt: str | None = None  # the rendered prompt after the item's ``prompt_prefix``, cut (runner.PROMPT_TAIL_CHARS)
    tool_calls: list[dict[str, str]] | None = None  # Answer.tool_calls: what the model called instead of (or with) text


@dataclass
class MetricResult:
    """One metric's aggregate, interval, threshold and baseline comparison (stage: verdict)."""

    name: str
    value: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    interval: str = ""  # "wilson" | "bootstrap" | "cluster-bootstrap" (repeats) | ""
    kind: str = ""  # the metric's kind: "proportion" | "mean" | "corpus"
    min: float | None = None
    max: float | None = None
    higher_is_better: bool = True
    definition: str = ""
    baseline: float | None = None
    delta: float | None = None
    p_value: float | None = None  # one-sided p for a worsening (a drop, or a rise when lower is better)
    p_improvement: float | None = None  # one-sided p for a change in the good direction
    p_method: str = ""  # "exact" | "monte-carlo" | "" (no comparison)
    p_mc_se: float | None = None  # Monte Carlo standard error of p_value (None when exact)
    mde: float | None = None  # minimum detectable worsening at this n (80% power, one-sided alpha); None: none known
    test: str = ""  # "mcnemar-exact" | "paired-permutation" | ""
    n_paired: int = 0
    n_new: int = 0  # examples with no counterpart in the baseline
    n_missing: int = 0  # baseline examples absent from this run
    max_drop: float | None = None
    max_increase: float | None = None  # tolerated rise against the baseline (lower-is-better metrics)
    verdict: Literal["pass", "fail", "regression", "improved", "unchanged", "error"] = "pass"
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict in ("fail", "regression", "error")


@dataclass
class ItemResult:
    """Everything one pytest item (case x variant) produced; the unit of report and baseline."""

    nodeid: str
    suite: str
    case: str
    variant: str
    item_id: str  # e.g. "sentiment[terse-t0.7]"; the baseline and cassette key
    source: str  # "cases/sentiment.yaml:12"
    model: dict[str, Any]
    params: dict[str, Any]
    record_mode: str
    cassette: str | None
    dataset_fingerprint: str
    n_examples: int
    records: list[ExampleRecord]
    metrics: list[MetricResult]
    errors: int = 0
    unparsed: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    wall_s: float = 0.0
    passed: bool = True
    message: str = ""  # the failure message shown by pytest
    agreement: float | None = None  # mean per-example agreement across repeats (repeats > 1)
    flakiness: float | None = None  # probability that the pass/fail verdict flips on a re-run (repeats > 1)
    flaky_examples: list[str] = field(default_factory=list)  # example ids whose samples agree least, worst first
    meta: dict[str, Any] = field(default_factory=dict)
    # Examples whose per-example value changed against the baseline, worst first (capped):
    # {"example_id", "metric", "before", "after", "baseline_answer", "answer"}; empty without a baseline.
    flipped: list[dict[str, Any]] = field(default_factory=list)
    # What pytest made of the item: "passed", "failed", "not_recorded", "error", "skipped", "xfailed" (a quarantined
    # failure) or "xpassed"; an item that did not run has no records or metrics and ``message`` says why.
    outcome: str = "passed"
    quarantine: dict[str, Any] | None = None  # the quarantine.yaml entry that covers it: {item, reason, owner, expires}
    prompt_prefix: str = ""  # what every example's rendered prompt starts with (instructions, few-shot): stored once

    @property
    def identity(self) -> str:
        """``"<suite>::<item_id>"``: unique across suites (item ids alone collide), the baseline key."""
        return item_identity(self.suite, self.item_id)

    @classmethod
    def not_collected(cls, path: str, message: str) -> ItemResult:
        """A case file that could not be loaded: one "error" entry, so that reports count what pytest counts."""
        name = path.rpartition("/")[2]
        return cls(nodeid=path, suite=name.rpartition(".")[0], case="", variant="", item_id=name, source=path,
                   model={}, params={}, record_mode="", cassette=None, dataset_fingerprint="", n_examples=0,
                   records=[], metrics=[], passed=False, message=message, outcome="error")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what crosses an xdist worker boundary and what report.json's items hold): ``asdict``'s."""
        return plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemResult:
        """The inverse of :meth:`to_dict`; keys this version does not know (a newer report) are ignored."""
        known = cls.__dataclass_fields__
        fields = {k: v for k, v in data.items() if k in known}
        record_fields = ExampleRecord.__dataclass_fields__
        metric_fields = MetricResult.__dataclass_fields__
        fields["records"] = [ExampleRecord(**{k: v for k, v in r.items() if k in record_fields})
                             for r in data.get("records", [])]
        fields["metrics"] = [MetricResult(**{k: v for k, v in m.items() if k in metric_fields})
                             for m in data.get("metrics", [])]
        return cls(**fields)


_SCALARS = frozenset({str, int, float, bool, type(None)})


@dataclass
class _Holder:
    value: Any


def plain(value: Any) -> Any:
    """``dataclasses.asdict`` of a dataclass (and what it makes of any value inside one), without its per-value
    ``deepcopy``: 25k example records took a second, twice a run (the xdist report, then report.json)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return [v if type(v) in _SCALARS else plain(v) for v in value]
    if kind is dict:
        return {plain(k): v if type(v) in _SCALARS else plain(v) for k, v in value.items()}
    names = _field_names(kind)
    if names is not None:
        out = {}
        for name in names:
            v = getattr(value, name)
            out[name] = v if type(v) in _SCALARS else plain(v)
        return out
    return asdict(_Holder(value))["value"]  # tuples, named tuples, sets, other objects: asdict's own rules


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(kind: type) -> tuple[str, ...] | None:
    if kind not in _FIELD_NAMES:
        _FIELD_NAMES[kind] = tuple(f.name for f in fields(kind)) if is_dataclass(kind) else None
    return _FIELD_NAMES[kind]
