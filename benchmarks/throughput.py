"""Engine throughput, fault tolerance and memory against tests/chat_server.py (prints figures).

    python benchmarks/throughput.py [--n 2000] [--latency 0.05] [--concurrency 32] [--skip-imdb] [--skip-waits]

The chat server runs in a separate process so the engine and the server share the machine's cores
the way a real client and a remote endpoint would not compete for one interpreter. Figures:

(a) 2,000 examples, 50 ms latency, concurrency 32: evalsuite engine vs a bare AsyncOpenAI +
    semaphore loop on the same requests, and vs the latency-only ideal (n / concurrency * latency).
(b) the same with 30% 429 (Retry-After: 1) + 5% 500: each example answered and served exactly once.
(c) every review of /work/shared/data/imdb-test.jsonl (read at run time, never copied) at 20 ms
    latency: wall time and the engine process's peak RSS; recorded to a cassette.
(d) the timing side of the engine's waits, which the unit tests check by counts and order only:
    Retry-After honoured, a too-long Retry-After not waited for, a requests-per-minute budget,
    a 404 not retried (in-process server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from evalsuite.cases.schema import ModelSettings  # noqa: E402
from evalsuite.model import EngineSettings, run_calls_sync  # noqa: E402
from evalsuite.records import Call  # noqa: E402

IMDB = Path("/work/shared/data/imdb-test.jsonl")


# -- the server process ---------------------------------------------------------------------------


def _serve(conn: Connection, options: dict[str, Any]) -> None:
    from tests._support.chat_server import ChatServer, sentiment_responder

    with ChatServer(sentiment_responder, **options) as server:
        conn.send(server.port)
        while True:
            command, arg = conn.recv()
            if command == "stop":
                return
            if command == "set":
                for name, value in arg.items():
                    setattr(server, name, value)
                server.requests.clear()
                server.headers.clear()
                server.statuses.clear()
                conn.send(None)
            elif command == "stats":
                served = Counter(h.get("x-evalsuite-example", h.get("X-Evalsuite-Example")) for h in server.headers)
                conn.send({"statuses": dict(server.statuses), "served": served})


class ServerProcess:
    def __init__(self, **options: Any) -> None:
        self.conn, child = mp.Pipe()
        self.process = mp.get_context("spawn").Process(target=_serve, args=(child, options), daemon=True)

    def __enter__(self) -> ServerProcess:
        self.process.start()
        self.port = self.conn.recv()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        return self

    def set(self, **attrs: Any) -> None:
        self.conn.send(("set", attrs))
        self.conn.recv()

    def stats(self) -> dict[str, Any]:
        self.conn.send(("stats", None))
        return self.conn.recv()

    def __exit__(self, *exc: object) -> None:
        self.conn.send(("stop", None))
        self.process.join(10)


# -- workloads ------------------------------------------------------------------------------------


def synthetic_calls(n: int) -> list[Call]:
    return [
        Call(f"ex{i}", 0, "chat",
             {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Review {i}: a good film, great cast."}],
              "temperature": 0, "max_tokens": 4})
        for i in range(n)
    ]


def imdb_calls() -> list[Call]:
    calls = []
    with IMDB.open() as fh:
        for line in fh:
            row = json.loads(line)
            calls.append(Call(row["id"], 0, "chat", {
                "model": "gpt-4o-mini", "temperature": 0, "max_tokens": 2,
                "messages": [{"role": "system", "content": "Answer Positive or Negative."},
                             {"role": "user", "content": row["text"]}]}))
    return calls


def model_for(base_url: str) -> ModelSettings:
    return ModelSettings(name="gpt-4o-mini", base_url=base_url)


async def bare_loop(calls: list[Call], base_url: str, concurrency: int) -> int:
    """What a user would write by hand: one client, a semaphore, gather."""
    semaphore = asyncio.Semaphore(concurrency)
    async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0) as client:
        async def one(call: Call) -> str | None:
            async with semaphore:
                response = await client.chat.completions.create(**call.body)
                return response.choices[0].message.content

        return len(await asyncio.gather(*(one(c) for c in calls)))


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def cpu_timed(fn: Any) -> tuple[float, float, Any]:
    """Wall seconds, this process's CPU seconds, result."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return wall, after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime, result


def exactly_once(calls: list[Call], answers: list[Any], served: Counter) -> str:
    tags = [f"{c.example_id}#{c.sample}" for c in calls]
    answered = Counter(f"{a.example_id}#{a.sample}" for a in answers)
    ok = all(answered[t] == 1 for t in tags) and len(answers) == len(calls)
    served_ok = all(served.get(t, 0) == 1 for t in tags)
    errors = sum(not a.ok for a in answers)
    return (f"answers once each: {'yes' if ok else 'NO'}; served (200) once each: {'yes' if served_ok else 'NO'}; "
            f"error answers: {errors}")


def _imdb_child(base_url: str, concurrency: int, record: bool, conn: Connection) -> None:
    calls = imdb_calls()
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    settings = EngineSettings(concurrency=concurrency)
    note = "not recorded (--no-record)"
    with tempfile.TemporaryDirectory() as tmp:
        if record:
            from evalsuite.cassettes import open_cassette

            cassette = Path(tmp) / "imdb.json"
            handle = open_cassette(cassette, "all", metadata={"benchmark": "throughput"})
            wall, answers = timed(lambda: run_calls_sync(calls, model_for(base_url), settings=settings,
                                                         record=handle.record))
            handle.save()
            note = f"recorded as the session scheduler does (mode all): cassette {cassette.stat().st_size / 1e6:.1f} MB"
        else:
            wall, answers = timed(lambda: run_calls_sync(calls, model_for(base_url), settings=settings))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send({"n": len(calls), "wall": wall, "ok": sum(a.ok for a in answers), "rss_loaded": rss_loaded,
               "peak": peak, "note": note})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--imdb-latency", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-synthetic", action="store_true", help="run only (c)")
    parser.add_argument("--skip-imdb", action="store_true", help="skip (c)")
    parser.add_argument("--no-record", action="store_true", help="(c) without a cassette")
    parser.add_argument("--skip-waits", action="store_true", help="skip (d)")
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    print(f"python {sys.version.split()[0]}, openai {openai.__version__}, {os.cpu_count()} cores; "
          "chat server in a separate process on 127.0.0.1")

    if not args.skip_synthetic:
        synthetic(args)
    if not args.skip_imdb:
        imdb(args)
    if not args.skip_waits:
        waits()


def synthetic(args: argparse.Namespace) -> None:
    calls = synthetic_calls(args.n)
    ideal = args.n / args.concurrency * args.latency
    with ServerProcess(latency_s=args.latency) as server:
        # warm both paths once (imports, connection pool) so neither pays start-up in its figure
        asyncio.run(bare_loop(calls[:64], server.base_url, args.concurrency))
        run_calls_sync(calls[:64], model_for(server.base_url), settings=EngineSettings(concurrency=args.concurrency))
        engine_settings = EngineSettings(concurrency=args.concurrency)
        bare_runs, engine_runs = [], []
        for _ in range(args.rounds):  # interleaved, so load from other processes hits both alike
            server.set()
            bare_runs.append(cpu_timed(lambda: asyncio.run(bare_loop(calls, server.base_url, args.concurrency))))
            server.set()
            wall, cpu, answers = cpu_timed(lambda: run_calls_sync(calls, model_for(server.base_url), settings=engine_settings))
            engine_runs.append((wall, cpu, answers))
        bare_s, bare_cpu = min(r[0] for r in bare_runs), min(r[1] for r in bare_runs)
        engine_s, engine_cpu = min(r[0] for r in engine_runs), min(r[1] for r in engine_runs)
        ratios = sorted(e[0] / b[0] for e, b in zip(engine_runs, bare_runs))
        print(f"\n(a) {args.n} examples, {args.latency * 1000:g} ms latency, concurrency {args.concurrency}; "
              f"best of {args.rounds} interleaved rounds (wall / client CPU)")
        print(f"    bare AsyncOpenAI + semaphore: {bare_s:6.2f} s / {bare_cpu:5.2f} s CPU")
        print(f"    evalsuite engine:             {engine_s:6.2f} s / {engine_cpu:5.2f} s CPU")
        print(f"    ratio engine / bare: wall {engine_s / bare_s:.3f}x (per-round median {ratios[len(ratios) // 2]:.3f}x), "
              f"CPU {engine_cpu / bare_cpu:.3f}x; target <= 1.1x")
        print(f"    latency-only ideal:           {ideal:6.2f} s   engine / ideal {engine_s / ideal:.2f}x")
        print(f"    {exactly_once(calls, engine_runs[-1][2], server.stats()['served'])}")

        server.set(rate_limit_fraction=0.3, server_error_fraction=0.05, retry_after_s=1.0)
        faults_s, answers = timed(lambda: run_calls_sync(calls, model_for(server.base_url), settings=engine_settings))
        stats = server.stats()
        print("\n(b) same with 30% 429 (Retry-After: 1) + 5% 500")
        print(f"    wall {faults_s:.2f} s; server statuses {stats['statuses']}; "
              f"retries {sum(a.retries for a in answers)}")
        print(f"    {exactly_once(calls, answers, stats['served'])}")
        give_up = args.n * 0.35 ** (engine_settings.max_retries + 1)
        print(f"    (a call fails 35% of tries: {args.n} x 0.35^{engine_settings.max_retries + 1} = {give_up:.1f} "
              f"expected to exhaust max_retries={engine_settings.max_retries} and end as error answers)")
        for answer in answers:
            if not answer.ok:
                print(f"    error answer {answer.example_id}: {answer.error_kind}: {answer.error}")



def imdb(args: argparse.Namespace) -> None:
    if not IMDB.is_file():
        print(f"\n(c) skipped: {IMDB} not found")
        return
    with ServerProcess(latency_s=args.imdb_latency) as server:
        parent, child = mp.Pipe()
        worker = mp.get_context("spawn").Process(target=_imdb_child, args=(server.base_url, args.concurrency, not args.no_record, child))
        worker.start()
        result = parent.recv()
        worker.join()
        served = server.stats()["served"]
    print(f"\n(c) imdb-test.jsonl: {result['n']} reviews, {args.imdb_latency * 1000:g} ms latency, "
          f"concurrency {args.concurrency} ({result['note']})")
    print(f"    wall {result['wall']:.1f} s; answered ok {result['ok']}; served {sum(served.values())}")
    print(f"    engine process peak RSS {result['peak']:.0f} MB (after loading the calls: "
          f"{result['rss_loaded']:.0f} MB; target <= 1024 MB)")


def waits() -> None:
    from tests._support.chat_server import ChatServer

    calls = synthetic_calls(30)
    print("\n(d) waits (in-process server)")
    with ChatServer(rate_limit_first=1, retry_after_s=0.3) as server:
        wall, [answer] = timed(lambda: run_calls_sync(calls[:1], model_for(server.base_url)))
    print(f"    Retry-After 0.3 s: ok={answer.ok} after {answer.retries} retry in {wall:.2f} s (expected >= 0.30)")
    with ChatServer(rate_limit_fraction=1.0, retry_after_s=30) as server:
        wall, [answer] = timed(lambda: run_calls_sync(calls[:1], model_for(server.base_url),
                                                      settings=EngineSettings(max_retry_after=0.1)))
    print(f"    Retry-After 30 s beyond max_retry_after 0.1 s: {answer.error_kind} in {wall:.2f} s (expected < 1)")
    with ChatServer() as server:
        wall, answers = timed(lambda: run_calls_sync(calls, model_for(server.base_url),
                                                     settings=EngineSettings(requests_per_minute=1200)))
        nope = server.base_url.replace("/v1", "/nope")
        wall_404, [missing] = timed(lambda: run_calls_sync(calls[:1], model_for(nope),
                                                           settings=EngineSettings(backoff_base=1.0)))
    print(f"    30 calls at 1200 requests/minute: {sum(a.ok for a in answers)} ok in {wall:.2f} s "
          "(expected >= 0.45: 20/s after a one-second burst)")
    print(f"    HTTP 404 with backoff_base 1 s: {missing.retries} retries in {wall_404:.2f} s (expected < 1)")


if __name__ == "__main__":
    main()
