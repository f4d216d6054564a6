"""Command line: ``evalsuite compare OLD.json NEW.json`` (and ``python -m evalsuite ...``): argparse only.

``compare`` re-runs the verdict's paired tests between two runs (report.json or baseline files;
``verdict.compare_runs``) and prints the same table as the test session, exiting 1 when any metric
regressed: a gate usable outside pytest, e.g. to compare two models' stored reports.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from evalsuite.errors import BaselineError
from evalsuite.report import render
from evalsuite.verdict.compare_runs import compare


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

