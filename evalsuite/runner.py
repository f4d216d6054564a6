"""Run one pytest item (case x variant) through the whole pipeline, outside of pytest's machinery.

examples -> prompts -> recorded model calls -> parsed answers -> per-example scores -> verdict.
Kept free of pytest so a notebook or a Spark job can call ``run_item`` directly.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evalsuite import parsing, prompts
from evalsuite.model import providers as clients
from evalsuite.model import _engine as engine
from evalsuite import dataset as examples
from evalsuite.cassettes import _cassette as recording
from evalsuite.verdict import _judge as verdict
from evalsuite.verdict.baseline import Baseline
from evalsuite.cases.schema import Case
from evalsuite.errors import EvalsuiteError, NotRecorded, Unavailable
from evalsuite.cases._load import CaseRun
from evalsuite.metrics import Metric, get_metric
from evalsuite.model.progress import Progress, estimate_cost, model_prices
from evalsuite.records import Answer, Example, ExampleRecord, ItemResult, MetricResult, Scored

EXCERPT_CHARS = 160
TRANSIENT_ERRORS = ("rate_limited", "timeout", "connection", "interrupted")  # not recorded, worth keeping the old
WORST_SHOWN = 3


@dataclass
class RunSettings:
    """Everything about a run that is not in the case file: pytest options and ini values."""

    rootdir: Path
    record_mode: str = "none"
    cassette_dir: Path = Path("cassettes")
    engine: engine.EngineSettings = field(default_factory=engine.EngineSettings)
    limit: int | None = None
    model_override: dict[str, str] = field(default_factory=dict)  # provider / name / api for every case
    alpha: float = 0.05
    baseline: Baseline | None = None
    prices: dict[str, Any] = field(default_factory=dict)
    nodeid: str = ""


def cassette_path(run: CaseRun, settings: RunSettings) -> Path:
    """One cassette per item, so xdist workers never write the same file."""
    return settings.rootdir / settings.cassette_dir / run.suite / f"{run.item_id}.json"


def run_item(run: CaseRun, settings: RunSettings) -> ItemResult:
    started = time.perf_counter()
    case = run.case
    if settings.model_override:
        case = case.model_copy(update={"model": case.model.model_copy(update=settings.model_override)})
    metrics = {name: get_metric(name, spec) for name, spec in case.metrics.items()}
    path = cassette_path(run, settings)
    replay_only = settings.record_mode == "none"
    if case.dataset.hf and replay_only and not path.exists():
        raise Unavailable(
            f"{run.source}: Hub dataset {case.dataset.hf!r} and no cassette at {_shown(path, settings)};"
            " record it with Hub access and an API key: --record-mode=once"
        )
    try:
        rows = examples.load_examples(case.dataset, run.base_dir, limit=settings.limit)
        calls = prompts.build_calls(case, rows)
    except examples.DatasetUnavailable as exc:
        raise Unavailable(f"{run.source}: {exc}") from None
    except EvalsuiteError as exc:
        raise EvalsuiteError(f"{run.source}: {exc}") from None
    fingerprint = examples.fingerprint(rows)
    prices = model_prices(case.model, settings.prices)
    metadata = {"dataset_fingerprint": fingerprint, "item_id": run.item_id}
    with recording.use_cassette(path, settings.record_mode, metadata=metadata) as cassette:
        if replay_only:
            answers = engine.replay_calls(calls, cassette, clients.endpoint(case.model))
        else:
            engine_settings = replace(settings.engine, timeout=case.model.timeout)
            with Progress(run.item_id, len(calls), model=case.model.name, prices=prices) as progress:
                answers = engine.run_calls_sync(calls, case.model, settings=engine_settings, progress=progress)
            # A re-recording must not lose what an outage or a quota wall kept it from recording again.
            cassette.keep_previous({a.example_id for a in answers if a.error_kind in TRANSIENT_ERRORS})
        missing = [a for a in answers if a.error_kind == "not_recorded"]
        stale = cassette.stale(calls) if missing else []
    if missing:
        raise NotRecorded(_not_recorded_message(run, settings, path, missing, stale))

    by_example = {row.id: row for row in rows}
    scored = [_parse(by_example[a.example_id], a, call.prompt_hash, case) for a, call in zip(answers, calls)]
    values = {name: metric.score(scored) for name, metric in metrics.items()}
    keys = [str(s.answer.key) for s in scored]
    baseline_item = settings.baseline.item(run.item_id) if settings.baseline else None
    results = [
        verdict.judge(
            metric,
            case.metrics[name],
            values[name],
            keys,
            baseline_item.get(name) if baseline_item else None,
            alpha=settings.alpha,
        )
        for name, metric in metrics.items()
    ]
    records = [_record(s, {name: values[name][i] for name in metrics}) for i, s in enumerate(scored)]
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
        cassette=_shown(path, settings),
        dataset_fingerprint=fingerprint,
        n_examples=len(rows),
        records=records,
        metrics=results,
        errors=sum(1 for a in answers if not a.ok),
        unparsed=sum(1 for s in scored if s.answer.ok and not s.parsed),
        tokens=dict(tokens),
        cost_usd=estimate_cost(case.model.name, tokens["prompt"], tokens["completion"], prices),
        wall_s=time.perf_counter() - started,
        agreement=_agreement(scored) if case.repeats > 1 else None,
        meta={"prompt_variant": run.prompt_variant, "tags": case.tags, "repeats": case.repeats,
              "cassette_interactions": cassette.n_interactions},
    )
    result.passed = not any(m.failed for m in results)
    if not result.passed:
        result.message = failure_message(result, metrics)
    return result


def _shown(path: Path, settings: RunSettings) -> str:
    return str(path.relative_to(settings.rootdir)) if path.is_relative_to(settings.rootdir) else str(path)


def _parse(example: Example, answer: Answer, prompt_hash: str, case: Case) -> Scored:
    prediction, ok = parsing.parse(answer.text, case.parse) if answer.ok else (None, False)
    return Scored(example=example, answer=answer, prompt_hash=prompt_hash, prediction=prediction, parsed=ok)


def _record(s: Scored, scores: dict[str, Any]) -> ExampleRecord:
    first_field = next((str(v) for v in s.example.fields.values() if isinstance(v, str)), "")
    return ExampleRecord(
        example_id=s.example.id,
        sample=s.answer.sample,
        prompt_hash=s.prompt_hash,
        input_excerpt=_excerpt(first_field),
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
    )


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _params(case: Case) -> dict[str, Any]:
    """The sampling parameters sent (temperature 0 included: it is a value, not an absence)."""
    keys = ("temperature", "max_tokens", "top_p", "seed", "logprobs", "stop")
    values = {k: getattr(case.model, k) for k in keys}
    return {k: v for k, v in values.items() if v is not None and v is not False}


def _agreement(scored: Sequence[Scored]) -> float:
    """Mean over examples of the share of samples that agree with the example's most common prediction."""
    groups: dict[str, list[str]] = {}
    for s in scored:
        groups.setdefault(s.example.id, []).append(repr(s.prediction))
    shares = [Counter(preds).most_common(1)[0][1] / len(preds) for preds in groups.values()]
    return sum(shares) / len(shares) if shares else 1.0


def _not_recorded_message(run: CaseRun, settings: RunSettings, path: Path, missing: list[Answer], stale: list[str]) -> str:
    ids = sorted({a.example_id for a in missing})
    shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
    lines = [
        f"{run.item_id}: {len(missing)} call(s) not recorded in {_shown(path, settings)} (record mode '{settings.record_mode}'; no request was sent).",
        f"examples: {shown}",
    ]
    lines += [f"  {line}" for line in stale[:10]]
    lines.append(
        "To record them, set OPENAI_API_KEY (or the Azure variables) and run:\n"
        f"  pytest '{settings.nodeid or run.source}' --record-mode=new_episodes"
    )
    return "\n".join(lines)


def failure_message(result: ItemResult, metrics: dict[str, Metric]) -> str:
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
        worst = _worst(result.records, failed, metrics[failed.name])
        if worst:
            lines.append(f"  worst examples for {failed.name}:")
            for r in worst:
                got = r.error or (repr(r.answer[:80]) if r.answer is not None else "None")
                lines.append(f"    - {r.example_id}: input {r.input_excerpt!r}\n      expected {r.expected!r}, got {got}")
    return "\n".join(lines)


def _worst(records: Sequence[ExampleRecord], result: MetricResult, metric: Metric) -> list[ExampleRecord]:
    if metric.kind == "corpus":
        wrong = [r for r in records if r.error or not r.parsed or r.prediction != r.expected]
        return wrong[:WORST_SHOWN]
    numeric = [r for r in records if isinstance(r.scores.get(result.name), (int, float))]
    numeric.sort(key=lambda r: r.scores[result.name], reverse=not metric.higher_is_better)
    return numeric[:WORST_SHOWN]
