"""How numbers read in verdict reasons and in every report table, so all of them print a value the same way."""

from __future__ import annotations

import math


def fmt(value: float | None) -> str:
    """Compact number for tables and reasons: 0.912, 44.39, 1,234."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_delta(delta: float | None) -> str:
    """Signed change: +0.012, -1.50."""
    if delta is None or math.isnan(delta):
        return "-"
    return ("+" if delta >= 0 else "-") + fmt(abs(delta))


def fmt_p(p: float | None) -> str:
    """``p=0.031`` or ``p<0.001``."""
    if p is None or math.isnan(p):
        return "p=-"
    return f"p={p:.2g}" if p >= 0.001 else "p<0.001"


def fmt_p_test(p: float | None, method: str, se: float | None = None, rounds: int = 0) -> str:
    """A p-value that says what it is: ``p=0.0625 (exact)`` or ``p=0.059 +/- 0.005 (Monte Carlo, 2000 rounds)``."""
    if method == "exact":
        shown = fmt_p(p) if p is None or math.isnan(p) or p < 0.001 else f"p={p:.3g}"
        return f"{shown} (exact)"
    if method != "monte-carlo":
        return fmt_p(p)
    spread = f" +/- {se:.1g}" if se and p is not None and p >= 0.001 else ""
    return f"{fmt_p(p)}{spread} (Monte Carlo, {rounds} rounds)"
