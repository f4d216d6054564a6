"""Replay speed of evalsuite's real pipeline against stock vcrpy (prints figures; not a test).

1. Writes ``cases/imdb.yaml`` in a temp root: dataset ``path:`` = the absolute path of
   ../shared/data/imdb-test.jsonl (read at run time, never copied), a chat prompt asking for
   Positive/Negative, ``parse: label``, metric ``accuracy``. Records it once with
   ``runner.run_item(..., record_mode="once")`` (64 requests in flight) against the 127.0.0.1 chat
   server (``sentiment_responder``) running in a separate process, so it does not share our GIL.
2. HEADLINE: in a fresh subprocess (so its peak RSS, ``VmHWM``, is the replay's own), with no ``OPENAI_*`` set,
   times ``cases.load_suite`` + ``runner.run_item(..., record_mode="none")`` end to end: dataset load,
   prompts, direct replay from the cassette index, parsing, accuracy and its Wilson interval.
   Target: <= 5 s and <= 1 GB; the accuracy must equal the recording run's. A second fresh process
   times the stages separately (cassette load = ``use_cassette`` entry).
3. The same 5,000 interactions three ways: stock vcrpy (``match_on`` + body, JSON serializer; quadratic,
   so only its first and last requests are timed and the total is EXTRAPOLATED), evalsuite through
   the SDK + vcrpy transport (``run_item`` in mode ``new_episodes`` with everything recorded), and
   evalsuite's direct index replay (``run_item`` in mode ``none``); both evalsuite paths in full.

Usage: python benchmarks/replay_speed.py [--data PATH] [--limit N] [--stock-first 300] [--stock-last 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data" / "imdb-test.jsonl"
DEAD_URL = "http://127.0.0.1:9/v1"  # replay must never connect
CONCURRENCY = 64
STOCK_N = 5000

CASE_FILE = """\
suite: imdb
cases:
  - id: imdb
    model: {{name: test-model, api: chat, temperature: 0, max_tokens: 2}}
    dataset:
      path: {data}
      id: id
      expected: label
      label_names: [negative, positive]
    prompt:
      system: "Classify the movie review as Positive or Negative. Answer with one word: Positive or Negative."
      user: "{{{{ text }}}}"
    parse:
      kind: label
      labels: {{positive: [positive], negative: [negative]}}
    metrics: [accuracy]
"""


def peak_rss_mb() -> float:
    """This process's own peak RSS. ``ru_maxrss`` is not: Linux carries the high-water mark over
    fork + exec, so a child of the (large) recording process reported the parent's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:  # no /proc (not Linux)
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_root(root: Path, data: Path) -> Path:
    case = root / "cases" / "imdb.yaml"
    case.parent.mkdir(parents=True, exist_ok=True)
    case.write_text(CASE_FILE.format(data=json.dumps(str(data.resolve()))))
    return case


def summary(result: Any) -> dict[str, Any]:
    [acc] = [m for m in result.metrics if m.name == "accuracy"]
    return {"n": result.n_examples, "accuracy": acc.value, "ci": [acc.ci_low, acc.ci_high], "interval": acc.interval,
            "errors": result.errors, "unparsed": result.unparsed, "interactions": result.meta["cassette_interactions"]}


# -- chat server in its own process ------------------------------------------------------------------


def serve(port_queue: Any, stop: Any) -> None:
    from tests._support.chat_server import ChatServer, sentiment_responder

    with ChatServer(sentiment_responder) as server:
        port_queue.put(server.port)
        stop.wait()


# -- child processes (fresh interpreters: imports, dataset load and peak RSS are their own) ------------


def child_pipeline(root: Path, limit: int | None, mode: str) -> None:
    """``load_suite`` + ``run_item``: mode none = direct index replay, new_episodes = SDK + vcrpy transport."""
    started = time.perf_counter()
    from evalsuite import runner
    from evalsuite.cases import load_suite
    from evalsuite.model import EngineSettings

    [run] = load_suite(root / "cases" / "imdb.yaml", root)
    settings = runner.RunSettings(rootdir=root, record_mode=mode, limit=limit,
                                  engine=EngineSettings(concurrency=CONCURRENCY, max_retries=0))
    result = runner.run_item(run, settings)
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "run_item_s": result.wall_s, "peak_rss_mb": peak_rss_mb(), **summary(result)}))


def child_breakdown(root: Path, limit: int | None) -> None:
    """The stages of a mode-none run, timed one by one (same calls as ``run_item``)."""
    marks: dict[str, float] = {}
    t = time.perf_counter()
    from evalsuite import dataset, prompts, runner
    from evalsuite.cases import load_suite
    from evalsuite.cassettes import use_cassette
    from evalsuite.model import recorded_answers

    marks["imports"] = time.perf_counter() - t
    t = time.perf_counter()
    [run] = load_suite(root / "cases" / "imdb.yaml", root)
    marks["load_suite"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = dataset.load_examples(run.case.dataset, run.base_dir, limit=limit)
    marks["dataset"] = time.perf_counter() - t
    marks["rss_after_dataset_mb"] = peak_rss_mb()
    t = time.perf_counter()
    calls = prompts.build_calls(run.case, rows)
    marks["prompts"] = time.perf_counter() - t
    path = runner.cassette_path(run, runner.RunSettings(rootdir=root))
    t = time.perf_counter()
    with use_cassette(path, "none", metadata={}) as handle:
        marks["cassette_load"] = time.perf_counter() - t
        marks["rss_after_cassette_mb"] = peak_rss_mb()
        t = time.perf_counter()
        endpoint = runner.get_provider(run.case.model.provider).endpoint(run.case.model)
        answers, _ = recorded_answers(calls, handle, endpoint)
        marks["replay"] = time.perf_counter() - t
    marks["peak_rss_mb"] = peak_rss_mb()
    assert all(a is not None and a.ok for a in answers), "replay missed calls"
    print(json.dumps(marks))


def child_stock(cassette: Path, first: int, last: int) -> None:
    """Stock vcrpy: replay requests 0..first-1 and the last ``last`` of a STOCK_N-interaction cassette."""
    import openai
    import vcr

    stored = json.loads(cassette.read_text())["interactions"]
    bodies = [json.loads(i["request"]["body"]) for i in stored]
    tags = [i["request"]["headers"]["x-evalsuite-example"][0] for i in stored]
    base_url = stored[0]["request"]["uri"].rsplit("/chat/", 1)[0]
    stock = vcr.VCR(serializer="json", record_mode="none",
                    match_on=["method", "scheme", "host", "port", "path", "query", "body"])

    async def replay(indices: list[int]) -> list[str | None]:
        limit = asyncio.Semaphore(CONCURRENCY)
        async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0) as client:

            async def one(i: int) -> str | None:
                async with limit:
                    response = await client.chat.completions.create(
                        **bodies[i], extra_headers={"x-evalsuite-example": tags[i]})
                    return response.choices[0].message.content

            return await asyncio.gather(*(one(i) for i in indices))

    n = len(bodies)
    started = time.perf_counter()
    with stock.use_cassette(str(cassette)):
        load_s = time.perf_counter() - started
        timings = []
        for group in (list(range(first)), list(range(n - last, n))):
            t0 = time.perf_counter()
            answers = asyncio.run(replay(group))
            timings.append(time.perf_counter() - t0)
            assert all(answers)
    print(json.dumps({"load_s": load_s, "first_s": timings[0], "last_s": timings[1], "first": first, "last": last}))


def run_child(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"child {args[:2]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def offline_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    return {**env, **extra}


# -- main -------------------------------------------------------------------------------------------


def record(root: Path, limit: int | None) -> tuple[dict[str, Any], float]:
    from evalsuite import runner
    from evalsuite.cases import load_suite
    from evalsuite.model import EngineSettings

    context = multiprocessing.get_context("spawn")
    ports, stop = context.Queue(), context.Event()
    server = context.Process(target=serve, args=(ports, stop), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=30)
        os.environ["OPENAI_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
        os.environ["OPENAI_API_KEY"] = "sk-bench-recording"
        [run] = load_suite(root / "cases" / "imdb.yaml", root)
        started = time.perf_counter()
        result = runner.run_item(run, runner.RunSettings(rootdir=root, record_mode="once", limit=limit,
                                                         engine=EngineSettings(concurrency=CONCURRENCY)))
        return summary(result), time.perf_counter() - started
    finally:
        for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
            os.environ.pop(name, None)
        stop.set()
        server.join(10)


def write_subsets(cassette: Path, order: list[str], ours: Path, stock: Path) -> None:
    """The first STOCK_N rows' interactions, in dataset order, as an evalsuite and a stock vcrpy cassette."""
    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.serializers import jsonserializer

    from evalsuite.cassettes import _format as recording

    requests, responses, metadata = recording.AtomicPersister.load_cassette(cassette, recording.JsonSerializer)
    by_tag = {r.headers["x-evalsuite-example"]: (r, resp) for r, resp in zip(requests, responses)}
    pairs = [by_tag[f"{row_id}#0"] for row_id in order[:STOCK_N]]
    subset = {"requests": [r for r, _ in pairs], "responses": [r for _, r in pairs], "metadata": metadata}
    ours.parent.mkdir(parents=True, exist_ok=True)
    recording.AtomicPersister.save_cassette(ours, subset, recording.JsonSerializer)
    FilesystemPersister.save_cassette(stock, {"requests": subset["requests"], "responses": subset["responses"]},
                                      serializer=jsonserializer)


def first_ids(data: Path, n: int) -> list[str]:
    ids = []
    with data.open() as f:
        for line in f:
            ids.append(json.loads(line)["id"])
            if len(ids) >= n:
                break
    return ids


def fmt_acc(s: dict[str, Any]) -> str:
    return f"accuracy {s['accuracy']:.4f} (Wilson 95% [{s['ci'][0]:.4f}, {s['ci'][1]:.4f}])"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N reviews")
    parser.add_argument("--stock-first", type=int, default=300)
    parser.add_argument("--stock-last", type=int, default=40)
    parser.add_argument("--child", choices=["pipeline", "breakdown", "stock"], help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="none", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cassette", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "pipeline":
        return child_pipeline(args.root, args.limit, args.mode)
    if args.child == "breakdown":
        return child_breakdown(args.root, args.limit)
    if args.child == "stock":
        return child_stock(args.cassette, args.stock_first, args.stock_last)

    if not args.data.exists():
        print(f"SKIP: {args.data} not found (the benchmark reads it at run time; it is not in the repo)")
        return
    limit_arg = ["--limit", str(args.limit)] if args.limit else []  # the recording and the replays alike
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "full"
        write_root(root, args.data)
        live, record_s = record(root, args.limit)
        cassette = root / "cassettes" / "imdb" / "imdb.json"
        print(f"recorded {live['interactions']:,} interactions via run_item(record_mode='once'), concurrency "
              f"{CONCURRENCY}, server in its own process: {record_s:.1f} s; {fmt_acc(live)}; "
              f"cassette {cassette.stat().st_size / 1e6:.1f} MB")

        replay = run_child("--child", "pipeline", "--root", str(root), *limit_arg, env=offline_env())
        same = "equal to the recording" if replay["accuracy"] == live["accuracy"] else "DIFFERS FROM THE RECORDING"
        print(f"HEADLINE replay, fresh process, no OPENAI_* set: load_suite + run_item(record_mode='none') on "
              f"{replay['n']:,} examples: {replay['wall_s']:.2f} s wall incl. imports (run_item {replay['run_item_s']:.2f} s; "
              f"target <= 5 s); peak RSS {replay['peak_rss_mb']:.0f} MB (target <= 1024 MB); "
              f"{fmt_acc(replay)}, {same}; errors {replay['errors']}, unparsed {replay['unparsed']}")
        parts = run_child("--child", "breakdown", "--root", str(root), *limit_arg, env=offline_env())
        print("  breakdown (second fresh process): " + ", ".join(
            f"{k} {v:.0f}" if k.endswith("_mb") else f"{k} {v:.2f} s" for k, v in parts.items())
              + "; parsing + metric + Wilson interval are the rest of run_item")

        n = live["n"]
        if n < STOCK_N:
            print(f"the 5,000-interaction comparison needs {STOCK_N:,} rows; only {n:,} used")
            return
        root5k = Path(tmp) / "5k"
        write_root(root5k, args.data)
        ours5k, stock5k = root5k / "cassettes" / "imdb" / "imdb.json", Path(tmp) / "stock5k.json"
        write_subsets(cassette, first_ids(args.data, STOCK_N), ours5k, stock5k)
        five = ["--root", str(root5k), "--limit", str(STOCK_N)]
        direct = run_child("--child", "pipeline", *five, env=offline_env())
        sdk = run_child("--child", "pipeline", "--mode", "new_episodes", *five,
                        env=offline_env(OPENAI_API_KEY="sk-bench-replay", OPENAI_BASE_URL=DEAD_URL))
        stock = run_child("--child", "stock", "--cassette", str(stock5k),
                          "--stock-first", str(args.stock_first), "--stock-last", str(args.stock_last))

    # Stock vcrpy's cost for the request matching interaction i grows linearly with i (it scans and
    # body-diffs every earlier one, twice). Mean cost of the first block sits at position
    # (first-1)/2, of the last block at STOCK_N - (last+1)/2; fit a + b*pos and sum over 0..N-1.
    first, last = stock["first"], stock["last"]
    pos_first, pos_last = (first - 1) / 2, STOCK_N - (last + 1) / 2
    cost_first, cost_last = stock["first_s"] / first, stock["last_s"] / last
    slope = (cost_last - cost_first) / (pos_last - pos_first)
    intercept = cost_first - slope * pos_first
    stock_total = STOCK_N * intercept + slope * STOCK_N * (STOCK_N - 1) / 2 + stock["load_s"]
    print(f"same {STOCK_N:,} interactions, three paths (fresh process each):")
    print(f"  stock vcrpy (JSON cassette, match_on + body, AsyncOpenAI): load {stock['load_s']:.2f} s; MEASURED "
          f"requests 0-{first - 1} in {stock['first_s']:.1f} s and the last {last} in {stock['last_s']:.1f} s "
          f"({cost_last * 1000:.0f} ms each); EXTRAPOLATED (linear cost per position, quadratic total) "
          f"all {STOCK_N:,}: ~{stock_total:,.0f} s")
    for label, r in (("evalsuite via SDK + vcrpy transport (run_item, mode new_episodes, all recorded)", sdk),
                     ("evalsuite direct index replay (run_item, mode none)", direct)):
        print(f"  {label}: MEASURED in full {r['wall_s']:.2f} s wall incl. imports (run_item {r['run_item_s']:.2f} s), "
              f"peak RSS {r['peak_rss_mb']:.0f} MB, {fmt_acc(r)}, errors {r['errors']}")
    print(f"  ratio stock (extrapolated) / evalsuite SDK path ~{stock_total / sdk['run_item_s']:,.0f}x; "
          f"/ direct replay ~{stock_total / direct['run_item_s']:,.0f}x (run_item times)")


if __name__ == "__main__":
    main()
