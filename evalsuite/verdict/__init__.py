"""Stage 7: per-example values -> interval, thresholds, baseline comparison -> a verdict."""

from evalsuite.verdict._judge import fmt, fmt_delta, fmt_p, judge

__all__ = ["fmt", "fmt_delta", "fmt_p", "judge"]
