"""Command line: ``evalsuite compare OLD.json NEW.json`` (and ``python -m evalsuite ...``).

``compare`` re-runs the verdict's paired tests between two runs (report.json or baseline files) and
prints the same table as the test session, exiting 1 when any metric regressed: a gate usable
outside pytest, e.g. to compare two models' stored reports.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalsuite.verdict.baseline import BaselineError, BaselineMetric, load_baseline
from evalsuite.cases.schema import MetricSpec
from evalsuite.records import ItemResult
from evalsuite.report.terminal import render
from evalsuite.verdict._judge import judge


@dataclass
class StoredMetric:
    """A metric rebuilt from a stored file: enough for ``verdict.judge``."""

    name: str
    kind: str
    higher_is_better: bool
    definition: str
    aggregate: Callable[[Sequence[Any]], float]


def _mean(values: Sequence[Any]) -> float:
    return float(np.mean(np.asarray(values, dtype=float)))


def _registry_metric(name: str) -> Any | None:
    try:
        from evalsuite.metrics import get_metric
    except ImportError:
        return None
    try:
        return get_metric(name, MetricSpec())
    except Exception:  # unknown name or parameters the default spec cannot satisfy: fall back to inference
        return None


def stored_metric(name: str, stored: BaselineMetric) -> StoredMetric | None:
    """The registry's metric when its aggregate reproduces the stored value; else, for numeric
    per-example values, the mean (proportion when the stored interval was Wilson). None: cannot
    recompute (a corpus metric whose definition is unavailable or has other parameters)."""
    values = [v for v in stored.per_example.values() if v is not None]
    candidates: list[StoredMetric] = []
    registered = _registry_metric(name)
    if registered is not None:
        candidates.append(StoredMetric(name, registered.kind, stored.higher_is_better,
                                       stored.definition or registered.definition, registered.aggregate))
    if all(isinstance(v, (int, float)) for v in values):
        kind = stored.kind or ("proportion" if stored.interval == "wilson" else "mean")
        candidates.append(StoredMetric(name, kind, stored.higher_is_better, stored.definition, _mean))
    for candidate in candidates:
        if stored.value is None or not values:
            return candidate
        try:
            if math.isclose(candidate.aggregate(values), stored.value, rel_tol=1e-6, abs_tol=1e-9):
                return candidate
        except (TypeError, ValueError, ZeroDivisionError):
            continue
    return None


def compare(old_path: str, new_path: str, *, alpha: float, seed: int,
            thresholds: bool = True) -> tuple[list[ItemResult], list[str]]:
    old, new = load_baseline(old_path), load_baseline(new_path)
    results: list[ItemResult] = []
    notes: list[str] = []
    for item_id, new_item in new.items.items():
        old_item = old.items.get(item_id)
        if old_item is None:
            notes.append(f"{item_id}: not in {old.path}; thresholds only")
        elif old_item.dataset_fingerprint and old_item.dataset_fingerprint != new_item.dataset_fingerprint:
            notes.append(f"{item_id}: dataset fingerprint changed ({old_item.dataset_fingerprint} -> "
                         f"{new_item.dataset_fingerprint}); only matching example keys are compared")
        metrics = []
        for name, stored in new_item.metrics.items():
            metric = stored_metric(name, stored)
            if metric is None:
                notes.append(f"{item_id}: {name} skipped: cannot recompute this corpus metric from the stored values")
                continue
            keys = list(stored.per_example)
            baseline = old_item.metrics[name].per_example if old_item and name in old_item.metrics else None
            spec = MetricSpec(min=stored.min, max=stored.max) if thresholds else MetricSpec()
            metrics.append(judge(metric, spec, [stored.per_example[k] for k in keys], keys, baseline,
                                 alpha=alpha, seed=seed))
        results.append(ItemResult(
            nodeid="", suite="", case=item_id, variant="", item_id=item_id, source=str(new.path),
            model=new_item.model, params=new_item.params, record_mode="", cassette=None,
            dataset_fingerprint=new_item.dataset_fingerprint, n_examples=new_item.n_examples, records=[],
            metrics=metrics, errors=new_item.errors, unparsed=new_item.unparsed,
            passed=not any(m.failed for m in metrics),
        ))
    notes += [f"{item_id}: in {old.path} but not in {new.path}" for item_id in old.items if item_id not in new.items]
    return results, notes


def _cmd_compare(args: argparse.Namespace) -> int:
    try:
        results, notes = compare(args.old, args.new, alpha=args.alpha, seed=args.seed,
                                 thresholds=not args.ignore_thresholds)
    except BaselineError as exc:
        print(f"evalsuite compare: {exc}", file=sys.stderr)
        return 2
    print(f"comparing {args.new} (new) against {args.old} (old), alpha {args.alpha:g}")
    print(render(results), end="")
    if notes:
        print("\nnotes:")
        print("\n".join(f"  {note}" for note in notes))
    # A missed threshold takes precedence in the verdict and may hide a regression: both gate.
    return 1 if any(m.verdict in ("regression", "fail") for item in results for m in item.metrics) else 0


def _alpha(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"alpha must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalsuite", description="evalsuite command line tools")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cmp = commands.add_parser(
        "compare", help="paired comparison of two runs; exit 1 on any regression",
        description="Compare NEW against OLD (report.json or baseline files) with paired tests per metric "
                    "(McNemar exact for 0/1 metrics, a paired randomization test otherwise). Exit codes: 0 no regression, "
                    "1 a regression (or a threshold stored in NEW missed), 2 unusable input.")
    cmp.add_argument("old", help="the reference run: report.json or baseline file")
    cmp.add_argument("new", help="the run under test: report.json or baseline file")
    cmp.add_argument("--alpha", type=_alpha, default=0.05, help="significance level of the one-sided tests (default 0.05)")
    cmp.add_argument("--ignore-thresholds", action="store_true",
                     help="judge only the change against OLD, not the min/max thresholds stored in NEW")
    cmp.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    cmp.set_defaults(func=_cmd_compare)
    serve = commands.add_parser(
        "serve-local", add_help=False, help="serve a local GGUF model (Gemma 3 270M) on 127.0.0.1 for recording",
        description="Thin wrapper over llama-cpp-python's OpenAI-compatible server; see --help.")
    serve.set_defaults(func=_cmd_serve_local)
    return parser


def _cmd_serve_local(args: argparse.Namespace) -> int:
    from evalsuite import serve_local  # llama-cpp-python is an optional extra

    return serve_local.main(args.rest)


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(argv)
    if rest and args.command != "serve-local":
        build_parser().parse_args(argv)  # reports the unknown arguments and exits 2
    args.rest = rest
    return args.func(args)

