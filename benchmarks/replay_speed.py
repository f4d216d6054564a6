"""Replay speed of evalsuite cassettes against stock vcrpy (prints figures; not a test).

1. Records every review of ../shared/data/imdb-test.jsonl (read at run time, never copied) from the
   127.0.0.1 chat server (``sentiment_responder``) through ``AsyncOpenAI`` with 64 requests in flight.
2. In a fresh subprocess (so peak RSS is the replay's own): loads the cassette, replays every request
   offline, scores accuracy; reports wall time and ``ru_maxrss``. Target: <= 5 s and <= 1 GB.
3. Ratio on 5,000 interactions: evalsuite's cassette replays all 5,000; stock vcrpy
   (``vcr.VCR(match_on=[..., "body"])``, JSON serializer) is quadratic (~1.5 h at 5,000), so only its
   first requests and its last ones are timed and the total is extrapolated (stated in the output).

Usage: python benchmarks/replay_speed.py [--data PATH] [--limit N] [--stock-first 300] [--stock-last 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx2  # noqa: E402
import openai  # noqa: E402
import orjson  # noqa: E402

from evalsuite import recording  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "imdb-test.jsonl"
DEAD_URL = "http://127.0.0.1:9/v1"  # replay must never connect
CONCURRENCY = 64
STOCK_N = 5000


def load_rows(path: Path, limit: int | None) -> list[dict[str, Any]]:
    rows = []
    with path.open() as f:
        for line in f:
            rows.append(json.loads(line))
            if limit is not None and len(rows) >= limit:
                break
    return rows


def body(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "test-model",
        "temperature": 0,
        "max_tokens": 2,
        "messages": [
            {"role": "system", "content": "Classify the review as Positive or Negative."},
            {"role": "user", "content": row["text"]},
        ],
    }


def example_headers(row: dict[str, Any]) -> dict[str, str]:
    return {"x-evalsuite-example": f"{row['id']}#0", "x-evalsuite-sent-at": repr(time.time())}


async def run_all(base_url: str, rows: list[dict[str, Any]], client_kind: str = "sdk") -> list[str | None]:
    """Minimal engine: one request per row, 64 in flight, answers in row order.

    ``sdk``: ``AsyncOpenAI.chat.completions.create`` (what the engine does). ``raw``: the same requests
    from a bare ``httpx2.AsyncClient`` through the same vcrpy patch, to separate the SDK's own cost.
    """
    limit = asyncio.Semaphore(CONCURRENCY)
    if client_kind == "raw":
        async with httpx2.AsyncClient() as http:

            async def raw(row: dict[str, Any]) -> str | None:
                async with limit:
                    response = await http.post(
                        base_url + "/chat/completions", content=orjson.dumps(body(row)),
                        headers={**example_headers(row), "content-type": "application/json"},
                    )
                    return orjson.loads(response.content)["choices"][0]["message"]["content"]

            return await asyncio.gather(*(raw(row) for row in rows))
    async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0) as client:

        async def one(row: dict[str, Any]) -> str | None:
            async with limit:
                response = await client.chat.completions.create(
**body(row), extra_headers=example_headers(row))
                return response.choices[0].message.content

        return await asyncio.gather(*(one(row) for row in rows))


def accuracy(rows: list[dict[str, Any]], answers: list[str | None]) -> float:
    predicted = [1 if (a or "").strip().lower().startswith("positive") else 0 for a in answers]
    return sum(p == row["label"] for p, row in zip(predicted, rows)) / len(rows)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# -- child processes ------------------------------------------------------------------------------


def child_replay(cassette: Path, data: Path, limit: int | None, client_kind: str) -> None:
    started = time.perf_counter()
    rows = load_rows(data, limit)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    with recording.use_cassette(cassette, "none", metadata={}) as handle:
        loaded_s = time.perf_counter() - started
        answers = asyncio.run(run_all(DEAD_URL, rows, client_kind))
    acc = accuracy(rows, answers)
    total_s = time.perf_counter() - started
    print(json.dumps({
        "n": len(rows), "read_data_s": read_s, "load_s": loaded_s, "replay_and_score_s": total_s,
        "played": handle.n_played, "accuracy": acc, "peak_rss_mb": peak_rss_mb(),
    }))


def child_stock(cassette: Path, data: Path, first: int, last: int) -> None:
    """Stock vcrpy: replay requests 0..first-1 and the last `last` ones of a STOCK_N-interaction cassette."""
    import vcr

    rows = load_rows(data, STOCK_N)
    stock = vcr.VCR(
        serializer="json", record_mode="none",
        match_on=["method", "scheme", "host", "port", "path", "query", "body"],
    )
    base_url = json.loads(cassette.read_text())["interactions"][0]["request"]["uri"].rsplit("/chat/", 1)[0]
    started = time.perf_counter()
    with stock.use_cassette(str(cassette)):
        load_s = time.perf_counter() - started
        timings = []
        for group in (rows[:first], rows[-last:]):
            t0 = time.perf_counter()
            answers = asyncio.run(run_all(base_url, group))
            timings.append(time.perf_counter() - t0)
            assert all(answers)
    print(json.dumps({"load_s": load_s, "first_s": timings[0], "last_s": timings[1], "first": first, "last": last}))


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- main -------------------------------------------------------------------------------------------


def write_subsets(cassette: Path, order: list[str], ours: Path, stock: Path) -> None:
    """The first STOCK_N rows' interactions, in dataset order, as an evalsuite and a stock vcrpy cassette."""
    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.serializers import jsonserializer

    requests, responses, metadata = recording.AtomicPersister.load_cassette(cassette, recording.JsonSerializer)
    by_tag = {r.headers["x-evalsuite-example"]: (r, resp) for r, resp in zip(requests, responses)}
    pairs = [by_tag[f"{row_id}#0"] for row_id in order[:STOCK_N]]
    subset = {"requests": [r for r, _ in pairs], "responses": [r for _, r in pairs], "metadata": metadata}
    recording.AtomicPersister.save_cassette(ours, subset, recording.JsonSerializer)
    FilesystemPersister.save_cassette(stock, {"requests": subset["requests"], "responses": subset["responses"]},
                                      serializer=jsonserializer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N reviews")
    parser.add_argument("--stock-first", type=int, default=300)
    parser.add_argument("--stock-last", type=int, default=40)
    parser.add_argument("--client", choices=["sdk", "raw"], default="sdk", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["replay", "stock"], help=argparse.SUPPRESS)
    parser.add_argument("--cassette", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "replay":
        return child_replay(args.cassette, args.data, args.limit, args.client)
    if args.child == "stock":
        return child_stock(args.cassette, args.data, args.stock_first, args.stock_last)

    if not args.data.exists():
        print(f"SKIP: {args.data} not found (the benchmark reads it at run time; it is not in the repo)")
        return
    from tests.chat_server import ChatServer, sentiment_responder

    rows = load_rows(args.data, args.limit)
    n = len(rows)
    with tempfile.TemporaryDirectory() as tmp:
        cassette = Path(tmp) / "imdb" / "sentiment.json"
        with ChatServer(sentiment_responder) as server:
            started = time.perf_counter()
            with recording.use_cassette(cassette, "once", metadata={"item_id": "imdb", "dataset_fingerprint": "-"}) as h:
                answers = asyncio.run(run_all(server.base_url, rows))
            record_s = time.perf_counter() - started
        live_acc = accuracy(rows, answers)
        size_mb = cassette.stat().st_size / 1e6
        print(f"recorded {h.n_recorded:,} interactions in {record_s:.1f} s (live accuracy {live_acc:.4f}); "
              f"cassette {size_mb:.1f} MB")

        data_arg = ["--data", str(args.data)] + (["--limit", str(args.limit)] if args.limit else [])
        for kind in ("sdk", "raw"):
            replay = run_child("--child", "replay", "--client", kind, "--cassette", str(cassette), *data_arg)
            label = "AsyncOpenAI" if kind == "sdk" else "bare httpx2 client (SDK cost excluded)"
            print(f"replay of {replay['n']:,} via {label}, fresh process: cassette load {replay['load_s']:.2f} s, "
                  f"load + replay + scoring {replay['replay_and_score_s']:.2f} s (target <= 5 s), "
                  f"peak RSS {replay['peak_rss_mb']:.0f} MB (target <= 1024 MB); "
                  f"accuracy {replay['accuracy']:.4f} (live {live_acc:.4f}); played {replay['played']:,}")

        if n < STOCK_N:
            print(f"stock vcrpy comparison needs {STOCK_N:,} rows; only {n:,} used")
            return
        ours5k, stock5k = Path(tmp) / "ours5k.json", Path(tmp) / "stock5k.json"
        write_subsets(cassette, [row["id"] for row in rows], ours5k, stock5k)
        ours = run_child("--child", "replay", "--cassette", str(ours5k), "--data", str(args.data), "--limit", str(STOCK_N))
        stock = run_child("--child", "stock", "--cassette", str(stock5k), "--data", str(args.data),
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
    print(f"stock vcrpy, {STOCK_N:,}-interaction JSON cassette, match_on + body: load {stock['load_s']:.2f} s; "
          f"MEASURED requests 0-{first - 1} ({first}) in {stock['first_s']:.1f} s and the last {last} in "
          f"{stock['last_s']:.1f} s ({cost_last * 1000:.0f} ms each); EXTRAPOLATED (linear cost per position, "
          f"quadratic total) replay of all {STOCK_N:,}: ~{stock_total:,.0f} s")
    print(f"evalsuite, same {STOCK_N:,} interactions, MEASURED in full: {ours['replay_and_score_s']:.2f} s "
          f"(peak RSS {ours['peak_rss_mb']:.0f} MB); ratio stock/evalsuite ~{stock_total / ours['replay_and_score_s']:,.0f}x")


if __name__ == "__main__":
    main()
