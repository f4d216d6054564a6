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

``--before SRC``: a folder holding another evalsuite package (e.g. ``git archive main evalsuite | tar -x -C SRC``)
is run too, in the same rounds (``PYTHONPATH=SRC``), so before and after meet the same machine load.

Usage: python benchmarks/replay_pytest.py [--data PATH] [--limit N] [--rounds 3] [--keep DIR] [--before SRC]
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


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MB, stdout) of one child process. CPU time (user + system) is the
    figure to trust when other jobs share the cores: wall time then counts their turns too."""
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text = out.decode(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, text if process.returncode in (0, 1) else f"EXIT {process.returncode}\n{text}"


def offline_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "PYTEST_ADDOPTS"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N reviews")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the project here instead of a temp folder")
    parser.add_argument("--before", type=Path, help="also run the evalsuite package in this folder (PYTHONPATH)")
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
        commands = [("pytest", pytest_cmd, env), ("orjson", orjson_cmd, env)]
        if args.before:
            commands.append(("before", pytest_cmd, {**env, "PYTHONPATH": str(args.before.resolve())}))
        timed(orjson_cmd, root, env)  # warm the page cache and bytecode
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in commands}
        last_out = ""
        for round_ in range(args.rounds):
            for name, cmd, cmd_env in commands if round_ % 2 == 0 else reversed(commands):
                wall, cpu, rss, out = timed(cmd, root, cmd_env)
                runs[name].append((wall, cpu, rss))
                if name == "pytest":
                    last_out = out
        report = root / "reports" / "report.json"
        summary = json.loads(report.read_text())["items"][0] if report.exists() else {}
    load = os.getloadavg()[0]
    median = {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)) for name, rs in runs.items()}
    rss = max(r[2] for r in runs["pytest"])
    print(f"replay through pytest, {summary.get('n_examples', '?')} examples, {args.rounds} rounds, load {load:.2f}")
    labels = [("pytest", "python -m pytest (replay)"), ("orjson", "python -c orjson.loads")]
    if args.before:
        labels.append(("before", f"pytest, {args.before.name}"))
    for name, label in labels:
        wall, cpu = median[name]
        print(f"  {label:26s}: wall median {wall:6.2f} s (runs {', '.join(f'{r[0]:.2f}' for r in runs[name])}), "
              f"CPU median {cpu:6.2f} s, peak RSS {max(r[2] for r in runs[name]):.0f} MB")
    wall_ratio, cpu_ratio = median["pytest"][0] / median["orjson"][0], median["pytest"][1] / median["orjson"][1]
    print(f"  ratio pytest / orjson      : wall {wall_ratio:.2f}x, CPU {cpu_ratio:.2f}x (target <= {TIME_RATIO:.0f}x); "
          f"peak RSS {rss:.0f} MB (target <= {RSS_MB:.0f} MB): "
          f"{'ok' if wall_ratio <= TIME_RATIO and rss <= RSS_MB else 'OVER'}")
    if args.before:
        print(f"  ratio before / orjson      : wall {median['before'][0] / median['orjson'][0]:.2f}x, "
              f"CPU {median['before'][1] / median['orjson'][1]:.2f}x; peak RSS {max(r[2] for r in runs['before']):.0f} MB")
    print("  pytest's last lines: " + " | ".join(line for line in last_out.strip().splitlines()[-2:]))


if __name__ == "__main__":
    main()
