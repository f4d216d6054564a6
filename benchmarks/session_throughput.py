"""Whole suites through pytest against a bare SDK loop over the same calls (prints figures; not a test).

    python benchmarks/session_throughput.py [--rounds 3] [--only a|b] [--xdist 2] [--keep DIR] [--compare-with SRC]

Both sides are whole child processes started here and timed from spawn to exit, in interleaved rounds
against one chat server (tests/_support/chat_server.py) running in a process of its own:

- evalsuite: ``python -m pytest cases --record-mode=rewrite --eval-concurrency 32`` on a generated project
  (recording: every answer journaled, then each item's cassette saved);
- bare loop: ``python <this file> --bare BODIES URL 32``: one ``AsyncOpenAI``, a semaphore, ``gather`` over the
  exact request bodies evalsuite sent (read back from the server's log of the first evalsuite round).

(a) 1 item x 2,000 examples, 50 ms latency, concurrency 32 (target <= 1.1x the bare loop);
(b) 100 case files x 10 examples, 200 ms latency, concurrency 32 (target <= 1.2x; also with ``-n 2``).

Two more sides put the ratios in proportion: "pytest, evalsuite's plugins only" (the other installed pytest plugins
turned off with ``-p no:``, as for a user who installed only evalsuite: here the test extra brings hypothesis,
whose terminal summary imports it, ~0.8 s) and the "pytest floor" (pytest running the bare loop inside one test,
with the same plugins: what pytest itself costs, evalsuite's plugin loaded but unused).

``--compare-with SRC`` adds a third side in the same rounds: the same pytest command with ``PYTHONPATH=SRC``
(another checkout of evalsuite, e.g. ``git archive <commit> | tar -x -C SRC``), for before/after figures
measured under the same load.

What is whose: the server stamps its first request and last answer, so each wall time splits into
start-up (spawn -> first request: interpreter, imports, pytest collection, planning the first item),
the calls (first request -> last answer: the scheduler and engine against the bare loop's semaphore) and the
tail (last answer -> exit: scoring, reports). The calls are the session scheduler's; start-up and tail are
mostly whole-process overhead (imports, report writing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CASE = """\
suite: {suite}
cases:
  - id: {case}
    model: {{name: gpt-4o-mini, api: chat, temperature: 0, max_tokens: 4}}
    dataset: {{path: {data}, expected: label}}
    prompt:
      user: "Review: {{{{ text }}}}"
    parse:
      kind: label
      labels: {{positive: [positive], negative: [negative]}}
    metrics:
      accuracy: {{min: 0.5}}
"""
WORDS = ("good", "great", "bad", "awful", "fine", "boring", "excellent", "plot", "cast", "score")


# -- the server process ---------------------------------------------------------------------------


def _serve(conn: Connection, latency_s: float) -> None:
    sys.path.insert(0, str(ROOT))
    from aiohttp import web

    from tests._support.chat_server import ChatServer, sentiment_responder

    class StampedServer(ChatServer):
        """Stamps the first request's arrival and the last answer's departure (wall clock, shared with the parent)."""

        first: float | None = None
        last: float | None = None

        async def _handle(self, request: web.Request) -> web.StreamResponse:
            if self.first is None:
                self.first = time.time()
            response = await super()._handle(request)
            self.last = time.time()
            return response

    with StampedServer(sentiment_responder, latency_s=latency_s) as server:
        conn.send(server.port)
        while True:
            command = conn.recv()
            if command == "stop":
                return
            if command == "reset":
                server.requests.clear()
                server.headers.clear()
                server.statuses.clear()
                server.first = server.last = None
                conn.send(None)
            elif command == "stats":
                conn.send({"first": server.first, "last": server.last, "served": server.statuses[200],
                           "bodies": list(server.requests)})


class ServerProcess:
    def __init__(self, latency_s: float) -> None:
        self.conn, child = mp.Pipe()
        self.process = mp.get_context("spawn").Process(target=_serve, args=(child, latency_s), daemon=True)

    def __enter__(self) -> ServerProcess:
        self.process.start()
        self.base_url = f"http://127.0.0.1:{self.conn.recv()}/v1"
        return self

    def ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def __exit__(self, *exc: object) -> None:
        self.conn.send("stop")
        self.process.join(10)


# -- the project and the two sides ----------------------------------------------------------------


def review(i: int) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(12)) + f" (review {i})"


FLOOR = "pytest floor"  # pytest itself: one test running the bare loop, evalsuite's plugin loaded and unused
FLOOR_TEST = """\
import os
import sys

sys.path.insert(0, {benchmarks!r})
from session_throughput import bare_loop_main


def test_bare_loop():
    bare_loop_main(os.environ["EVALSUITE_BENCH_BODIES"], os.environ["OPENAI_BASE_URL"],
                   int(os.environ["EVALSUITE_BENCH_CONCURRENCY"]))
"""


def other_plugins_off() -> list[str]:
    """``-p no:NAME`` for every installed pytest plugin but evalsuite's and xdist's: what a user who installed only
    evalsuite runs (here, the test extra adds hypothesis, pytest-benchmark, anyio, pytest-recording...)."""
    from importlib.metadata import entry_points

    keep = {"evalsuite", "xdist.plugin", "xdist.looponfail"}
    return [arg for ep in entry_points(group="pytest11") if ep.name not in keep for arg in ("-p", f"no:{ep.name}")]


OTHER_PLUGINS_OFF = other_plugins_off()


def write_project(root: Path, files: int, examples: int) -> None:
    (root / "pytest.ini").write_text("[pytest]\n")
    data = root / "cases" / "data"
    data.mkdir(parents=True)
    for f in range(files):
        rows = [{"id": f"r{i}", "text": review(f * examples + i), "label": "positive" if i % 2 else "negative"}
                for i in range(examples)]
        (data / f"d{f}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        (root / "cases" / f"s{f:03d}.yaml").write_text(
            CASE.format(suite=f"s{f:03d}", case=f"c{f:03d}", data=f"data/d{f}.jsonl"))


def run_child(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(spawn wall time, seconds to exit, the process)."""
    spawned = time.time()
    start = time.perf_counter()
    process = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    return spawned, time.perf_counter() - start, process


def bare_loop_main(bodies_path: str, base_url: str, concurrency: int) -> None:
    """What a user writes by hand: one client, a semaphore, gather (the child process of the bare side)."""
    import openai

    bodies = [json.loads(line) for line in Path(bodies_path).read_text().splitlines()]

    async def main() -> int:
        semaphore = asyncio.Semaphore(concurrency)
        async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0) as client:
            async def one(body: dict[str, Any]) -> str | None:
                async with semaphore:
                    response = await client.chat.completions.create(**body)
                    return response.choices[0].message.content

            return len(await asyncio.gather(*(one(b) for b in bodies)))

    assert asyncio.run(main()) == len(bodies)


def measure(name: str, server: ServerProcess, root: Path, pytest_args: list[str], rounds: int, concurrency: int,
            variants: dict[str, list[str]], sources: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    env.update(OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=server.base_url)
    env.pop("PYTEST_ADDOPTS", None)
    bodies = root / "bodies.jsonl"
    floor = root / "floor" / "test_bare_loop.py"
    floor.parent.mkdir(exist_ok=True)
    floor.write_text(FLOOR_TEST.format(benchmarks=str(Path(__file__).parent)))
    env.update(EVALSUITE_BENCH_BODIES=str(bodies), EVALSUITE_BENCH_CONCURRENCY=str(concurrency))
    sides = ["bare", FLOOR, *variants]
    rows: dict[str, list[tuple[float, float, float, float]]] = {key: [] for key in sides}
    for round_no in range(rounds):
        for key in sides if round_no else [*variants, "bare", FLOOR]:  # round 0 logs the bodies first
            server.ask("reset")
            if key == "bare":
                command = [sys.executable, __file__, "--bare", str(bodies), server.base_url, str(concurrency)]
            elif key == FLOOR:
                command = [sys.executable, "-m", "pytest", str(floor), "-q", "-p", "no:cacheprovider", *OTHER_PLUGINS_OFF]
            else:
                shutil.rmtree(root / "cassettes", ignore_errors=True)
                command = [sys.executable, "-m", "pytest", "cases", "-q", "-p", "no:cacheprovider", *pytest_args,
                           *variants[key]]
            child_env = {**env, "PYTHONPATH": sources[key]} if key in sources else env
            spawned, wall, process = run_child(command, root, child_env)
            stats = server.ask("stats")
            if key == FLOOR and process.returncode != 0:
                raise SystemExit(f"pytest floor failed:\n{process.stdout[-3000:]}")
            if key not in ("bare", FLOOR) and process.returncode not in (0, 1):
                raise SystemExit(f"{key}: pytest exited {process.returncode}:\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}")
            if key == "bare" and process.returncode != 0:
                raise SystemExit(f"bare loop failed:\n{process.stderr[-3000:]}")
            if key not in ("bare", FLOOR) and not bodies.exists():
                bodies.write_text("".join(json.dumps(b) + "\n" for b in stats["bodies"]))
            first, last = stats["first"], stats["last"]
            rows[key].append((wall, first - spawned, last - first, spawned + wall - last))
            print(f"    round {round_no + 1} {key:<34} {wall:6.2f} s (start-up {first - spawned:5.2f} s, calls "
                  f"{last - first:5.2f} s, tail {spawned + wall - last:5.2f} s; {stats['served']} served)", flush=True)
    bare = rows["bare"]
    best_bare = min(r[0] for r in bare)
    best_bare_calls = min(r[2] for r in bare)
    print(f"\n{name}: best of {rounds} interleaved rounds, whole processes")
    print(f"    {'bare loop':<34} {best_bare:6.2f} s   calls {best_bare_calls:5.2f} s")
    for key in [FLOOR, *variants]:
        best = min(r[0] for r in rows[key])
        best_calls = min(r[2] for r in rows[key])
        per_round = sorted(r[0] / b[0] for r, b in zip(rows[key], bare))
        calls_ratio = sorted(r[2] / b[2] for r, b in zip(rows[key], bare))
        print(f"    {key:<34} {best:6.2f} s   calls {best_calls:5.2f} s   ratio whole process {best / best_bare:.2f}x "
              f"(per-round median {per_round[len(per_round) // 2]:.2f}x); calls only "
              f"{best_calls / best_bare_calls:.2f}x (median {calls_ratio[len(calls_ratio) // 2]:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bare", nargs=3, metavar=("BODIES", "URL", "CONCURRENCY"), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("a", "b"))
    parser.add_argument("--xdist", type=int, default=2, help="workers for (b)'s extra -n run (0: skip it)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--keep", type=Path, help="generate the projects here and keep them")
    parser.add_argument("--compare-with", metavar="SRC", help="also run pytest with PYTHONPATH=SRC (another checkout)")
    args = parser.parse_args()
    if args.bare:
        bare_loop_main(args.bare[0], args.bare[1], int(args.bare[2]))
        return
    load = os.getloadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; chat server in a separate process on 127.0.0.1")
    pytest_args = ["--record-mode=rewrite", "--eval-concurrency", str(args.concurrency)]
    alone = "pytest, evalsuite's plugins only"
    workloads = {"a": ("(a) 1 item x 2,000 examples, 50 ms latency", 1, 2000, 0.05,
                       {"pytest": [], alone: OTHER_PLUGINS_OFF}),
                 "b": ("(b) 100 case files x 10 examples, 200 ms latency", 100, 10, 0.2,
                       {"pytest": [], alone: OTHER_PLUGINS_OFF,
                        **({f"pytest -n {args.xdist}": ["-n", str(args.xdist)]} if args.xdist else {})})}
    base = args.keep or Path(tempfile.mkdtemp(prefix="evalsuite-session-bench-"))
    try:
        for key, (title, files, examples, latency, variants) in workloads.items():
            if args.only and key != args.only:
                continue
            root = base / key
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            write_project(root, files, examples)
            sources = {}
            if args.compare_with:
                for key in list(variants):
                    sources[f"{key} (SRC)"] = args.compare_with
                    variants[f"{key} (SRC)"] = variants[key]
            print(f"\n{title}, concurrency {args.concurrency}, recording (--record-mode=rewrite)"
                  + (f"; SRC = {args.compare_with}" if args.compare_with else ""))
            with ServerProcess(latency) as server:
                measure(title.split(" ")[0], server, root, pytest_args, args.rounds, args.concurrency, variants, sources)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
