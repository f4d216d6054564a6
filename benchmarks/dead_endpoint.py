"""How long a dead or wrong endpoint holds one item of 1,000 examples (prints figures).

    python benchmarks/dead_endpoint.py [--n 1000] [--concurrency 16]

Before the circuit breaker every example retried on its own (~130 s of backoff each), so 1,000
examples at concurrency 16 took about two hours to fail. The target is under 30 s. Endpoints:
a refused port (a socket bound, then closed), and tests/_support/chat_server.py answering 404, 401,
an HTML page with 200, or an HTML 502 on every request; and one that never answers ("hang") or
trickles a byte at a time ("trickle"), with ``--timeout`` as model.timeout. Each line: wall time,
requests the server received, and the error of the last answer (what a user reads).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalsuite.cases.schema import ModelSettings
from evalsuite.model import EngineSettings, run_calls_sync
from evalsuite.model._breaker import reset_breakers
from evalsuite.records import Call
from tests._support.chat_server import ChatServer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def one_item(base_url: str, n: int, concurrency: int, timeout: float = 60.0) -> tuple[float, str]:
    calls = [Call(f"e{i}", 0, "chat", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}]})
             for i in range(n)]
    reset_breakers()  # each endpoint measured from a closed breaker
    started = time.perf_counter()
    answers = run_calls_sync(calls, ModelSettings(base_url=base_url, timeout=timeout),
                             settings=EngineSettings(concurrency=concurrency))
    elapsed = time.perf_counter() - started
    assert not any(a.ok for a in answers)
    return elapsed, answers[-1].error or ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=2.0, help="model.timeout for hang and trickle")
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark")
    elapsed, error = one_item(f"http://127.0.0.1:{closed_port()}/v1", args.n, args.concurrency)
    print(f"refused  {args.n} examples: {elapsed:6.2f} s, 0 requests received\n    {error}")
    for fault in ("404", "401", "html200", "html502"):
        with ChatServer(fault=fault) as server:
            elapsed, error = one_item(server.base_url, args.n, args.concurrency)
        print(f"{fault:8} {args.n} examples: {elapsed:6.2f} s, {server.received} requests received\n    {error}")
    for fault in ("hang", "trickle"):
        with ChatServer(fault=fault, trickle_delay_s=args.timeout / 2) as server:
            elapsed, error = one_item(server.base_url, args.n, args.concurrency, args.timeout)
        print(f"{fault:8} {args.n} examples, model.timeout {args.timeout:g} s: {elapsed:6.2f} s, "
              f"{server.received} requests received\n    {error}")


if __name__ == "__main__":
    main()
