"""Run one pytest item (case x variant) through the whole pipeline, outside of pytest's machinery.

examples -> prompts -> recorded model calls -> parsed answers -> per-example scores -> verdict.
Kept free of pytest so a notebook or a Spark job can call ``run_item`` directly.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evalsuite import dataset, parsing, prompts, verdict
from evalsuite._util.secrets import user_secrets
from evalsuite.cases import CaseRun, tool_settings
from evalsuite.cases.schema import Case, MetricSpec, ModelSettings
from evalsuite.cassettes import MODES, CassetteOptions, Misses
from evalsuite.errors import BaselineError, DatasetUnavailable, EvalsuiteError, NotRecorded, SettingsError, Unavailable, display_path
from evalsuite.metrics import Metric, MetricInfo, get_metric
from evalsuite.metrics._calls import REJUDGE_MODE, MetricCalls
from evalsuite.model import EngineSettings, SpendGuard, estimate_cost, get_provider, model_prices
from evalsuite.records import Answer, Call, Example, ExampleRecord, ItemResult, MetricResult, Scored, item_identity
from evalsuite.verdict import Baseline, Gate, load_baseline
from evalsuite.verdict.baseline import RENAMED_FROM
from evalsuite.verdict.flakiness import flakiness

EXCERPT_CHARS = 200
PROMPT_TAIL_CHARS = 1000  # of each example's rendered prompt after the part all share (the report's drill-down)
PROMPT_PREFIX_CHARS = 20_000  # of that shared part, stored once per item
SHARED_MIN = 40  # a prefix all inputs share (instructions, few-shot) is cut when longer, keeping its last word
WORST_SHOWN = 3


@dataclass
class RunSettings:
    """Everything about a run that is not in the case file: pytest options and ini values."""

    rootdir: Path
    record_mode: str = "none"
    cassette_dir: Path = Path("cassettes")
    report_dir: Path = Path("reports")  # relative to rootdir, like cassette_dir
    baseline_path: Path | None = None  # relative to rootdir: compared with, or written by update_baseline
    engine: EngineSettings = field(default_factory=EngineSettings)
    limit: int | None = None
    model_override: dict[str, str] = field(default_factory=dict)  # provider / name / api for every case
    alpha: float = 0.05
    baseline: Baseline | None = None
    prices: dict[str, Any] = field(default_factory=dict)
    nodeid: str = ""
    redact: tuple[str, ...] = ()  # eval_redact lines: secrets redacted besides the built-in ones
    metric_record_mode: str | None = None  # of metrics' own calls (judges, embeddings); None: record_mode
    max_cost: float | None = None  # USD: the spend guard of live calls (--eval-max-cost)
    engine_kind: str | None = None  # --eval-engine: "local" or "spark" for every case, over its engine.kind

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RunSettings:
        """Settings from the plain option values every front door has (pytest options and ini, a notebook's dict).

        Keys: ``rootdir`` (required), ``record_mode``, ``cassette_dir``, ``report_dir``, ``concurrency``, ``rpm``, ``tpm``,
        ``limit``, ``model`` (``[provider:]name`` for every case), ``api``, ``alpha``, ``baseline`` (a path
        relative to ``rootdir``), ``update_baseline``, ``redact`` (``eval_redact`` lines), ``rejudge`` (replay the items,
        re-record the calls of judges and other calling metrics), ``max_cost`` (USD, the spend guard of live
        calls) and ``engine`` (``local`` or ``spark`` for every case); a missing or empty value takes the default, and
        numbers may be strings (ini files). Loads the baseline and the ``[tool.evalsuite]`` prices; raises
        ``SettingsError`` naming the option and the fix.
        """
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise SettingsError(f"unknown run option(s) {', '.join(sorted(unknown))}; "
                                f"valid: {', '.join(sorted(_OPTION_KEYS))}")
        given = {k: v for k, v in options.items() if v not in (None, "")}
        rootdir = Path(given["rootdir"])
        mode = given.get("record_mode", "none")
        if mode not in MODES:
            raise SettingsError(f"record mode {mode!r} (--record-mode, eval_record_mode) is not valid: "
                                f"choose one of {', '.join(MODES)}")
        rejudge = bool(given.get("rejudge"))  # the model under test is only replayed, whatever the record mode
        mode = "none" if rejudge else mode
        baseline_path, update = given.get("baseline"), bool(given.get("update_baseline"))
        if update and not baseline_path:
            raise SettingsError("--eval-update-baseline writes to --eval-baseline PATH (or the eval_baseline ini key)")
        baseline = None
        if baseline_path and not update:
            path = rootdir / baseline_path
            if not path.exists():
                raise SettingsError(f"--eval-baseline {baseline_path}: no such file; write one with --eval-update-baseline")
            baseline = load_baseline(path)
        return cls(
            rootdir=rootdir,
            record_mode=mode,
            cassette_dir=Path(given.get("cassette_dir", "cassettes")),
            report_dir=Path(given.get("report_dir", "reports")),
            baseline_path=Path(baseline_path) if baseline_path else None,
            engine=EngineSettings(
                concurrency=_number(given, "concurrency", int, EngineSettings.concurrency),
                requests_per_minute=_number(given, "rpm", float),
                tokens_per_minute=_number(given, "tpm", float),
            ),
            limit=_positive_limit(given),
            model_override=_model_override(given.get("model"), given.get("api")),
            alpha=_number(given, "alpha", float, 0.05),
            baseline=baseline,
            prices=tool_settings(rootdir).get("prices", {}),
            redact=_redact_lines(given.get("redact", ())),
            metric_record_mode=REJUDGE_MODE if rejudge else None,
            max_cost=_positive_cost(given),
            engine_kind=_engine_kind(given.get("engine")),
        )


_OPTION_KEYS = {"rootdir", "record_mode", "cassette_dir", "report_dir", "concurrency", "rpm", "tpm", "limit", "model", "api",
                "alpha", "baseline", "update_baseline", "redact", "rejudge", "max_cost", "engine"}


def _engine_kind(kind: str | None) -> str | None:
    if kind not in (None, "local", "spark"):
        raise SettingsError(f"--eval-engine {kind} (engine): choose local or spark")
    return kind


def _redact_lines(lines: str | Sequence[str]) -> tuple[str, ...]:
    """The ``eval_redact`` lines, checked now: a bad pattern stops the run before anything is recorded."""
    lines = (lines,) if isinstance(lines, str) else tuple(lines)
    user_secrets(lines)
    return lines


def _model_override(model: str | None, api: str | None) -> dict[str, str]:
    override = {"api": api} if api else {}
    if model:
        provider, _, name = model.rpartition(":")
        if provider:
            try:
                get_provider(provider)  # the registry a case file's model.provider is checked against
            except EvalsuiteError as exc:
                raise SettingsError(f"--eval-model {model}: {exc}") from None
        override.update({"name": name, **({"provider": provider} if provider else {})})
    return override


def _positive_limit(given: Mapping[str, Any]) -> int | None:
    """``--eval-limit 0`` would run nothing and pass; a negative one would silently mean "all"."""
    limit: int | None = _number(given, "limit", int)
    if limit is not None and limit < 1:
        raise SettingsError(f"--eval-limit {limit} (limit): expected at least 1 example per dataset; "
                            "drop the option to run every example")
    return limit


def _positive_cost(given: Mapping[str, Any]) -> float | None:
    """``--eval-max-cost 0`` (or less) would send nothing and report every example not run."""
    cost: float | None = _number(given, "max_cost", float)
    if cost is not None and not cost > 0:
        raise SettingsError(f"--eval-max-cost {cost:g} (eval_max_cost): expected a positive amount in USD, e.g. 5; "
                            "drop the option to run without a spend limit")
    return cost


def _number(given: Mapping[str, Any], key: str, kind: type[int] | type[float], default: Any = None) -> Any:
    if key not in given:
        return default
    try:
        return kind(given[key])
    except (TypeError, ValueError):
        raise SettingsError(f"{key} = {given[key]!r}: expected a number ({kind.__name__}), e.g. {kind(4)}") from None


def cassette_path(run: CaseRun, settings: RunSettings) -> Path:
    """One cassette per item, so xdist workers never write the same file."""
    return settings.rootdir / settings.cassette_dir / run.suite / f"{run.item_id}.json"


@dataclass
class ItemPlan:
    """An item's work before any call: its examples, its calls, its metrics and its cassette (``plan_item``)."""

    run: CaseRun  # with the run's model override applied
    rows: list[Example]
    calls: list[Call]
    metrics: dict[str, Metric]
    cassette: Path
    fingerprint: str
    prices: dict[str, dict[str, float]]
    options: CassetteOptions  # the item's, with the run's redaction
    started: float

    @property
    def metadata(self) -> dict[str, Any]:
        """What the cassette stores about the item (compared when it is replayed)."""
        return {"dataset_fingerprint": self.fingerprint, "item_id": self.run.item_id}

    @property
    def endpoint(self) -> str:
        """The URL path tail the calls go to: what the cassette matches on, with the body."""
        model = self.run.case.model
        return get_provider(model.provider).endpoint(model)


@dataclass
class ItemAnswers:
    """An item's answers, one per call, once its cassette is saved."""

    plan: ItemPlan
    answers: list[Answer]
    cassette_interactions: int = 0
    misses: Misses | None = None  # why calls were not recorded, when some were not
    spend_guard: SpendGuard | None = None  # the live run's guard, when it refused calls


def plan_item(run: CaseRun, settings: RunSettings, cassette_options: CassetteOptions | None = None) -> ItemPlan:
    """Everything before the calls: the model override, metrics, examples, prompts and the cassette's path.

    Raises ``Unavailable`` (a Hub dataset offline: a skip) or ``EvalsuiteError`` naming the case (a dataset or
    template problem), as :func:`run_item` does.
    """
    started = time.perf_counter()
    case = run.case
    if settings.model_override:
        case = case.model_copy(update={"model": case.model.model_copy(update=settings.model_override)})
    metrics = {name: get_metric(name, spec, base_dir=run.base_dir) for name, spec in case.metrics.items()}
    path = cassette_path(run, settings)
    replay_only = settings.record_mode == "none"
    if case.dataset.hf and replay_only and not path.exists():
        raise Unavailable(
            f"{run.source}: Hub dataset {case.dataset.hf!r} and no cassette at {display_path(path, settings.rootdir)};"
            " record it with Hub access and an API key: --record-mode=once"
        )
    try:
        rows = dataset.load_examples(case.dataset, run.base_dir, limit=settings.limit)
        calls = prompts.build_calls(case, rows)
    except DatasetUnavailable as exc:
        raise Unavailable(f"{run.source}: {exc}") from None
    except EvalsuiteError as exc:
        raise EvalsuiteError(f"{run.source}: {exc}") from None
    options = cassette_options or CassetteOptions()
    return ItemPlan(run=replace(run, case=case), rows=list(rows), calls=list(calls), metrics=metrics, cassette=path,
                    fingerprint=dataset.fingerprint(rows), prices=model_prices(case.model, settings.prices),
                    options=replace(options, redact=[*settings.redact, *options.redact]), started=started)


def run_item(run: CaseRun, settings: RunSettings, *, cassette_options: CassetteOptions | None = None) -> ItemResult:
    """One item through every stage: :func:`plan_item`, its answers (replayed or recorded), :func:`finish_item`.

    The same path as a pytest session's, for one item: ``cassette_options`` (custom matching and redaction,
    from the ``pytest_evalsuite_cassette`` hook) apply to this item's cassette; live progress goes to stderr.
    """
    from evalsuite.scheduler import Scheduler  # the session's scheduler, with this one item

    with Scheduler(settings) as scheduler:
        ticket = scheduler.add(run, settings, cassette_options)
        answered = scheduler.wait(ticket)
    return finish_item(answered, settings)


def finish_item(answered: ItemAnswers, settings: RunSettings) -> ItemResult:
    """The answers judged: not recorded and a dead endpoint are errors; examples the spend guard kept from running
    are left out of every metric (and named, so the item cannot pass); the rest is :func:`score`.

    Raises ``NotRecorded`` or ``EvalsuiteError`` with the message a user acts on. A result with examples not run
    has ``passed`` False, ``meta["not_run"]`` and a message starting with the spend guard's line.
    """
    plan, answers = answered.plan, answered.answers
    run, case, path = plan.run, plan.run.case, plan.cassette
    missing = [a for a in answers if a.error_kind == "not_recorded"]
    if missing and answered.misses is not None:
        ids = sorted({a.example_id for a in missing})
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        raise NotRecorded(not_recorded_message(
            f"{run.item_id}: {len(missing)} call(s)", path, case.model, settings, settings.nodeid or run.source,
            details=[f"examples: {shown}", *(f"  {line}" for line in answered.misses.lines[:10])],
            recorded_with=answered.misses.recorded_with,
        ))
    left_out = {a.example_id for a in answers if a.error_kind == "not_run"}
    guard_line = ""
    if left_out:
        guard = answered.spend_guard
        reached = guard.describe() if guard is not None else "limit reached"
        guard_line = (f"{run.item_id}: spend guard: {len(left_out)} of {len(plan.rows)} examples not run ({reached}); "
                      "raise --eval-max-cost or resume with --record-mode=new_episodes")
    kept = [i for i, a in enumerate(answers) if a.example_id not in left_out]
    if not kept and left_out:
        raise EvalsuiteError(guard_line)
    ran = [answers[i] for i in kept]
    if ran and not any(a.ok for a in ran):  # a dead endpoint measures nothing, whatever the thresholds say
        kinds = ", ".join(f"{n} {kind}" for kind, n in Counter(a.error_kind for a in ran).most_common())
        raise EvalsuiteError(f"{run.item_id}: none of its {len(ran)} call(s) got an answer ({kinds}), so there is "
                             f"nothing to score; first error: {ran[0].error}")
    calls = [plan.calls[i] for i in kept]
    rows = [row for row in plan.rows if row.id not in left_out]
    metric_calls = MetricCalls.for_item(run, settings, plan.options, plan.metrics)  # judges, embeddings: beside it
    result = metric_calls.finish(score(
        run, rows, ran, plan.metrics, settings, prompt_hashes=[c.prompt_hash for c in calls],
        inputs=[prompt_text(c) for c in calls], prompts=[rendered_prompt(c) for c in calls],
        fingerprint=plan.fingerprint, cassette_file=path, cassette_interactions=answered.cassette_interactions,
        started=plan.started))
    if left_out:
        result.passed = False
        result.meta["not_run"] = len(left_out)
        result.message = "\n".join(filter(None, [guard_line, result.message]))
    return result


def score(
    run: CaseRun,
    rows: Sequence[Example],
    answers: Sequence[Answer],
    metrics: dict[str, Metric],
    settings: RunSettings,
    *,
    prompt_hashes: Sequence[str] | None = None,
    inputs: Sequence[str] | None = None,
    prompts: Sequence[str] | None = None,
    fingerprint: str | None = None,
    cassette_file: Path | None = None,
    cassette_interactions: int = 0,
    started: float | None = None,
) -> ItemResult:
    """Parse, score and judge answers already had (one per example and sample): the rest of :func:`run_item`.

    Also what a hand-written test's ``evalsuite_score`` uses, so its answers meet the same parsers,
    metrics, thresholds and baseline gate as a case file's. ``inputs`` (one per answer, like ``prompt_hashes``)
    is the prompt text a report shows as each example's input; without it, the example's first text field.
    ``prompts`` (likewise): the whole rendered prompts, stored as the item's shared prefix and each rest.
    """
    started = time.perf_counter() if started is None else started
    case = run.case
    fingerprint = fingerprint or dataset.fingerprint(rows)
    prices = model_prices(case.model, settings.prices)
    by_example = {row.id: row for row in rows}
    hashes = prompt_hashes if prompt_hashes is not None else [""] * len(answers)
    scored = [_parse(by_example[a.example_id], a, prompt_hash, case) for a, prompt_hash in zip(answers, hashes)]
    values = {name: metric.score(scored) for name, metric in metrics.items()}
    keys = [str(s.answer.key) for s in scored]
    baseline_entry = settings.baseline.entry(item_identity(run.suite, run.item_id)) if settings.baseline else None
    renamed = settings.baseline.renamed_entry(fingerprint, hashes) if settings.baseline and not baseline_entry else None
    baseline_entry = baseline_entry or renamed  # a renamed case stays gated: compared with its old name's entry
    baseline_item = {name: m.per_example for name, m in baseline_entry.metrics.items()} if baseline_entry else None
    results = [
        _judged(metric.info(),  # after scoring: a function metric knows its kind once it has scored
                case.metrics[name], values[name], keys, baseline_item.get(name) if baseline_item else None,
                settings, run)
        for name, metric in metrics.items()
    ]
    if renamed is not None:
        note = f"compared with baseline entry {renamed.identity} (renamed?)"
        results = [replace(r, reason=f"{r.reason}; {note}") if r.name in renamed.metrics else r for r in results]
    texts = excerpts(inputs if inputs is not None else [_first_text(s.example) for s in scored])
    prefix, tails = split_prompts(prompts) if prompts is not None else ("", [None] * len(scored))
    records = [_record(s, {name: values[name][i] for name in metrics}, text, tail)
               for i, (s, text, tail) in enumerate(zip(scored, texts, tails))]
    tokens = Counter[str]()
    for a in answers:
        tokens["prompt"] += a.prompt_tokens or 0
        tokens["completion"] += a.completion_tokens or 0
    result = ItemResult(
        nodeid=settings.nodeid,
        suite=run.suite,
        case=case.id,
        variant=run.variant,
        item_id=run.item_id,
        source=run.source,
        model={"provider": case.model.provider, "name": case.model.name, "api": case.model.api},
        params=_params(case),
        record_mode=settings.record_mode,
        cassette=display_path(cassette_file, settings.rootdir) if cassette_file else None,
        dataset_fingerprint=fingerprint,
        n_examples=len(rows),
        records=records,
        metrics=results,
        errors=sum(1 for a in answers if not a.ok),
        unparsed=sum(1 for s in scored if s.answer.ok and not s.parsed),
        tokens=dict(tokens),
        cost_usd=estimate_cost(case.model.name, tokens["prompt"], tokens["completion"], prices),
        wall_s=time.perf_counter() - started,
        agreement=verdict.agreement((s.example.id, s.prediction) for s in scored).mean if case.repeats > 1 else None,
        meta={"prompt_variant": run.prompt_variant, "tags": case.tags, "repeats": case.repeats,
              "cassette_interactions": cassette_interactions,
              **({RENAMED_FROM: renamed.identity} if renamed else {})},
        prompt_prefix=prefix,
    )
    if case.repeats > 1:  # how likely the verdict flips on a re-run, from the spread of the repeats
        flaky = flakiness([(metric.info(), case.metrics[name], values[name]) for name, metric in metrics.items()],
                          keys, ((s.example.id, s.prediction) for s in scored))
        result.flakiness, result.flaky_examples = flaky.probability, flaky.examples
    # only metrics that gate explain a verdict: ungated latency or tokens would list every example
    gating = [r for r, (name, metric) in zip(results, metrics.items())
              if Gate.of(metric.info(), case.metrics[name]).gated]
    result.flipped = verdict.flipped_examples(replace(result, metrics=gating), baseline_entry)
    result.passed = not any(m.failed for m in results)
    if not result.passed:
        result.message = failure_message(result)
    return result


def not_run_result(run: CaseRun, settings: RunSettings, outcome: str, message: str) -> ItemResult:
    """The result of an item that never reached a verdict (not recorded, an error, a skip): no records or metrics,
    ``message`` says why, so every report still lists it and its counts match pytest's."""
    case = run.case
    model = case.model.model_copy(update=settings.model_override) if settings.model_override else case.model
    return ItemResult(
        nodeid=settings.nodeid, suite=run.suite, case=case.id, variant=run.variant, item_id=run.item_id,
        source=run.source, model={"provider": model.provider, "name": model.name, "api": model.api},
        params=_params(case), record_mode=settings.record_mode, cassette=None, dataset_fingerprint="",
        n_examples=0, records=[], metrics=[], passed=outcome == "skipped", message=message, outcome=outcome,
        meta={"prompt_variant": run.prompt_variant, "tags": case.tags, "repeats": case.repeats},
    )


def _judged(info: MetricInfo, spec: MetricSpec, values: list[Any], keys: list[str], baseline: dict[str, Any] | None,
            settings: RunSettings, run: CaseRun) -> MetricResult:
    """``verdict.judge``; a baseline whose stored values it cannot compare (a hand edit) is named, not a traceback."""
    try:
        return verdict.judge(info, spec, values, keys, baseline, alpha=settings.alpha)
    except (TypeError, ValueError) as exc:
        if baseline is None or settings.baseline is None:
            raise
        verdict.judge(info, spec, values, keys, None, alpha=settings.alpha)  # this run's values are fine: the file is not
        raise BaselineError(settings.baseline.path, f"{item_identity(run.suite, run.item_id)}: {info.name}: its stored "
                            f"per-example values cannot be compared ({exc})",
                            "re-write the entry with --eval-update-baseline, or restore the file") from None


def _parse(example: Example, answer: Answer, prompt_hash: str, case: Case) -> Scored:
    prediction, ok = parsing.parse(answer.text, case.parse, answer=answer) if answer.ok else (None, False)
    return Scored(example=example, answer=answer, prompt_hash=prompt_hash, prediction=prediction, parsed=ok)


def prompt_text(call: Call) -> str:
    """What a reader recognises an example by: the last user message sent (chat, responses) or the prompt
    (completions)."""
    if call.api == "completions":
        return str(call.body.get("prompt", ""))
    messages = call.body.get("messages", call.body.get("input", []))
    if isinstance(messages, str):  # a Responses API input given as text
        return messages
    user = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return _content_text(user[-1] if user else "")


def rendered_prompt(call: Call) -> str:
    """The whole prompt sent, as text: the completions prompt, or each message (chat, responses) under its role."""
    if call.api == "completions":
        return str(call.body.get("prompt", ""))
    messages = call.body.get("messages", call.body.get("input", []))
    if call.api == "responses":
        instructions = call.body.get("instructions")
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        if instructions:
            messages = [{"role": "system", "content": instructions}, *messages]
    return "\n\n".join(f"[{m.get('role', '')}]\n{_content_text(m.get('content'))}"
                        for m in messages if isinstance(m, dict))


def _content_text(content: Any) -> str:
    if isinstance(content, list):  # content parts: keep the text ones
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def split_prompts(texts: Sequence[str]) -> tuple[str, list[str]]:
    """(the whole lines every prompt starts with, each prompt's rest): the instructions and few-shot examples
    are stored once per item and each rest is cut to ``PROMPT_TAIL_CHARS``, so a report grows with what differs."""
    distinct = set(texts)
    shared = os.path.commonprefix(list(distinct)) if len(distinct) > 1 else next(iter(distinct), "")
    cut = shared.rfind("\n") + 1 if len(distinct) > 1 else len(shared)
    return _cut(shared[:cut], PROMPT_PREFIX_CHARS), [_cut(text[cut:], PROMPT_TAIL_CHARS) for text in texts]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit:,} more characters in the cassette]"


def _first_text(example: Example) -> str:
    """Without a prompt (a hand-written test's answers): the first text field that is not the id."""
    return next((v for v in example.fields.values() if isinstance(v, str) and v != example.id), "")


def _record(s: Scored, scores: dict[str, Any], input_text: str, prompt: str | None) -> ExampleRecord:
    return ExampleRecord(
        example_id=s.example.id,
        sample=s.answer.sample,
        prompt_hash=s.prompt_hash,
        input_excerpt=input_text,
        expected=s.example.expected,
        answer=s.answer.text,
        prediction=s.prediction,
        parsed=s.parsed,
        scores=scores,
        prompt_tokens=s.answer.prompt_tokens,
        completion_tokens=s.answer.completion_tokens,
        latency_s=s.answer.latency_s,
        error=s.answer.error,
        error_kind=s.answer.error_kind,
        finish_reason=s.answer.finish_reason,
        system_fingerprint=s.answer.system_fingerprint,
        prompt=prompt,
        tool_calls=s.answer.tool_calls,
    )


def excerpts(texts: Sequence[str]) -> list[str]:
    """Each input as a reader tells examples apart: whitespace collapsed, the instructions and few-shot
    examples every prompt of the item starts with cut to "…", trimmed to ``EXCERPT_CHARS``."""
    flat = [" ".join(text.split()) for text in texts]
    shared = os.path.commonprefix(list(set(flat))) if len(set(flat)) > 1 else ""
    whole_words = shared[: shared.rfind(" ") + 1].rstrip()  # a prefix that ends inside a word keeps the word
    cut = whole_words.rfind(" ") + 1 if len(whole_words) > SHARED_MIN else 0  # the last shared word stays
    return [("…" if cut else "") + _trim(text[cut:]) for text in flat]


def _trim(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _params(case: Case) -> dict[str, Any]:
    """The sampling parameters sent (temperature 0 included: it is a value, not an absence)."""
    keys = ("temperature", "max_tokens", "top_p", "seed", "logprobs", "stop")
    values = {k: getattr(case.model, k) for k in keys}
    return {k: v for k, v in values.items() if v is not None and v is not False}


def not_recorded_message(what: str, path: Path, model: ModelSettings, settings: RunSettings, nodeid: str,
                         *, details: Sequence[str] = (), recorded_with: Sequence[str] = ()) -> str:
    """The one message for calls missing from a cassette (case items and hand-written tests alike).

    Names the cassette, then ``details``, then the command that records the calls, with what
    ``model``'s provider needs set (:meth:`~evalsuite.model.Provider.record_hint`). ``recorded_with``:
    the flags the cassette was recorded with when that was another endpoint; then the fix is those
    flags or a full re-record, never ``new_episodes``, which would mix two endpoints in one cassette.
    """
    hint = get_provider(model.provider).record_hint(model)
    head = [(f"{what} not recorded in {display_path(path, settings.rootdir)} "
             f"(record mode '{settings.record_mode}'; no request was sent)"), *details]
    if recorded_with:
        return "\n".join([
            *head,
            f"The cassette was recorded with {' or '.join(recorded_with)}. To replay it, run with the same flags:",
            f"  pytest '{nodeid}' {recorded_with[0]}",
            f"or, to re-record the whole cassette for the current settings, {hint} and run:",
            f"  pytest '{nodeid}' --record-mode=rewrite",
            "(not --record-mode=new_episodes: it would mix two endpoints in one cassette)",
        ])
    return "\n".join([*head, f"To record them, {hint} and run:\n  pytest '{nodeid}' --record-mode=new_episodes"])


def failure_message(result: ItemResult) -> str:
    """What a reviewer needs: which metric, by how much, on how many examples, and the worst examples."""
    lines = [f"{result.item_id} ({result.source}) failed:"]
    for m in result.metrics:
        if m.failed:
            lines.append(f"  {m.name}: {m.reason}")
    if result.errors:
        kinds = Counter(r.error_kind for r in result.records if r.error)
        lines.append(f"  {result.errors} call(s) errored ({', '.join(f'{k}: {n}' for k, n in kinds.items())}); counted as wrong")
    if result.unparsed:
        lines.append(f"  {result.unparsed} answer(s) could not be parsed; counted as wrong")
    failed = next((m for m in result.metrics if m.failed), None)
    if failed is not None:
        worst = _worst(result.records, failed)
        if worst:
            lines.append(f"  worst examples for {failed.name}:")
            for r, note in worst:
                got = r.error or (repr(r.answer[:80]) if r.answer is not None else _calls_text(r.tool_calls))
                lines.append(f"    - {r.example_id}{note}: input {r.input_excerpt!r}\n"
                             f"      expected {r.expected!r}, got {got}")
    if result.flipped:
        shown = ", ".join(f"{f['example_id']} ({f['metric']} {f['before']} -> {f['after']})"
                          for f in result.flipped[:WORST_SHOWN])
        more = f" and {len(result.flipped) - WORST_SHOWN} more" if len(result.flipped) > WORST_SHOWN else ""
        lines.append(f"  flipped against the baseline: {shown}{more}")
    return "\n".join(lines)


def _calls_text(tool_calls: list[dict[str, str]] | None) -> str:
    """An answer that is tool calls, as a reader would write them: ``get_weather({"city": "Paris"})``."""
    if not tool_calls:
        return "None"
    return ", ".join(f"{call['name']}({call['arguments'][:80]})" for call in tool_calls)


def _worst(records: Sequence[ExampleRecord], result: MetricResult) -> list[tuple[ExampleRecord, str]]:
    """Distinct examples, worst first, each as (its worst sample, e.g. " (2 of 3 samples wrong)"): with
    ``repeats`` one example must not fill the list with its own samples."""
    by_example: dict[str, list[ExampleRecord]] = {}
    for r in records:
        by_example.setdefault(r.example_id, []).append(r)
    ranked: list[tuple[float, ExampleRecord, str]] = []
    for samples in by_example.values():
        if result.kind == "corpus":
            wrong = [r for r in samples if r.error or not r.parsed or r.prediction != r.expected]
            if wrong:
                ranked.append((-len(wrong) / len(samples), wrong[0], _share(len(wrong), len(samples))))
            continue
        sign = 1.0 if result.higher_is_better else -1.0  # ranks worst first whatever the direction
        scored = sorted(((sign * r.scores[result.name], r) for r in samples
                         if isinstance(r.scores.get(result.name), (int, float))), key=lambda pair: pair[0])
        if not scored:
            continue
        values = [r.scores[result.name] for _, r in scored]
        if set(values) <= {0, 1}:
            wrong_count = values.count(0 if result.higher_is_better else 1)
            if not wrong_count:
                continue  # right in every sample: not an example to look at
            note = _share(wrong_count, len(values))
        else:
            note = f" (mean of {len(values)} samples)" if len(values) > 1 else ""
        ranked.append((sum(v for v, _ in scored) / len(scored), scored[0][1], note))
    ranked.sort(key=lambda entry: entry[0])
    return [(r, note) for _, r, note in ranked[:WORST_SHOWN]]


def _share(wrong: int, samples: int) -> str:
    return f" ({wrong} of {samples} samples wrong)" if samples > 1 else ""
