"""Command line: ``evalsuite compare|judge-check|schema|scan|view|serve-local`` (and ``python -m evalsuite ...``).

The main interface is pytest (``pytest cases``); these are the helpers around it. ``compare`` re-runs the
verdict's paired tests between two stored runs (``verdict.compare_runs``) and prints the same table as the
test session: a gate usable outside pytest, e.g. to compare two models' reports. ``schema`` prints the JSON
Schema of the case-file format (``cases.json_schema``) for YAML editors. ``scan`` looks for secrets in
cassettes and reports (``evalsuite.scan``), for pre-commit hooks and CI. ``view`` serves a report folder on
127.0.0.1 (``report._view``). ``judge-check`` measures an LLM judge's agreement with human labels and can gate
on it (``evalsuite.judge_check``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from evalsuite import __version__
from evalsuite.errors import EvalsuiteError

DESCRIPTION = """\
evalsuite's main interface is pytest: `pytest cases` runs the case files (cases/*.yaml), replaying
their recorded cassettes; see `pytest --help` for the evalsuite options. These commands are helpers."""

COMPARE_EXIT_CODES = """\
exit codes:
  0  no regression, and every threshold stored in NEW is met
  1  a metric regressed, missed a min/max threshold stored in NEW (unless --ignore-thresholds),
     or could not be measured
  2  unusable input: a file missing or malformed, bad arguments, or nothing to compare
     (no metric of NEW has an example paired with OLD, e.g. two unrelated files)"""


SCAN_EXIT_CODES = """\
exit codes:
  0  nothing secret-looking found
  1  something found (listed as file:line: kind)
  2  unusable input: a path that does not exist, a bad eval_redact line"""


def _cmd_compare(args: argparse.Namespace) -> int:
    from evalsuite.report import render  # the verdict and report stack is only needed by compare
    from evalsuite.verdict.compare_runs import UNUSABLE, compare, exit_code

    try:
        results, notes = compare(args.old, args.new, alpha=args.alpha, seed=args.seed,
                                 thresholds=not args.ignore_thresholds)
    except EvalsuiteError as exc:
        print(f"evalsuite compare: {exc}", file=sys.stderr)
        return UNUSABLE
    print(f"comparing {args.new} (new) against {args.old} (old), alpha {args.alpha:g}")
    print(render(results), end="")
    if notes:
        print("\nnotes:")
        print("\n".join(f"  {note}" for note in notes))
    code = exit_code(results)
    if code == UNUSABLE:
        print(f"evalsuite compare: nothing was compared: no metric of {args.new} has an example paired with "
              f"{args.old} (items are matched by id, examples by key; see the notes). Fix: compare two runs of the "
              "same case files, e.g. the report.json of the main branch against this branch's", file=sys.stderr)
    return code


def _cmd_scan(args: argparse.Namespace) -> int:
    from evalsuite import scan

    return scan.main(args.paths)


def _cmd_schema(args: argparse.Namespace) -> int:
    from evalsuite._util.atomic import write_atomic
    from evalsuite.cases.json_schema import render

    try:
        text = render()
    except EvalsuiteError as exc:  # e.g. an installed extension whose entry point fails to load
        print(f"evalsuite schema: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        print(text, end="")
        return 0
    try:
        write_atomic(args.output, text)
    except OSError as exc:
        print(f"evalsuite schema: {args.output}: cannot write: {exc.strerror}. Fix: check that the directory "
              "is writable, or print to stdout (omit --output)", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from evalsuite.report import _view

    return _view.main(args.path, args.port, open_browser=args.open)


def _alpha(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"alpha must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalsuite", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"evalsuite {__version__}",
                        help="print the evalsuite version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cmp = commands.add_parser(
        "compare", help="paired comparison of two stored runs; exit 1 on a regression or a missed threshold",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=COMPARE_EXIT_CODES,
        description="Compare NEW against OLD (report.json or baseline files) with paired tests per metric\n"
                    "(McNemar exact for 0/1 metrics, a paired randomization test otherwise), and check the\n"
                    "thresholds stored in NEW. Items are matched by id, examples by key.")
    cmp.add_argument("old", metavar="OLD", help="the reference run: report.json or baseline file")
    cmp.add_argument("new", metavar="NEW", help="the run under test: report.json or baseline file")
    cmp.add_argument("--alpha", type=_alpha, default=0.05,
                     help="significance level of the one-sided tests (default 0.05)")
    cmp.add_argument("--ignore-thresholds", action="store_true",
                     help="judge only the change against OLD, not the min/max thresholds stored in NEW")
    cmp.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    cmp.set_defaults(func=_cmd_compare)
    schema = commands.add_parser(
        "schema", help="print the JSON Schema of case files, for YAML editors",
        description="Print (or write) the JSON Schema of the case-file format, generated from evalsuite's "
                    "schema models, so that YAML editors complete and check case files. The same file ships in "
                    "the package as evalsuite/cases/case-file.schema.json.")
    schema.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the schema to FILE instead of stdout")
    schema.set_defaults(func=_cmd_schema)
    scan = commands.add_parser(
        "scan", help="find secret-looking text in cassettes and reports; exit 1 if any (for pre-commit and CI)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SCAN_EXIT_CODES,
        description="Look for the current environment's secrets (in any encoding), the eval_redact list of the\n"
                    "project's pytest config, and well-known key shapes (sk-..., Bearer ..., AKIA..., ghp_...,\n"
                    "JWTs, Azure api-key headers). Each finding is printed as file:line: kind, never the value.")
    scan.add_argument("paths", nargs="*", metavar="PATH",
                      help="files or directories to scan (default: the project's cassette and report directories)")
    scan.set_defaults(func=_cmd_scan)
    view = commands.add_parser(
        "view", help="serve report.html on 127.0.0.1 and print its URL (--open: open it in the browser)",
        description="Serve a report folder (default: reports/) on 127.0.0.1 only, print the URL of its report.html "
                    "and keep serving until Ctrl-C. The file also opens from disk; this is for a browser that "
                    "cannot reach the file (a remote machine through a forwarded port).")
    view.add_argument("path", nargs="?", type=Path, default=Path("reports"), metavar="PATH",
                      help="the report folder, or a report.html (default: reports)")
    view.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    view.add_argument("--open", action="store_true", help="also open the URL in the default web browser")
    view.set_defaults(func=_cmd_view)
    from evalsuite import judge_check  # argparse and the standard library only, until it runs

    judge_check.add_command(commands)
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
