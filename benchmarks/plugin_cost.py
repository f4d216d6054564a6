"""What evalsuite costs a project that has no case files: whole ``python -m pytest`` processes, with and without it.

evalsuite is a ``pytest11`` plugin, so it loads in every pytest run of the environment; the budget is
50 ms over plain pytest. Each round runs an empty project holding one trivial test twice, in
alternating order: plugin enabled, and ``-p no:evalsuite``. Every other installed plugin loads in both.
Prints the median of each, the median difference in ms and the ratio, and (less noisy on a busy
machine) the median time to import the plugin and its fixtures into a process that has pytest loaded.

Run: python benchmarks/plugin_cost.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_MS = 50.0


def pytest_seconds(project: Path, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra], cwd=project,
                   check=True, capture_output=True)
    return time.perf_counter() - started


IMPORT_ONLY = (
    "import time, pytest; started = time.perf_counter(); import evalsuite.plugin, evalsuite.fixtures; "
    "print(time.perf_counter() - started)"
)


def import_seconds() -> float:
    out = subprocess.run([sys.executable, "-c", IMPORT_ONLY], check=True, capture_output=True, text=True).stdout
    return float(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "test_trivial.py").write_text("def test_trivial():\n    assert True\n")
        pytest_seconds(project)  # warm the file cache and the bytecode of both runs
        pytest_seconds(project, "-p", "no:evalsuite")
        with_plugin, without = [], []
        for round_ in range(args.rounds):
            runs = [(with_plugin, ()), (without, ("-p", "no:evalsuite"))]
            for samples, extra in runs if round_ % 2 == 0 else reversed(runs):
                samples.append(pytest_seconds(project, *extra))
    imports = [import_seconds() for _ in range(args.rounds)]
    diffs = [(a - b) * 1000 for a, b in zip(with_plugin, without)]
    median_with, median_without = statistics.median(with_plugin), statistics.median(without)
    median_diff = statistics.median(diffs)
    print(f"python -m pytest, one trivial test, {args.rounds} rounds")
    print(f"  evalsuite enabled   : median {median_with * 1000:7.1f} ms")
    print(f"  -p no:evalsuite     : median {median_without * 1000:7.1f} ms")
    print(f"  difference          : median {median_diff:+7.1f} ms (ratio {median_with / median_without:.3f}); "
          f"budget {BUDGET_MS:.0f} ms: {'ok' if median_diff <= BUDGET_MS else 'OVER'}")
    print(f"  import evalsuite.plugin + fixtures after pytest: median {statistics.median(imports) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
