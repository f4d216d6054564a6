"""How good is the baseline gate? False alarms when nothing changed, detection of a real drop.

Simulates a classifier with accuracy 0.85 on the IMDB test examples (only the example ids and their
count are read from /work/shared/data/imdb-test.jsonl, or $EVALSUITE_IMDB), and a changed model that
answers differently on ~10% of examples:

- "no change": each of the ~10% differing examples is a loss or a gain with equal probability, so
  the expected accuracy is unchanged; any regression verdict is a false alarm (target <= 5%).
- "3-point drop": same churn, but 65% of the differences are losses: a true drop of 3 points
  (target detection >= 90% at n = 1,000).

Gates compared: evalsuite's verdict (McNemar exact, one-sided, alpha 0.05, the real ``verdict.judge``),
the same values judged as a mean metric (the non-binary gate: paired randomization test, as for every
mean/corpus metric), an unpaired two-proportion z-test (what lm-eval's comparator script does), and the
naive "score below baseline" rule. The last line gives the minimum detectable drop the verdict reports
(80% power at alpha, from the observed churn), averaged over the no-change simulations, beside the 3-point drop.

Run: python benchmarks/gate_quality.py [--sims 500] [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from evalsuite.cases.schema import MetricSpec
from evalsuite.metrics import MetricInfo
from evalsuite.verdict import judge

DATA = Path(os.environ.get("EVALSUITE_IMDB", "/work/shared/data/imdb-test.jsonl"))
ACCURACY, CHURN, DROP, ALPHA = 0.85, 0.10, 0.03, 0.05


def _mean(values: Sequence[Any]) -> float:
    return float(np.mean(values))


ACCURACY_METRIC = MetricInfo("accuracy", "proportion", True, "share correct", _mean)


def read_ids(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [str(json.loads(line).get("id", i)) for i, line in enumerate(handle) if line.strip()]


def changed(old: np.ndarray, rng: np.random.Generator, drop: float) -> np.ndarray:
    """The changed model differs on D ~ Binomial(n, CHURN) examples; each difference is a loss (right ->
    wrong) with probability 1/2 + drop / (2 * CHURN), else a gain. drop = 0: symmetric, equal expected
    accuracy; drop = 0.03 with 10% churn: 65% of differences are losses, a 3-point expected drop."""
    differ = rng.binomial(old.size, CHURN)
    losses = rng.binomial(differ, 0.5 + drop / (2 * CHURN))
    right, wrong = np.flatnonzero(old == 1), np.flatnonzero(old == 0)
    losses, gains = min(losses, right.size), min(differ - losses, wrong.size)
    new = old.copy()
    new[rng.choice(right, losses, replace=False)] = 0
    new[rng.choice(wrong, gains, replace=False)] = 1
    return new


def gate_mcnemar(old: np.ndarray, new: np.ndarray, keys: list[str]) -> bool:
    return judge(ACCURACY_METRIC, MetricSpec(), new.tolist(), keys, dict(zip(keys, old.tolist())), alpha=ALPHA).verdict == "regression"


def reported_mde(old: np.ndarray, new: np.ndarray, keys: list[str]) -> float:
    mde = judge(ACCURACY_METRIC, MetricSpec(), new.tolist(), keys, dict(zip(keys, old.tolist())), alpha=ALPHA).mde
    return math.nan if mde is None else mde


def gate_permutation(old: np.ndarray, new: np.ndarray, keys: list[str]) -> bool:
    return judge(replace(ACCURACY_METRIC, kind="mean"), MetricSpec(), new.astype(float).tolist(), keys,
                 dict(zip(keys, old.astype(float).tolist())),
                 alpha=ALPHA).verdict == "regression"


def gate_unpaired_z(old: np.ndarray, new: np.ndarray, keys: list[str]) -> bool:
    p1, p2, n = old.mean(), new.mean(), old.size
    se = math.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n)
    return se > 0 and (p2 - p1) / se < NormalDist().inv_cdf(ALPHA)


def gate_naive(old: np.ndarray, new: np.ndarray, keys: list[str]) -> bool:
    return new.mean() < old.mean()


GATES: dict[str, Callable[[np.ndarray, np.ndarray, list[str]], bool]] = {
    "evalsuite: McNemar exact (proportion)": gate_mcnemar,
    "evalsuite: paired permutation (mean)": gate_permutation,
    "unpaired z-test (lm-eval style)": gate_unpaired_z,
    "naive: score below baseline": gate_naive,
}


def analytic_mcnemar(n: int) -> tuple[float, float]:
    """Size and power of the one-sided exact McNemar gate under this simulation, summed exactly
    (no simulation noise): over D ~ Binomial(n, CHURN) and losses ~ Binomial(D, 1/2 or 0.65)."""
    from scipy.stats import binom

    size = power = 0.0
    q = 0.5 + DROP / (2 * CHURN)
    for d in range(1, n + 1):
        weight = binom.pmf(d, n, CHURN)
        if weight < 1e-12:
            continue
        losses = np.arange(d + 1)
        reject = binom.sf(losses - 1, d, 0.5) < ALPHA
        size += weight * binom.pmf(losses, d, 0.5)[reject].sum()
        power += weight * binom.pmf(losses, d, q)[reject].sum()
    return float(size), float(power)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=500)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--permutation-sims", type=int, default=200,
                        help="simulations for the (slower) mean-metric gate (bootstrap CI + randomization test)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} not found (set EVALSUITE_IMDB to the IMDB test JSONL)")
        return 0
    ids = read_ids(DATA)
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(len(ids), size=min(args.n, len(ids)), replace=False)
    keys = [f"{ids[i]}#0" for i in chosen]
    n = len(keys)
    print(f"{len(ids):,} IMDB ids read; n = {n:,} examples, {args.sims} simulated pairs per scenario; "
          f"accuracy {ACCURACY}, churn {CHURN:.0%}, alpha {ALPHA}\n")
    start = time.perf_counter()
    alarms = {name: {"no change": 0, f"{DROP * 100:.0f}-point drop": 0} for name in GATES}
    runs = {name: 0 for name in GATES}
    deltas: dict[str, list[float]] = {"no change": [], f"{DROP * 100:.0f}-point drop": []}
    mdes: list[float] = []
    for sim in range(args.sims):
        old = (rng.random(n) < ACCURACY).astype(int)
        active = {name: gate for name, gate in GATES.items() if gate is not gate_permutation or sim < args.permutation_sims}
        for name in active:
            runs[name] += 1
        for scenario, drop in (("no change", 0.0), (f"{DROP * 100:.0f}-point drop", DROP)):
            new = changed(old, rng, drop)
            deltas[scenario].append(new.mean() - old.mean())
            if drop == 0.0:
                mdes.append(reported_mde(old, new, keys))
            for name, gate in active.items():
                alarms[name][scenario] += gate(old, new, keys)
    elapsed = time.perf_counter() - start
    header = f"{'gate':40} {'sims':>5} {'false alarms (no change)':>26} {'detected (3-point drop)':>25}"
    print(header)
    print("-" * len(header))
    for name, counts in alarms.items():
        fa = counts["no change"] / runs[name]
        det = counts[f"{DROP * 100:.0f}-point drop"] / runs[name]
        print(f"{name:40} {runs[name]:>5} {fa:>26.1%} {det:>25.1%}")
    size, power = analytic_mcnemar(n)
    print(f"{'McNemar exact, computed exactly':40} {'-':>5} {size:>26.1%} {power:>25.1%}")
    print(f"minimum detectable drop reported by the verdict at n = {n:,}: {np.mean(mdes):.4f} "
          f"(80% power; the simulated drop is {DROP})")
    print(f"\ntargets: false alarms <= 5%, detection >= 90%.  mean simulated change: no change "
          f"{np.mean(deltas['no change']):+.4f}, drop {np.mean(deltas[f'{DROP * 100:.0f}-point drop']):+.4f}.  "
          f"{elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
