"""What CI servers show of an evalsuite item: the one-line failure reason, a metric summary in the JUnit
file's system-out (GitLab, Jenkins and Azure DevOps display it; none displays testcase properties), and
GitHub Actions annotations on the case file's line.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from _pytest.junitxml import xml_key  # pytest's junit writer: it has no public way to add a testcase's system-out

if TYPE_CHECKING:
    import pytest

    from evalsuite.records import ItemResult, MetricResult


def failure_headline(result: ItemResult) -> str:
    """``sentiment[terse]: accuracy 0.61 < min 0.7 (n=24)``: the first failing metric, its value and its limit."""
    failed = [m for m in result.metrics if m.failed]
    if not failed:
        return f"{result.item_id}: {result.message.splitlines()[0] if result.message else 'failed'}"
    more = f"; {len(failed) - 1} more metric(s) failed" if len(failed) > 1 else ""
    return f"{result.item_id}: {_why(failed[0])} (n={failed[0].n}){more}"


def _why(metric: MetricResult) -> str:
    if metric.value is None or metric.verdict == "error":
        return f"{metric.name}: {metric.reason}"
    value = f"{metric.name} {metric.value:.3g}"
    if metric.verdict == "regression" and metric.baseline is not None:
        p = f", p={metric.p_value:.3g}" if metric.p_value is not None else ""
        return f"{value} regressed from baseline {metric.baseline:.3g}{p}"
    if metric.min is not None and metric.value < metric.min:
        return f"{value} < min {metric.min:g}"
    if metric.max is not None and metric.value > metric.max:
        return f"{value} > max {metric.max:g}"
    return f"{value}: {metric.reason}"


def metric_summary(result: ItemResult) -> str:
    """One line per metric (value, interval, limits, baseline, verdict): the item's system-out in a JUnit file."""
    if not result.metrics and result.outcome not in ("passed", "failed"):  # not run to a verdict: say why
        reason = (result.message.strip().splitlines() or [""])[0]
        return f"evalsuite {result.item_id} ({result.source}): {result.outcome.replace('_', ' ')}: {reason}"
    verdict = {"xfailed": "FAIL (quarantined)", "xpassed": "pass (quarantined)"}.get(result.outcome)
    verdict = verdict or ("pass" if result.passed else "FAIL")
    lines = [f"evalsuite {result.item_id} ({result.source}): {verdict}, {result.n_examples} examples"]
    for m in result.metrics:
        value = "n/a" if m.value is None else f"{m.value:.4g}"
        parts = [f"{m.name} = {value}"]
        if m.ci_low is not None and m.ci_high is not None:
            parts.append(f"CI [{m.ci_low:.4g}, {m.ci_high:.4g}]")
        parts += [f"{label} {limit:g}" for label, limit in (("min", m.min), ("max", m.max)) if limit is not None]
        if m.baseline is not None:
            parts.append(f"baseline {m.baseline:.4g}" + (f" (p={m.p_value:.3g})" if m.p_value is not None else ""))
        lines.append(f"  {', '.join(parts)}: {m.verdict}")
    return "\n".join(lines)


def write_junit_system_out(config: pytest.Config, report: pytest.TestReport, text: str) -> None:
    """Append ``text`` as a ``<system-out>`` of ``report``'s testcase, whatever ``junit_logging`` says.

    Called after pytest's junit writer has seen the call report, so the element follows any ``<failure>``.
    """
    junit = config.stash.get(xml_key, None)
    if junit is None:
        return
    element = ET.Element("system-out")
    element.text = text
    junit.node_reporter(report).append(element)


def github_annotation(path: str, line: int, message: str) -> str:
    """A GitHub Actions workflow command that marks ``path:line`` in the pull request with ``message``."""
    def escape(value: str, *, prop: bool = False) -> str:
        value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return value.replace(":", "%3A").replace(",", "%2C") if prop else value

    return f"::error file={escape(path, prop=True)},line={line}::{escape(message)}"
