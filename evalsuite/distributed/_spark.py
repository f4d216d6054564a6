"""``engine: spark``: an item's live calls spread over Spark tasks instead of the session's engine.

What stays on the driver, unchanged: prompts (rendered before this door), replay (the scheduler answers what the
cassette holds from its index exactly as for the local engine, so a Spark-recorded case replays without Spark, in
CI), the record-mode policy and the cassette file, and everything after the answers (parsing, metrics, the verdict).

What goes to Spark: the calls to send, as rows ``(example_id, sample, api, body)``, repartitioned by example id
(the samples of one example stay together, in order); each task runs the existing async engine once over its
partition (``_task``). Budgets are global: ``--eval-rpm``/``--eval-tpm`` and ``--eval-concurrency`` are divided
by the number of tasks that run at once (the session's task slots, or fewer partitions), so the endpoint sees
the case's budget, however many tasks there are. Credentials reach the executors through their environment
(``SparkContext.environment``, set only for the job), never through the pickled task.

Recording: each task attempt writes its own shard (``cassettes._shards``); after the one action the driver
merges the shard of each partition's winning attempt into the cassette it holds open, through that cassette's
redaction, filters and save policy, as if the calls had been recorded here. If the job fails, what the tasks
recorded is merged all the same (one recording per request), so a re-run with ``new_episodes`` sends only the
rest.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from evalsuite.cases.schema import EngineSpec, ModelSettings
from evalsuite.cassettes import CassetteHandle, all_recorded, in_order, read_shard, remove_run, shard_path
from evalsuite.distributed._session import SparkUnavailable, active_session
from evalsuite.distributed._task import (
    ANSWER_SCHEMA,
    CALL_COLUMNS,
    CALLS_SCHEMA,
    READY_FILE,
    REDACT_ENV,
    PartitionTask,
    answer_of,
)
from evalsuite.errors import EvalsuiteError
from evalsuite.model import EngineSettings, get_provider
from evalsuite.records import Answer, Call

_ENVIRONMENT = threading.Lock()  # SparkContext.environment is one dict for the whole application
FORWARDED_ENV = re.compile(r"^(OPENAI_|AZURE_OPENAI_)")  # what the openai SDK and the built-in providers read
_PYTHON_ERROR = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception|Unavailable|Credentials)): (.+)$", re.MULTILINE)


def send_on_spark(
    calls: Sequence[Call],
    model: ModelSettings,
    cassette: CassetteHandle,
    *,
    settings: EngineSettings | None = None,
    spec: EngineSpec | None = None,
    base_dir: Path | None = None,
    spark: Any = None,
    job_group: str | None = None,
) -> list[Answer]:
    """One Answer per call, in order, every call sent from a Spark task and its recording merged into ``cassette``
    (opened by ``open_cassette``; the caller saves it). What the cassette already answers is the caller's
    (``recorded_answers``), on the driver, as for the local engine.

    ``spec`` is the case's ``engine:`` (partitions, per-task concurrency, shard folder, variables to forward;
    ``shard_dir`` relative to ``base_dir``); ``spark`` the session (default: the active one); ``job_group`` names
    the Spark job for :func:`cancel_jobs`.
    """
    if not calls:
        return []
    get_provider(model.provider).options(model, replay=False)  # no key: the local engine's error, before Spark
    session = spark if spark is not None else active_session(
        "engine: spark", "; or run it in this process with --eval-engine local (replay, --record-mode=none, "
        "needs no Spark)")
    spec = spec or EngineSpec(kind="spark")
    folder = _shard_folder(cassette.path, spec, base_dir)
    with _job_group(session, job_group):
        return _send(session, list(calls), model, settings or EngineSettings(), spec, cassette, folder)


def cancel_jobs(job_group: str) -> None:
    """Cancel the running Spark job of a :func:`send_on_spark` call (Ctrl-C, the session's end): its tasks stop,
    and what they recorded is kept."""
    try:
        spark = active_session("cancelling a Spark job")
    except SparkUnavailable:
        return
    try:
        spark.sparkContext.cancelJobGroup(job_group)
    except Exception:  # Spark Connect: no SparkContext, tags instead
        with suppress(Exception):
            spark.interruptTag(job_group)


@contextmanager
def _job_group(spark: Any, job_group: str | None) -> Iterator[None]:
    """The jobs this thread starts belong to ``job_group`` (classic Spark), or carry it as a tag (Spark Connect)."""
    if job_group is None:
        yield
        return
    try:
        spark.sparkContext.setJobGroup(job_group, "evalsuite engine: spark", interruptOnCancel=True)
        tagged = False
    except Exception:
        spark.addTag(job_group)
        tagged = True
    try:
        yield
    finally:
        if tagged:
            spark.removeTag(job_group)
        else:
            with suppress(Exception):
                spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)


def task_settings(settings: EngineSettings, spec: EngineSpec, running: int) -> EngineSettings:
    """One task's share of the case's budgets, ``running`` tasks at a time: each gets 1/running of the rpm, the
    tpm and (unless ``engine.concurrency`` sets it per task) the requests in flight."""
    share = max(running, 1)
    return replace(
        settings,
        concurrency=spec.concurrency or max(1, settings.concurrency // share),
        requests_per_minute=settings.requests_per_minute / share if settings.requests_per_minute else None,
        tokens_per_minute=settings.tokens_per_minute / share if settings.tokens_per_minute else None,
    )


def task_slots(spark: Any) -> int | None:
    """Tasks the session runs at once (its default parallelism: all executor cores); None when it cannot say."""
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        try:
            return int(spark.conf.get("spark.default.parallelism"))
        except Exception:
            return None


def _send(spark: Any, calls: list[Call], model: ModelSettings, settings: EngineSettings, spec: EngineSpec,
          cassette: CassetteHandle, folder: Path) -> list[Answer]:
    slots = task_slots(spark)
    partitions = spec.partitions or slots or 1
    running = min(partitions, slots) if slots else partitions  # unknown slots: dividing by partitions never exceeds
    run_dir = folder / secrets.token_hex(6)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / READY_FILE).write_text("the Spark tasks of one engine: spark run write their shards here\n")
    task = PartitionTask(model=model, settings=task_settings(settings, spec, running), run_dir=str(run_dir),
                         metadata={"shard_of": cassette.path.name})
    tags = [str(c.key) for c in calls]
    try:
        frame = spark.createDataFrame(_calls_frame(calls), CALLS_SCHEMA).repartition(partitions, "example_id")
        with _executor_env(spark, spec.env, cassette.redact):
            result = frame.mapInPandas(task, ANSWER_SCHEMA)  # the environment is taken when the function is wrapped
        rows = collect_rows(result)  # the one action: nothing recomputes the partitions afterwards
        answers = _in_order(calls, rows)
        winners = [shard_path(run_dir, partition, attempt)
                   for partition, attempt in sorted({(row["partition"], row["attempt"]) for row in rows})]
        unseen = next((path for path in winners if not path.exists()), None)
        if unseen is not None:
            raise EvalsuiteError(f"engine.shard_dir: the driver does not see {unseen}, which a Spark task wrote; set "
                                 "engine.shard_dir to a folder the driver and every executor share (on a multi-node "
                                 "cluster, a /Volumes/... or /dbfs/... path)")
    except BaseException as exc:  # what the tasks recorded is kept, whatever went wrong
        kept = all_recorded(run_dir)
        cassette.adopt(in_order(kept, tags))
        remove_run(run_dir)
        if not isinstance(exc, Exception) or isinstance(exc, EvalsuiteError):  # an interrupt, or already ours
            raise
        raise EvalsuiteError(f"engine: spark: the Spark job failed: {_spark_failure(exc)}; {len(kept)} recording(s) "
                             "the tasks made are kept in the cassette: re-run with --record-mode=new_episodes to send "
                             "only the rest") from None
    cassette.adopt(in_order([pair for path in winners for pair in read_shard(path)], tags))
    remove_run(run_dir)
    return answers


def _shard_folder(cassette_path: Path, spec: EngineSpec, base_dir: Path | None) -> Path:
    """``engine.shard_dir`` (relative to the case file), else beside the cassette; one subfolder per item."""
    root = Path(base_dir or ".") / spec.shard_dir if spec.shard_dir else cassette_path.parent
    return root / f"{cassette_path.stem}.shards"


def _calls_frame(calls: Sequence[Call]) -> Any:
    import pandas as pd

    return pd.DataFrame({"example_id": [c.example_id for c in calls], "sample": [c.sample for c in calls],
                         "api": [c.api for c in calls], "body": [orjson.dumps(c.body).decode() for c in calls]},
                        columns=list(CALL_COLUMNS))


def collect_rows(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame's rows on the driver, through Arrow: ``toArrow`` (Spark 4), else ``toPandas`` (Spark 3.5, the
    runtime of Databricks 14.3 and 15.4 LTS)."""
    if hasattr(frame, "toArrow"):
        rows: list[dict[str, Any]] = frame.toArrow().to_pylist()
        return rows
    return [dict(row) for row in frame.toPandas().to_dict("records")]


@contextmanager
def _executor_env(spark: Any, names: Sequence[str], redact: Sequence[str]) -> Iterator[None]:
    """The driver's credentials and endpoint variables (and the ``eval_redact`` lines) in the executors'
    environment for this job only. Spark Connect has no such channel: there the executors need them already
    (on Databricks, the cluster's environment variables)."""
    try:
        environment: dict[str, str] = spark.sparkContext.environment
    except Exception:
        yield
        return
    wanted = {name: value for name, value in os.environ.items() if FORWARDED_ENV.match(name) or name in names}
    if redact:
        wanted[REDACT_ENV] = orjson.dumps(list(redact)).decode()
    with _ENVIRONMENT:  # items run on Spark from several threads must not see each other's variables
        before = {name: environment.get(name) for name in wanted}
        environment.update(wanted)
        try:
            yield
        finally:
            for name, value in before.items():
                if value is None:
                    environment.pop(name, None)
                else:
                    environment[name] = value


def _in_order(calls: Sequence[Call], rows: list[dict[str, Any]]) -> list[Answer]:
    by_key = {(a.example_id, a.sample): a for a in map(answer_of, rows)}
    missing = [c for c in calls if (c.example_id, c.sample) not in by_key]
    if missing or len(rows) != len(calls):
        raise EvalsuiteError(f"engine: spark: the Spark job returned {len(rows)} answer(s) for {len(calls)} call(s)"
                             + (f" (none for example {missing[0].example_id!r})" if missing else ""))
    return [by_key[(c.example_id, c.sample)] for c in calls]


def _spark_failure(exc: BaseException) -> str:
    """The Python error a task raised (the last one in Spark's long message), else the message's first line."""
    text = str(exc)
    found = _PYTHON_ERROR.findall(text)
    if not found:
        return (text.strip().splitlines() or [type(exc).__name__])[0]
    kind, message = found[-1]
    if kind == "ModuleNotFoundError":  # the executors run another Python than the driver
        message += (" in the executors' Python: install evalsuite on the cluster (a notebook's %pip install does), "
                    "or point PYSPARK_PYTHON at this environment's Python before the session starts")
    return f"{kind}: {message.strip()}"
