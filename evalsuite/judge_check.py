"""``python -m evalsuite judge-check LABELS``: does the judge agree with people, and can CI rely on it?

Why: a judge's score is only worth gating on if the judge grades as a person would; no peer reports that
agreement as a statistic a pipeline can gate on (MLflow's alignment optimises the prompt instead). Given human
labels for examples the judge also graded, this prints the raw agreement, Cohen's kappa (scikit-learn's
``cohen_kappa_score``; quadratic weights for an ordinal scale, so a 4 against a 5 counts as nearly agreeing)
with a percentile bootstrap interval over the labelled examples, and the confusion matrix; with
``--min-kappa K`` it exits 1 when kappa's lower bound is under K.

LABELS (``.jsonl``, ``.json`` list or ``.csv``): one row per labelled example, the human's ``label`` and either
the judge's ``judge`` value, or ``example_id`` (and ``sample``, default 0; ``item`` when several items have the
metric) to take the judge's verdict from a report (``--report``, default ``reports/report.json``). A pass/fail
label may be written pass/fail, yes/no, true/false or 1/0.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalsuite.errors import EvalsuiteError

EXIT_OK, EXIT_BELOW, EXIT_UNUSABLE = 0, 1, 2
TRUE, FALSE = {"pass", "yes", "true"}, {"fail", "no", "false"}
JUDGE_KINDS = ("judge", "pairwise judge")

DESCRIPTION = """\
How well does an LLM judge agree with people? Pairs human labels with the judge's verdicts and prints the
raw agreement, Cohen's kappa (quadratic weights for a numeric scale) with a bootstrap interval, and the
confusion matrix.

LABELS: one row per labelled example with the human's "label" and either the judge's "judge" value, or
"example_id" (and "sample", default 0; "item" when several items have the metric) to read the judge's
verdict from --report. Pass/fail labels may be pass/fail, yes/no, true/false or 1/0."""

EXIT_CODES = """\
exit codes:
  0  kappa computed (and, with --min-kappa, its lower bound is at least K)
  1  kappa's lower bound is under --min-kappa
  2  unusable input: a file missing or malformed, no labelled example the judge scored,
     or a single category (kappa is undefined)"""


@dataclass
class Agreement:
    n: int
    agreement: float
    kappa: float
    low: float
    high: float
    weights: str | None
    categories: list[Any]
    confusion: np.ndarray
    resamples: int
    degenerate: int  # resamples with one category only (kappa undefined), left out of the interval


def agreement(human: Sequence[Any], judge: Sequence[Any], *, weights: str | None = None, confidence: float = 0.95,
              resamples: int = 2000, seed: int = 0) -> Agreement:
    """Cohen's kappa of two raters over the same examples, with a percentile bootstrap interval."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix  # only this command needs scikit-learn here

    categories = sorted(set(human) | set(judge), key=_order)
    if len(categories) < 2:
        raise EvalsuiteError(f"every label is {categories[0]!r}: kappa is undefined with a single category; "
                             "label examples the judge grades differently too")
    if all(isinstance(c, int) for c in categories):  # a scale: weights count steps, unused points included
        categories = list(range(categories[0], categories[-1] + 1))
    code = {category: index for index, category in enumerate(categories)}
    human_codes, judge_codes = np.array([code[h] for h in human]), np.array([code[j] for j in judge])
    k = len(categories)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined kappa (one category in common) is nan, reported as such
        point = float(cohen_kappa_score(human_codes, judge_codes, labels=list(range(k)), weights=weights))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(human), (resamples, len(human)))
    cells = (np.arange(resamples)[:, None] * k * k + human_codes[idx] * k + judge_codes[idx]).ravel()
    draws = kappas(np.bincount(cells, minlength=resamples * k * k).reshape(resamples, k, k), weights)
    finite = draws[np.isfinite(draws)]
    tail = (1 - confidence) / 2
    low, high = (float(np.quantile(finite, tail)), float(np.quantile(finite, 1 - tail))) if finite.size else (math.nan,) * 2
    return Agreement(len(human), float(np.mean(human_codes == judge_codes)), point, low, high, weights, categories,
                     confusion_matrix(human_codes, judge_codes, labels=list(range(k))), resamples,
                     resamples - int(finite.size))


def kappas(confusions: np.ndarray, weights: str | None) -> np.ndarray:
    """Cohen's kappa of each confusion matrix of a stack ``[resamples, k, k]`` at once, by scikit-learn's
    formula (``cohen_kappa_score``: 1 - sum(w * observed) / sum(w * expected)); nan where it is undefined.
    Why not call it per resample: 2,000 calls take seconds, this takes milliseconds (a test checks both agree)."""
    k = confusions.shape[-1]
    steps = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
    w = {None: (steps > 0).astype(float), "linear": steps, "quadratic": steps**2}[weights]
    totals = confusions.sum(axis=(1, 2)).astype(float)
    expected = confusions.sum(axis=2)[:, :, None] * confusions.sum(axis=1)[:, None, :] / totals[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - (w * confusions).sum(axis=(1, 2)) / (w * expected).sum(axis=(1, 2))


def _order(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def normalize(value: Any) -> Any:
    """A label as compared: pass/yes/true -> 1, fail/no/false -> 0, 4.0 -> 4, other text as written."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in TRUE | FALSE:
            return int(text.lower() in TRUE)
        try:
            value = float(text)
        except ValueError:
            return text
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def read_labels(path: Path) -> list[dict[str, Any]]:
    """The rows of a .jsonl, .json (a list of objects) or .csv file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvalsuiteError(f"{path}: cannot read the labels ({exc.strerror})") from None
    try:
        if path.suffix == ".csv":
            rows: Any = list(csv.DictReader(text.splitlines()))
        elif path.suffix == ".json":
            rows = json.loads(text)
        else:
            rows = []
            for number, line in enumerate(text.splitlines(), 1):
                try:
                    rows += [json.loads(line)] if line.strip() else []
                except json.JSONDecodeError as exc:
                    raise EvalsuiteError(f"{path}:{number}: not JSON ({exc.msg}); write one object per line") from None
    except json.JSONDecodeError as exc:
        raise EvalsuiteError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise EvalsuiteError(f"{path}: expected a list of objects, one per labelled example")
    for number, row in enumerate(rows, 1):
        if "label" not in row or ("judge" not in row and "example_id" not in row and "id" not in row):
            raise EvalsuiteError(f"{path}: row {number}: needs 'label' (the human's) and 'judge' (the judge's) or "
                                 f"'example_id' (to read the judge's verdict from the report); has {sorted(row)}")
    return rows


class ReportVerdicts:
    """The judge's per-example verdicts of one metric in a report.json: the parsed verdicts when the values are
    logprob-weighted expectations, else the per-example values."""

    def __init__(self, path: Path, metric: str | None) -> None:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise EvalsuiteError(f"{path}: cannot read the report ({exc}); run pytest first, or give --report") from None
        items = report.get("items", []) if isinstance(report, dict) else []
        judged = {name for item in items for name, note in (item.get("meta") or {}).get("model_calls", {}).items()
                  if note.get("kind") in JUDGE_KINDS}
        if metric is None:
            if len(judged) != 1:
                raise EvalsuiteError(f"{path}: {'no judge metric' if not judged else 'several judge metrics'} "
                                     f"({', '.join(sorted(judged)) or 'none'}); name one with --metric")
            metric = judged.pop()
        self.metric, self.path = metric, path
        self.items: dict[str, dict[str, Any]] = {}
        for item in items:
            note = (item.get("meta") or {}).get("model_calls", {}).get(metric, {})
            values = {f"{r['example_id']}#{r['sample']}": r.get("scores", {}).get(metric) for r in item.get("records", [])
                      if metric in r.get("scores", {})}
            if values:
                self.items[item.get("identity") or f"{item['suite']}::{item['item_id']}"] = {**values,
                                                                                            **note.get("verdicts", {})}
        if not self.items:
            raise EvalsuiteError(f"{path}: no item has per-example values of {metric!r}")

    def verdict(self, row: dict[str, Any], number: int) -> Any:
        wanted = row.get("item")
        items = [k for k in self.items if wanted is None or k == wanted or k.split("::", 1)[-1] == wanted]
        if len(items) != 1:
            which = "no item" if not items else "several items"
            raise EvalsuiteError(f"row {number}: {which} of {self.path} {'is' if not items else 'are'} "
                                 f"{wanted or 'scored by ' + self.metric!r} ({', '.join(sorted(self.items))}); "
                                 "give the row an 'item'")
        key = f"{row.get('example_id', row.get('id'))}#{row.get('sample', 0)}"
        if key not in self.items[items[0]]:
            raise EvalsuiteError(f"row {number}: {items[0]} has no example {key} in {self.path}")
        return self.items[items[0]][key]


def main(args: argparse.Namespace) -> int:
    try:
        rows = read_labels(args.labels)
        needs_report = any("judge" not in row for row in rows)
        report = ReportVerdicts(args.report, args.metric) if needs_report else None
        human, judge = [], []
        unscored = 0
        for number, row in enumerate(rows, 1):
            verdict = row["judge"] if "judge" in row else report.verdict(row, number)  # type: ignore[union-attr]
            if verdict is None:
                unscored += 1  # unparsed or errored: the judge gave no verdict to agree with
                continue
            human.append(normalize(row["label"]))
            judge.append(normalize(verdict))
        if not human:
            raise EvalsuiteError(f"{args.labels}: no labelled example has a verdict of the judge")
        numeric = all(isinstance(v, (int, float)) for v in human + judge)
        weights = args.weights if args.weights != "auto" else (
            "quadratic" if numeric and len(set(human) | set(judge)) > 2 else None)
        result = agreement(human, judge, weights=None if weights == "none" else weights, confidence=args.confidence,
                           resamples=args.resamples, seed=args.seed)
    except EvalsuiteError as exc:
        print(f"evalsuite judge-check: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    source = f"{report.metric} in {args.report}" if report else "the 'judge' column"
    print(render(result, f"{source} against {args.labels}", args.confidence, args.seed, unscored))
    if args.min_kappa is None:
        return EXIT_OK
    passed = math.isfinite(result.low) and result.low >= args.min_kappa
    print(f"gate: kappa's lower bound {result.low:.3f} {'>=' if passed else '<'} --min-kappa {args.min_kappa:g}: "
          f"{'pass' if passed else 'FAIL (the judge does not agree with the labels well enough to gate on)'}")
    return EXIT_OK if passed else EXIT_BELOW


def render(result: Agreement, what: str, confidence: float, seed: int, unscored: int) -> str:
    equal = int(round(result.agreement * result.n))
    weights = f"{result.weights} weights" if result.weights else "unweighted"
    lines = [
        f"judge-check: {what} ({result.n} labelled examples)",
        f"  agreement      {result.agreement:.3f} ({equal} of {result.n} equal)",
        f"  Cohen's kappa  {result.kappa:.3f}, {confidence:.0%} CI [{result.low:.3f}, {result.high:.3f}] ({weights}; "
        f"bootstrap, {result.resamples} resamples, seed {seed})",
    ]
    if result.degenerate:
        lines.append(f"  {result.degenerate} resamples held one category only (kappa undefined) and were left out")
    if unscored:
        lines.append(f"  {unscored} labelled examples left out: the judge gave them no verdict (unparsed or errored)")
    if result.n < 30:
        lines.append(f"  only {result.n} labels: too few to trust the interval; label 30 or more before gating on it")
    labels = [str(c) for c in result.categories]
    width = max(5, *(len(label) + 1 for label in labels))
    lines.append("  confusion (rows: human, columns: judge)")
    lines.append("  " + " " * width + "".join(label.rjust(width) for label in labels))
    for label, row in zip(labels, result.confusion):
        lines.append("  " + label.rjust(width) + "".join(str(int(count)).rjust(width) for count in row))
    return "\n".join(lines)


def add_command(commands: Any) -> None:
    """The ``judge-check`` subcommand of ``python -m evalsuite``."""
    check = commands.add_parser(
        "judge-check", help="the judge's agreement with human labels (Cohen's kappa with a CI); exit 1 under "
        "--min-kappa", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_CODES,
        description=DESCRIPTION)
    check.add_argument("labels", metavar="LABELS", type=Path, help="human labels: .jsonl, .json or .csv")
    check.add_argument("--report", type=Path, default=Path("reports/report.json"),
                       help="the report holding the judge's verdicts (default reports/report.json)")
    check.add_argument("--metric", help="the judge metric (default: the report's only one)")
    check.add_argument("--weights", choices=("auto", "none", "linear", "quadratic"), default="auto",
                       help="kappa weights (auto: quadratic for a numeric scale of 3+ values, else none)")
    check.add_argument("--min-kappa", type=float, help="exit 1 when kappa's lower bound is under this")
    check.add_argument("--confidence", type=_share, default=0.95, help="interval level (default 0.95)")
    check.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    check.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    check.set_defaults(func=main)


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a level between 0 and 1, got {text}")
    return value

