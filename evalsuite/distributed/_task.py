"""What one Spark task runs: its partition's calls through the async engine, once, recorded into its own shard.

Runs in the executors' Python workers (pickled by Spark with cloudpickle), so :class:`PartitionTask` holds only
plain settings: the model (a case file holds no credentials), the engine's share of the budgets, and the run's
shard folder. Credentials come from the executor's environment, where the driver put them (``_spark``), and so
do the ``eval_redact`` lines, which are secrets too: nothing secret is ever in the pickled task.

Rows in and out are small: a call is its example id, sample, API and JSON body (rendered on the driver); an
answer comes back as its JSON (every ``Answer`` field, whatever fields it has), with the partition and task
attempt that produced it, which tell the driver the one shard per partition to merge.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from evalsuite.cases.schema import ModelSettings
from evalsuite.cassettes import CassetteOptions, open_cassette, seed_from_earlier_attempts, shard_path
from evalsuite.errors import EvalsuiteError
from evalsuite.model import EngineSettings, get_provider, recorded_answers, run_calls_sync
from evalsuite.records import Answer, Call

CALL_COLUMNS = ("example_id", "sample", "api", "body")
CALLS_SCHEMA = "example_id string, sample int, api string, body string"
ANSWER_SCHEMA = "answer string, partition int, attempt long"
REDACT_ENV = "EVALSUITE_REDACT_SECRET"  # the eval_redact lines, as JSON; the name marks the value as a secret
READY_FILE = "driver-ready"  # written by the driver into the run's folder: a task that cannot see it stops


@dataclass(frozen=True)
class PartitionTask:
    """``mapInPandas`` function: one engine run per partition (not per Arrow batch), recorded into a shard."""

    model: ModelSettings
    settings: EngineSettings
    run_dir: str
    metadata: dict[str, Any]

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd
        from pyspark import TaskContext

        calls = [Call(example_id, int(sample), api, orjson.loads(body))
                 for frame in batches
                 for example_id, sample, api, body in zip(*(frame[column] for column in CALL_COLUMNS))]
        if not calls:
            return
        run_dir = Path(self.run_dir)
        if not (run_dir / READY_FILE).exists():  # before anything is sent: its shard would never reach the driver
            raise EvalsuiteError(f"engine.shard_dir: this executor does not see the driver's shard folder {run_dir}; "
                                 "set engine.shard_dir to a folder the driver and every executor share (on a "
                                 "multi-node cluster, a /Volumes/... or /dbfs/... path)")
        context = TaskContext.get()
        if context is None:
            raise EvalsuiteError("PartitionTask runs inside a Spark task (mapInPandas), not on the driver")
        partition, attempt = context.partitionId(), context.taskAttemptId()
        path = shard_path(run_dir, partition, attempt)
        metadata = {**self.metadata, "partition": partition}
        seed_from_earlier_attempts(path, metadata)  # a retry replays what earlier attempts paid for
        options = CassetteOptions(redact=orjson.loads(os.environ.get(REDACT_ENV, "[]")))
        shard = open_cassette(path, "new_episodes", metadata=metadata, options=options)
        answers, to_send = recorded_answers(calls, shard, get_provider(self.model.provider).endpoint(self.model))
        try:
            sent = run_calls_sync([calls[i] for i in to_send], self.model, settings=self.settings, record=shard.record)
        except BaseException:
            shard.save_interrupted()
            raise
        shard.save()
        for index, answer in zip(to_send, sent):
            answers[index] = answer
        yield pd.DataFrame({"answer": [orjson.dumps(asdict(a)).decode() for a in answers if a is not None],
                            "partition": partition, "attempt": attempt})


def answer_of(row: dict[str, Any]) -> Answer:
    """The Answer a task sent back as JSON."""
    return Answer(**orjson.loads(row["answer"]))
