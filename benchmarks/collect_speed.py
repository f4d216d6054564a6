"""Collecting 1,000 case files (2 variants each) against 1,000 equivalent parametrized Python test files.

Both projects are written into temp folders and collected by whole ``python -m pytest --collect-only -q
-p no:cacheprovider`` processes, in alternating order for ``--rounds`` rounds (same run, same machine load).
A case file: inline examples, a system and a user template, ``parse: label``, accuracy with a threshold,
and ``variants.matrix: {temperature: [0, 0.7]}`` (2 items). Its Python twin: the same examples and
templates as module constants, and one test parametrized over the two temperatures (2 items).
Target (issue 15): case files <= 1.5x the Python files.

Usage: python benchmarks/collect_speed.py [--files 1000] [--rounds 3]
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


def collect(project: Path, target: str) -> tuple[float, int]:
    """(seconds, items collected) of one whole ``pytest --collect-only -q`` process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", target],
                         cwd=project, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if out.returncode:
        sys.exit(f"collection failed in {project}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    items = sum(1 for line in out.stdout.splitlines() if "::" in line)
    return seconds, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases, python = write_projects(Path(tmp), args.files)
        collect(cases, "cases")  # warm the page cache and bytecode of both
        collect(python, "tests")
        times: dict[str, list[float]] = {"cases": [], "python": []}
        counts: dict[str, int] = {}
        for round_ in range(args.rounds):
            order = [("cases", cases, "cases"), ("python", python, "tests")]
            for name, project, target in order if round_ % 2 == 0 else reversed(order):
                seconds, counts[name] = collect(project, target)
                times[name].append(seconds)
    load = os.getloadavg()[0]
    yaml_s, py_s = statistics.median(times["cases"]), statistics.median(times["python"])
    print(f"pytest --collect-only, {args.files:,} files each, {args.rounds} rounds, load {load:.2f}")
    print(f"  case files   : {counts['cases']:,} items, median {yaml_s:6.2f} s  runs "
          + ", ".join(f"{t:.2f}" for t in times["cases"]))
    print(f"  python files : {counts['python']:,} items, median {py_s:6.2f} s  runs "
          + ", ".join(f"{t:.2f}" for t in times["python"]))
    ratio = yaml_s / py_s
    print(f"  ratio        : {ratio:.2f}x (target <= {TARGET}x): {'ok' if ratio <= TARGET else 'OVER'}")


if __name__ == "__main__":
    main()
