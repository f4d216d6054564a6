"""Collecting 1,000 case files (2 variants each) against 1,000 equivalent parametrized Python test files.

Both projects are written into temp folders and collected by whole ``python -m pytest --collect-only -q
-p no:cacheprovider`` processes, in alternating order for ``--rounds`` rounds (same run, same machine load).
A case file: inline examples, a system and a user template, ``parse: label``, accuracy with a threshold,
and ``variants.matrix: {temperature: [0, 0.7]}`` (2 items). Its Python twin: the same examples and
templates as module constants, and one test parametrized over the two temperatures (2 items).
Target (issue 15): case files <= 1.5x the Python files.

``--before SRC``: a folder holding another evalsuite package is collected too, in the same rounds
(``PYTHONPATH=SRC``), so before and after meet the same machine load.

Usage: python benchmarks/collect_speed.py [--files 1000] [--rounds 3] [--before SRC]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.5

CASE_FILE = """\
suite: s{n:04d}
cases:
  - id: sentiment
    model: {{name: test-model, api: chat, max_tokens: 3}}
    dataset:
      examples:
        - {{text: "a warm, funny film", expected: positive}}
        - {{text: "dull and far too long", expected: negative}}
        - {{text: "the best thing this year", expected: positive}}
    prompt:
      system: "Classify the review as positive or negative."
      user: "Review: {{{{ text }}}}"
    parse:
      kind: label
      labels: {{positive: [positive, pos], negative: [negative, neg]}}
    variants:
      matrix: {{temperature: [0, 0.7]}}
    metrics:
      accuracy: {{min: 0.6}}
"""

PY_FILE = """\
import pytest

EXAMPLES = [
    {{"text": "a warm, funny film", "expected": "positive"}},
    {{"text": "dull and far too long", "expected": "negative"}},
    {{"text": "the best thing this year", "expected": "positive"}},
]
SYSTEM = "Classify the review as positive or negative."
USER = "Review: {{text}}"
LABELS = {{"positive": ["positive", "pos"], "negative": ["negative", "neg"]}}


@pytest.mark.parametrize("temperature", [0, 0.7], ids=["t0", "t0.7"])
def test_sentiment_{n:04d}(temperature):
    prompts = [USER.format(**row) for row in EXAMPLES]
    assert len(prompts) == 3 and temperature in (0, 0.7)
"""


def write_projects(root: Path, files: int) -> tuple[Path, Path]:
    cases, python = root / "cases_project", root / "python_project"
    (cases / "cases").mkdir(parents=True)
    (python / "tests").mkdir(parents=True)
    for n in range(files):
        (cases / "cases" / f"s{n:04d}.yaml").write_text(CASE_FILE.format(n=n))
        (python / "tests" / f"test_s{n:04d}.py").write_text(PY_FILE.format(n=n))
    return cases, python


def collect(project: Path, target: str, pythonpath: Path | None = None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, items collected) of one whole ``pytest --collect-only -q`` process. CPU time
    (user + system) is the figure to trust when other jobs share the cores."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath.resolve())
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                target], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    out = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"collection failed in {project}:\n{out[-3000:]}")
    items = sum(1 for line in out.splitlines() if "::" in line)
    return seconds, usage.ru_utime + usage.ru_stime, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="also collect with the evalsuite package in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases, python = write_projects(Path(tmp), args.files)
        collect(cases, "cases")  # warm the page cache and bytecode of both
        collect(python, "tests")
        if args.before:
            collect(cases, "cases", args.before)
        order = [("cases", cases, "cases", None), ("python", python, "tests", None)]
        if args.before:
            order.append(("before", cases, "cases", args.before))
        times: dict[str, list[float]] = {name: [] for name, *_ in order}
        cpu: dict[str, list[float]] = {name: [] for name, *_ in order}
        counts: dict[str, int] = {}
        for round_ in range(args.rounds):
            for name, project, target, pythonpath in order if round_ % 2 == 0 else reversed(order):
                seconds, cpu_seconds, counts[name] = collect(project, target, pythonpath)
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
    load = os.getloadavg()[0]
    print(f"pytest --collect-only, {args.files:,} files each, {args.rounds} rounds, load {load:.2f}")
    labels = [("cases", "case files"), ("python", "python files")] + ([("before", "before")] if args.before else [])
    for name, label in labels:
        print(f"  {label:12s} : {counts[name]:,} items, wall median {statistics.median(times[name]):6.2f} s (runs "
              + ", ".join(f"{t:.2f}" for t in times[name]) + f"), CPU median {statistics.median(cpu[name]):6.2f} s")
    ratio = statistics.median(times["cases"]) / statistics.median(times["python"])
    cpu_ratio = statistics.median(cpu["cases"]) / statistics.median(cpu["python"])
    print(f"  ratio        : wall {ratio:.2f}x, CPU {cpu_ratio:.2f}x (target <= {TARGET}x): "
          f"{'ok' if ratio <= TARGET else 'OVER'}")
    if args.before:
        print(f"  ratio before : wall {statistics.median(times['before']) / statistics.median(times['python']):.2f}x, "
              f"CPU {statistics.median(cpu['before']) / statistics.median(cpu['python']):.2f}x")


if __name__ == "__main__":
    main()
