"""Numbers as every reason and report prints them."""

from __future__ import annotations

import math

from evalsuite.verdict.format import fmt, fmt_delta, fmt_p


def test_numbers_read_compactly() -> None:
    assert [fmt(v) for v in (0.91234, 44.391, 1234.5, None, math.nan)] == ["0.912", "44.39", "1,234", "-", "-"]
    assert [fmt_delta(v) for v in (0.012, -1.5, None)] == ["+0.012", "-1.500", "-"]
    assert [fmt_p(v) for v in (0.031, 0.0004, None)] == ["p=0.031", "p<0.001", "p=-"]


def test_p_values_say_whether_they_are_exact() -> None:
    from evalsuite.verdict.format import fmt_p_test

    assert fmt_p_test(0.0625, "exact") == "p=0.0625 (exact)"
    assert fmt_p_test(1e-6, "exact") == "p<0.001 (exact)"
    assert fmt_p_test(0.059, "monte-carlo", 0.00526, 2000) == "p=0.059 +/- 0.005 (Monte Carlo, 2000 rounds)"
    assert fmt_p_test(1 / 2001, "monte-carlo", 0.0005, 2000) == "p<0.001 (Monte Carlo, 2000 rounds)"
