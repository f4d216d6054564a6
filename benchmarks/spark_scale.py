"""engine: spark at scale (prints figures; not a test): recording on Spark local[2] vs the local engine, and the
replay of a 250k-row case.

1. RECORD, side by side in one run: the same 25,000-row case (the IMDB test split from
   ../shared/data/imdb-test.jsonl, read at run time; synthetic reviews when it is absent) recorded with
   ``runner.run_item(record_mode="once")`` by the local engine, then with ``--eval-engine spark`` on a
   ``local[2]`` SparkSession (two tasks, the same global concurrency), against the 127.0.0.1 chat server in
   a process of its own (``--latency`` per answer). Prints both wall times and their ratio (the session's
   start-up is printed apart: a notebook or a cluster pays it once), and whether the two cassettes hold the
   same (match key, response) set.
2. REPLAY of a 250,000-row case in a fresh process without pyspark (mode none, the CI path): the recorded rows
   repeated (10 copies of 25k), each copy's text prefixed with its copy number, so every row is its own
   prompt; its cassette is assembled from the recorded interactions (each copy's request is the real rendered
   prompt, its response the recording of the row it copies), since recording 250k calls here would take far
   longer than replaying them. Prints wall time (imports included), run_item time and peak RSS.
   ``--replay-only`` records the rows with the local engine only (no Spark), then replays.

This process runs with the cyclic garbage collector off: on a loaded 2-core machine (load 8-20) a full
collection during prompt rendering outlasted the templates' 2 s budget (``template too slow``),
twice at the same example. The replay child keeps it on, as users run.

Usage: python benchmarks/spark_scale.py [--data PATH] [--rows 25000] [--replay-rows 250000] [--latency 0.02]
                                        [--replay-only]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from replay_speed import CASE_FILE  # noqa: E402  # the same IMDB case, recorded and replayed at scale

DATA = REPO.parent / "shared" / "data" / "imdb-test.jsonl"
CONCURRENCY = 32  # the case's global budget: the Spark run splits it over its 2 tasks

WORDS = ("good great love excellent wonderful best bad awful hate worst boring terrible film plot actor scene music "
         "story director camera script ending pace cast moment twist dialogue").split()


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss would carry the parent's over fork + exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(port_queue: Any, stop: Any, latency: float) -> None:
    from tests._support.chat_server import ChatServer, sentiment_responder

    with ChatServer(sentiment_responder, latency_s=latency) as server:
        port_queue.put(server.port)
        stop.wait()


def write_root(root: Path, data: Path) -> Path:
    case = root / "cases" / "reviews.yaml"
    case.parent.mkdir(parents=True, exist_ok=True)
    case.write_text(CASE_FILE.format(data=json.dumps(str(data.resolve()))))
    return case


def rows_of(data: Path | None, n: int) -> list[dict[str, Any]]:
    """The first ``n`` IMDB reviews, or ``n`` synthetic ones (40 words from a sentiment vocabulary)."""
    if data is not None:
        with data.open() as handle:
            return [json.loads(line) for line, _ in zip(handle, range(n))]
    rng = random.Random(0)
    return [{"id": f"s{i}", "text": " ".join(rng.choice(WORDS) for _ in range(40)), "label": rng.randint(0, 1)}
            for i in range(n)]


def record(root: Path, engine: str | None) -> tuple[Any, float]:
    from evalsuite import runner
    from evalsuite.cases import load_suite
    from evalsuite.model import EngineSettings

    [run] = load_suite(root / "cases" / "reviews.yaml", root)
    settings = runner.RunSettings(rootdir=root, record_mode="once", engine_kind=engine,
                                  engine=EngineSettings(concurrency=CONCURRENCY))
    started = time.perf_counter()
    result = runner.run_item(run, settings)
    return result, time.perf_counter() - started


def recorded_set(cassette: Path) -> set[tuple[str, str, str]]:
    from evalsuite.cassettes._format import load
    from evalsuite.cassettes._keys import BUILT_IN_KEYS

    requests, responses, _ = load(cassette)
    found = set()
    for request, response in zip(requests, responses):
        body = json.loads(response["body"]["string"])
        body.pop("created")
        info = BUILT_IN_KEYS.of_request(request)
        found.add((info.key, info.tag, json.dumps(body, sort_keys=True)))
    return found


def accuracy(result: Any) -> float:
    return next(m.value for m in result.metrics if m.name == "accuracy")


def assemble_replay_case(root: Path, rows: list[dict[str, Any]], total: int, recorded_cassette: Path) -> int:
    """A ``total``-row case (copies of ``rows``) and its cassette: every copy's prompt rendered by evalsuite, its
    response the recording of the row it copies. Returns the cassette's size in bytes."""
    import orjson

    from evalsuite import dataset, prompts
    from evalsuite.cases import load_suite

    data = root / "rows.jsonl"
    root.mkdir(parents=True, exist_ok=True)
    with data.open("w") as handle:
        for index in range(total):
            copy, row = divmod(index, len(rows))[0], rows[index % len(rows)]
            text = row["text"] if copy == 0 else f"[copy {copy}] {row['text']}"
            handle.write(json.dumps({**row, "id": f"{row['id']}~{copy}", "text": text}) + "\n")
    case = write_root(root, data)
    [run] = load_suite(case, root)
    examples = dataset.load_examples(run.case.dataset, run.base_dir)
    calls = prompts.build_calls(run.case, examples)
    stored = orjson.loads(recorded_cassette.read_bytes())["interactions"]
    by_id = {i["request"]["headers"]["x-evalsuite-example"][0].rpartition("#")[0]: i for i in stored}
    interactions = []
    for call in calls:
        template = by_id[call.example_id.rpartition("~")[0]]
        request = {**template["request"], "body_json": call.body,
                   "headers": {**template["request"]["headers"], "x-evalsuite-example": [str(call.key)]}}
        request["headers"].pop("x-evalsuite-body-digest", None)
        interactions.append({"request": request, "response": template["response"]})
    cassette = root / "cassettes" / "imdb" / "imdb.json"
    cassette.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"dataset_fingerprint": dataset.fingerprint(examples), "item_id": "imdb"}
    cassette.write_bytes(orjson.dumps({"version": 1, "metadata": metadata, "interactions": interactions},
                                      option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return cassette.stat().st_size


def child_replay(root: Path) -> None:
    """Fresh process, pyspark blocked: load_suite + run_item(record_mode='none') of the assembled case."""
    started = time.perf_counter()
    sys.modules["pyspark"] = None  # type: ignore[assignment]  # replay must not need Spark
    from evalsuite import runner
    from evalsuite.cases import load_suite

    [run] = load_suite(root / "cases" / "reviews.yaml", root)
    result = runner.run_item(run, runner.RunSettings(rootdir=root, record_mode="none", engine_kind="spark"))
    print(json.dumps({"wall_s": time.perf_counter() - started, "run_item_s": result.wall_s, "n": result.n_examples,
                      "errors": result.errors, "accuracy": accuracy(result), "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rows", type=int, default=25_000)
    parser.add_argument("--replay-rows", type=int, default=250_000)
    parser.add_argument("--replay-only", action="store_true", help="record with the local engine only, then replay")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the chat server takes per answer")
    parser.add_argument("--child-replay", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_replay:
        return child_replay(args.child_replay)

    data = args.data if args.data.exists() else None
    gc.disable()  # see the module docstring
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HF_DATASETS_CACHE"] = str(Path(tmp) / "hf")  # datasets' Arrow cache of the 250k rows
        rows = rows_of(data, args.rows)
        source = Path(tmp) / "rows.jsonl"
        source.write_text("".join(json.dumps(row) + "\n" for row in rows))
        what = f"the first {len(rows):,} IMDB reviews" if data else f"{len(rows):,} synthetic reviews ({args.data} absent)"
        print(f"load: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} cores); {what}; chat server in its own "
              f"process, {args.latency * 1000:.0f} ms per answer; global concurrency {CONCURRENCY}")

        context = multiprocessing.get_context("spawn")
        ports, stop = context.Queue(), context.Event()
        server = context.Process(target=serve, args=(ports, stop, args.latency), daemon=True)
        server.start()
        try:
            port = ports.get(timeout=30)
            os.environ["OPENAI_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
            os.environ["OPENAI_API_KEY"] = "sk-bench-recording"
            write_root(Path(tmp) / "local", source)
            local, local_s = record(Path(tmp) / "local", None)
            if args.replay_only:
                raise _SkipSpark

            os.environ["PYSPARK_PYTHON"] = sys.executable
            started = time.perf_counter()
            from pyspark.sql import SparkSession

            spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
                     .config("spark.ui.showConsoleProgress", "false").getOrCreate())
            spark.sparkContext.setLogLevel("ERROR")
            session_s = time.perf_counter() - started
            write_root(Path(tmp) / "spark", source)
            spread, spark_s = record(Path(tmp) / "spark", "spark")
            spark.stop()
        except _SkipSpark:
            pass
        finally:
            stop.set()
            server.join(10)
        recorded_cassette = Path(tmp) / "local" / "cassettes" / "imdb" / "imdb.json"
        if not args.replay_only:
            report_recording(Path(tmp), rows, local, local_s, spread, spark_s, session_s)
        replay(Path(tmp) / "replay", rows, args.replay_rows, recorded_cassette)


class _SkipSpark(Exception):
    """--replay-only: no Spark run."""


def report_recording(tmp: Path, rows: list[dict[str, Any]], local: Any, local_s: float, spread: Any, spark_s: float,
                     session_s: float) -> None:
    same = recorded_set(tmp / "local" / "cassettes" / "imdb" / "imdb.json") == \
        recorded_set(tmp / "spark" / "cassettes" / "imdb" / "imdb.json")
    print(f"RECORD {len(rows):,} calls: local engine {local_s:.1f} s ({len(rows) / local_s:.0f} calls/s); "
          f"Spark local[2] {spark_s:.1f} s ({len(rows) / spark_s:.0f} calls/s; its first job, Python workers' "
          f"start-up included; session start-up {session_s:.1f} s apart); ratio Spark / local "
          f"{spark_s / local_s:.2f}; same (match key, response) set: {'yes' if same else 'NO'}; accuracy "
          f"{accuracy(local):.4f} / {accuracy(spread):.4f}; errors {local.errors} / {spread.errors}")


def replay(replay_root: Path, rows: list[dict[str, Any]], total: int, recorded_cassette: Path) -> None:
    size = assemble_replay_case(replay_root, rows, total, recorded_cassette)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    out = subprocess.run([sys.executable, __file__, "--child-replay", str(replay_root)], capture_output=True,
                         text=True, env=env)
    if out.returncode:
        sys.exit(f"replay failed:\n{out.stderr[-3000:]}")
    done = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"REPLAY {done['n']:,} rows ({math.ceil(total / len(rows))} copies; cassette {size / 1e6:.0f} MB) in a fresh "
          f"process without pyspark: {done['wall_s']:.1f} s wall incl. imports (run_item "
          f"{done['run_item_s']:.1f} s), peak RSS {done['peak_rss_mb']:.0f} MB; accuracy "
          f"{done['accuracy']:.4f}, errors {done['errors']}")


if __name__ == "__main__":
    main()
