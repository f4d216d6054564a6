"""Verdict step 4: the minimum detectable drop (MDE), so a user sees when an item is too small to gate.

A baseline gate on 8 examples passes almost every change because it cannot see it, not because nothing
changed. The MDE is the smallest worsening the one-sided paired test detects with 80% power at the item's
alpha, at the item's n:

- 0/1 proportions, McNemar's test by the normal approximation (Connor 1987): a drop ``d`` with a share
  ``psi`` of pairs differing from the baseline is detected when ``n d^2 >= (z_a sqrt(psi) + z_b sqrt(psi - d^2))^2``,
  with ``psi = max(psi0, d)`` (a drop needs at least that many losses). ``psi0`` is the observed share of
  discordant pairs when some pairs differ, else ``2p(1 - p)`` (two runs with independent errors at this
  accuracy: an upper bound on churn, so a conservative MDE). The exact test adds a floor: with m
  discordant pairs all lost, p = 2^-m, so no drop below ``ceil(log2(1 / alpha)) / n`` is ever significant,
  and below ``ceil(log2(1 / alpha))`` examples none at all. The MDE is capped at the largest drop the baseline
  leaves room for; the reason says which bound applies.
- Means, the paired z approximation ``d = (z_a + z_b) sd / sqrt(n)``, sd the SD of the paired differences when
  they vary, else of the baseline values (a change as noisy as the examples). The randomization test's
  smallest p is 2^-n, so below ``log2(1 / alpha)`` examples nothing is ever significant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from evalsuite.verdict.format import fmt

POWER = 0.8
# A proportion item that cannot see a drop of this size gets the advice to add examples.
SMALL_ITEM_DROP = 0.1


@dataclass(frozen=True)
class Detectable:
    """The minimum detectable drop at n; ``drop`` None: no drop at all can reach significance at this n.

    For 0/1 proportions the exact test's floor (``losses`` of n examples) and the baseline's room to fall
    are kept too, so the reason can say which of the three bounds the gate."""

    drop: float | None
    n: int
    alpha: float
    method: str  # how it was computed, for the reason
    proportion: bool
    losses: int = 0  # proportions: the fewest losses exact McNemar can call significant
    approx: float = math.nan  # proportions: the normal approximation's drop at 80% power
    room: float = math.inf  # proportions: the largest drop possible from the baseline (all its successes lost)

    def text(self, worse: str) -> str:
        """The reason's clause; ``worse``: "drop" or "increase" (the metric's bad direction)."""
        how = f"{POWER:.0%} power, one-sided alpha {self.alpha:g}; {self.method}"
        if self.drop is None:
            return (f"n={self.n}: no {worse} can reach significance at one-sided alpha {self.alpha:g}, even with all "
                    f"{self.n} examples worse ({self.method}); add examples to gate this item")
        if not self.proportion:
            return f"minimum detectable {worse} {fmt(self.drop)} at n={self.n} ({how})"
        floor, article = self.losses / self.n, "an" if worse[0] in "aeiou" else "a"
        exact = (f"n={self.n}: only {article} {worse} of {fmt(floor)} or more ({self.losses} of {self.n} examples) "
                 f"can be significant at one-sided alpha {self.alpha:g} (exact McNemar")
        if floor > self.room:
            return (f"{exact}); this baseline leaves room for {article} {worse} of {fmt(self.room)} at most, "
                    f"so none can be significant against it")
        if self.approx > self.room:
            needed = fmt(self.approx) if math.isfinite(self.approx) else "more than 1"
            return (f"{exact}; {POWER:.0%} power would need {needed} by the {self.method}, more than the "
                    f"{fmt(self.room)} this baseline can lose); add examples to gate on smaller {worse}s")
        if floor >= self.approx:
            return (f"{exact}; {POWER:.0%} power needs {fmt(self.approx)} by the {self.method}); "
                    f"add examples to gate on smaller {worse}s")
        if self.drop >= SMALL_ITEM_DROP:
            return (f"n={self.n}: the smallest {worse} this item can detect is {fmt(self.drop)} ({how}); "
                    f"add examples to gate on smaller {worse}s")
        return f"minimum detectable {worse} {fmt(self.drop)} at n={self.n} ({how})"


def _z(alpha: float) -> tuple[float, float]:
    return NormalDist().inv_cdf(1.0 - alpha), NormalDist().inv_cdf(POWER)


def _fewest_losses(alpha: float) -> int:
    """Discordant pairs, all lost, that one-sided exact McNemar (p = 2^-m) needs to go below alpha."""
    return max(1, math.ceil(math.log2(1.0 / alpha) - 1e-12))


def for_proportion(
    n: int, value: float, discordant: float | None, *, alpha: float, higher_is_better: bool,
) -> Detectable:
    """``value``: the baseline's (else this run's) proportion; ``discordant``: observed share of pairs that differ.

    None only when even all n examples lost cannot be significant; otherwise the larger of the normal
    approximation and the exact floor, capped at the largest drop the baseline leaves room for."""
    observed = discordant is not None and discordant > 0
    psi0 = discordant if observed and discordant is not None else 2.0 * value * (1.0 - value)
    source = f"discordance {psi0:.1%} as observed" if observed else "discordance 2p(1-p), independent errors assumed"
    method = f"McNemar normal approximation, {source}"
    losses = _fewest_losses(alpha)
    if n < losses:
        return Detectable(None, n, alpha, f"exact McNemar's smallest p is 2^-{n}", True, losses)
    room = value if higher_is_better else 1.0 - value  # how far the proportion can move the bad way
    approx, floor = _connor(n, psi0, alpha), losses / n
    drop = floor if floor > room else min(max(approx, floor), room)
    return Detectable(drop, n, alpha, method, True, losses, approx, room)


def _connor(n: int, psi0: float, alpha: float) -> float:
    """Smallest d in (0, 1] meeting Connor's sample-size condition (bisection: the margin grows with d)."""
    z_a, z_b = _z(alpha)

    def margin(d: float) -> float:
        psi = max(psi0, d)
        return math.sqrt(n) * d - z_a * math.sqrt(psi) - z_b * math.sqrt(max(psi - d * d, 0.0))

    if n <= 0 or margin(1.0) < 0:
        return math.inf
    low, high = 0.0, 1.0
    for _ in range(50):
        mid = (low + high) / 2.0
        low, high = (mid, high) if margin(mid) < 0 else (low, mid)
    return high


def for_mean(differences: np.ndarray, baseline: np.ndarray, *, alpha: float) -> Detectable:
    """``differences``: new - old per paired example; ``baseline``: the old values, whose spread stands in
    when the differences do not vary (e.g. an identical replay)."""
    n = baseline.size
    if 2.0 ** -n >= alpha:  # the randomization test's smallest p
        return Detectable(None, n, alpha, f"randomization test, smallest p 2^-{n}", False)
    spread = float(np.std(differences, ddof=1)) if differences.size > 1 else 0.0
    source = "SD of the paired differences"
    if spread == 0.0:
        spread = float(np.std(baseline, ddof=1)) if n > 1 else 0.0
        source = "SD of the baseline values, the differences being constant"
    z_a, z_b = _z(alpha)
    return Detectable((z_a + z_b) * spread / math.sqrt(n), n, alpha, f"paired normal approximation, {source}", False)
