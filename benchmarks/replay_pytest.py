"""Replay of 1 item x 24,999 IMDB examples THROUGH PYTEST, against orjson-loading its cassette (prints figures).

What a user runs: ``python -m pytest`` in a fresh process on a project whose case reads
../shared/data/imdb-test.jsonl at run time (``benchmarks/replay_speed.py``'s case file). Its cassette is
recorded once, in a child process, with ``run_item(record_mode="once")`` against the 127.0.0.1 chat server
(as ``replay_speed.py`` does). Then, in alternating order for ``--rounds`` rounds, two whole processes:

- ``python -m pytest -q -p no:cacheprovider`` in the project (replay, no ``OPENAI_*`` set; the default
  ``--record-mode=none``), writing reports/report.{json,md,html} as every run does;
- ``python -c "import orjson; orjson.loads(<cassette>)"``: the floor, reading the recording once.

Peak RSS is each child's own (``os.wait4``: this parent stays small, so the high-water mark Linux carries
over fork + exec is not ours). Targets (issue 15): pytest <= 3x the orjson process, peak RSS <= 600 MB.

Usage: python benchmarks/replay_pytest.py [--data PATH] [--limit N] [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

# ../shared/data beside the repository (a worktree one level deeper finds the same folder higher up)
DATA = next((d / "shared" / "data" / "imdb-test.jsonl" for d in REPO.parents
             if (d / "shared" / "data" / "imdb-test.jsonl").exists()), REPO.parent / "shared" / "data" / "imdb-test.jsonl")
TIME_RATIO = 3.0
RSS_MB = 600.0


def child_record(root: Path, limit: int | None) -> None:
    import replay_speed

    live, seconds = replay_speed.record(root, limit)
    print(json.dumps({**live, "record_s": seconds}))


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text = out.decode(errors="replace")
    return wall, usage.ru_maxrss / 1024, text if process.returncode in (0, 1) else f"EXIT {process.returncode}\n{text}"


def offline_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "PYTEST_ADDOPTS"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N reviews")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the project here instead of a temp folder")
    parser.add_argument("--child", choices=["record"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "record":
        return child_record(args.root, args.limit)
    if not args.data.exists():
        print(f"SKIP: {args.data} not found (the benchmark reads it at run time; it is not in the repo)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "project"
        cassette = root / "cassettes" / "imdb" / "imdb.json"
        if not cassette.exists():
            import replay_speed

            replay_speed.write_root(root, args.data)
            if args.limit:  # the case itself caps the dataset, so pytest replays exactly what was recorded
                case = root / "cases" / "imdb.yaml"
                case.write_text(case.read_text().replace("      id: id\n", f"      id: id\n      limit: {args.limit}\n"))
            limit = ["--limit", str(args.limit)] if args.limit else []
            out = subprocess.run([sys.executable, __file__, "--child", "record", "--root", str(root), *limit],
                                 capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"recording failed:\n{out.stderr[-3000:]}")
            live = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"recorded {live['interactions']:,} interactions in {live['record_s']:.1f} s "
                  f"(accuracy {live['accuracy']:.4f}); cassette {cassette.stat().st_size / 1e6:.1f} MB")
        env = offline_env()
        pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        orjson_cmd = [sys.executable, "-c", f"import orjson; orjson.loads(open({str(cassette)!r}, 'rb').read())"]
        timed(orjson_cmd, root, env)  # warm the page cache and bytecode
        runs: dict[str, list[tuple[float, float]]] = {"pytest": [], "orjson": []}
        last_out = ""
        for round_ in range(args.rounds):
            order = [("pytest", pytest_cmd), ("orjson", orjson_cmd)]
            for name, cmd in order if round_ % 2 == 0 else reversed(order):
                wall, rss, out = timed(cmd, root, env)
                runs[name].append((wall, rss))
                if name == "pytest":
                    last_out = out
        report = root / "reports" / "report.json"
        summary = json.loads(report.read_text())["items"][0] if report.exists() else {}
    load = os.getloadavg()[0]
    pyt = statistics.median(w for w, _ in runs["pytest"])
    orj = statistics.median(w for w, _ in runs["orjson"])
    rss = max(r for _, r in runs["pytest"])
    print(f"replay through pytest, {summary.get('n_examples', '?')} examples, {args.rounds} rounds, load {load:.2f}")
    print(f"  python -m pytest (replay)  : median {pyt:6.2f} s  runs {', '.join(f'{w:.2f}' for w, _ in runs['pytest'])}"
          f"  peak RSS {rss:.0f} MB (target <= {RSS_MB:.0f})")
    print(f"  python -c orjson.loads     : median {orj:6.2f} s  runs {', '.join(f'{w:.2f}' for w, _ in runs['orjson'])}"
          f"  peak RSS {max(r for _, r in runs['orjson']):.0f} MB")
    print(f"  ratio pytest / orjson      : {pyt / orj:.2f}x (target <= {TIME_RATIO:.0f}x): "
          f"{'ok' if pyt / orj <= TIME_RATIO and rss <= RSS_MB else 'OVER'}")
    print("  pytest's last lines: " + " | ".join(line for line in last_out.strip().splitlines()[-2:]))


if __name__ == "__main__":
    main()
