"""Stage 1: a YAML case file -> one ``CaseRun`` per case x variant.

Why this module exists: users edit YAML by hand, so every mistake must come back as one line that
names the file, the line, the key and the fix (``cases/x.yaml:12: metrics.acuracy: unknown metric
'acuracy'; did you mean 'accuracy'? valid: ...``), never as a pydantic traceback. ``load_suite`` reads
the file with its lines (``_source``), merges it over its layers (``_layers``), validates it
(``_explain`` turns a pydantic error into that line), checks that its parser and metrics can work and
that its settings mean what they say (``_checks``), expands its variants (``_variants``), and renders its
templates on the dataset's first rows (``_preview``), all before any model call is paid for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from evalsuite import parsing
from evalsuite.cases._checks import check_metric_settings, check_repeats
from evalsuite.cases._explain import from_validation
from evalsuite.cases._layers import DEFAULTS_FILE, Layer, base_layers, deep_merge, error_at, line_of, reject_secrets
from evalsuite.cases._preview import check_rows
from evalsuite.cases._source import KeyPath, dotted, read_yaml
from evalsuite.cases._variants import SAFE_NAME, expand
from evalsuite.cases.schema import Case, ParseSpec, SuiteFile
from evalsuite.errors import CaseFileError, MetricParamError, ParseSpecError, UnknownName, display_path

if TYPE_CHECKING:
    from evalsuite.metrics import Metric

_PARSER_KEYS = ("kind", "python")  # two ways to name the parser: a layer naming one replaces the other


@dataclass
class CaseRun:
    """One pytest item: a validated case with one variant applied."""

    suite: str
    case: Case
    variant: str  # "" when the case has no variants
    item_id: str  # "sentiment[terse-t0.7]"; "sentiment" without variants; safe as a file name
    source: str  # "cases/sentiment.yaml:12", the line of the case
    base_dir: Path  # directory of the case file: relative dataset paths start here
    prompt_variant: str = ""  # the prompt variant's name alone (sweep plots draw one line per prompt variant)


def load_suite(path: Path, rootdir: Path) -> list[CaseRun]:
    """Parse, layer, validate and expand one case file into pytest items."""
    path = Path(path)
    rootdir = Path(rootdir)
    if path.name == DEFAULTS_FILE:
        raise CaseFileError(path, 1, f"{DEFAULTS_FILE} holds shared defaults, not cases; load the case files beside it",
                            rootdir=rootdir)
    data, lines = read_yaml(path, rootdir)
    if not isinstance(data, dict):
        raise CaseFileError(path, 1, "the file must be a mapping with 'cases:' (and optional 'suite:', 'defaults:'); "
                            "see the README for an example", rootdir=rootdir)
    layers = base_layers(path, rootdir)
    reject_secrets(Layer(path, data, lines), rootdir, data_under=(("defaults",), ("cases", None)))
    try:
        suite_file = SuiteFile.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, SuiteFile, [Layer(path, data, lines)], rootdir) from None

    if suite_file.defaults:
        layers.append(Layer(path, suite_file.defaults, lines, ("defaults",)))
    suite = suite_file.suite or path.stem
    if not SAFE_NAME.match(suite):
        key = ("suite",) if suite_file.suite else ()
        raise CaseFileError(path, lines.get(key, 1), f"{'suite: ' if key else ''}suite name {suite!r} must use only "
                            "letters, digits, '_', '.' and '-' (it names the cassette directory); "
                            + ("rename it" if key else "rename the file or set 'suite:'"), rootdir=rootdir)
    runs: list[CaseRun] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(suite_file.cases):
        case_layer = Layer(path, raw, lines, ("cases", index))
        case_line = lines.get(("cases", index), 1)
        all_layers = [*layers, case_layer]
        merged = _merge(all_layers)
        try:
            case = Case.model_validate(merged, context={"base_dir": path.parent})  # files named relative to it
        except ValidationError as exc:
            raise from_validation(exc, Case, all_layers, rootdir, data=merged) from None
        if case.id in seen:
            raise error_at(all_layers, ("id",), f"duplicate case id {case.id!r} (first at line {seen[case.id]}); "
                           "give every case in a file its own id", rootdir)
        seen[case.id] = case_line
        case = case.model_copy(update={"parse": _check_parse(case, all_layers, rootdir)})
        metrics = _check_metrics(case, all_layers, rootdir)
        check_metric_settings(case, metrics, all_layers, rootdir)
        source = f"{display_path(path, rootdir)}:{case_line}"
        case_runs = []
        for variant, prompt_name, variant_case in expand(case, all_layers, rootdir):
            if variant_case.prompt.user is None and variant_case.prompt.conversation is None:
                where = ("variants", "prompts", prompt_name) if prompt_name else ("prompt",)
                raise error_at(all_layers, where, "prompt.user is missing; add a user template (the chat user "
                               "message, or the whole prompt for api: completions), or a prompt.conversation field",
                               rootdir)
            item_id = f"{case.id}[{variant}]" if variant else case.id
            check_repeats(variant_case, item_id, all_layers, rootdir)
            case_runs.append(CaseRun(suite, variant_case, variant, item_id, source, path.parent, prompt_name or ""))
        check_rows(case, [(run.prompt_variant, run.case) for run in case_runs], metrics, all_layers, path.parent,
                   rootdir)
        runs.extend(case_runs)
    return runs


def _merge(layers: list[Layer]) -> dict[str, Any]:
    """The layers deep-merged, later wins; ``parse.kind`` and ``parse.python`` replace each other, so a case
    can swap the defaults' ``kind: label`` for its own ``python:`` parser."""
    merged: dict[str, Any] = {}
    for layer in layers:
        parse, below = layer.data.get("parse"), merged.get("parse")
        if isinstance(parse, dict) and isinstance(below, dict) and any(k in parse for k in _PARSER_KEYS):
            merged["parse"] = {k: v for k, v in below.items() if k not in _PARSER_KEYS}
        merged = deep_merge(merged, layer.data)
    return merged


def _check_parse(case: Case, layers: list[Layer], rootdir: Path) -> ParseSpec:
    """A parser that cannot work (no labels, a synonym of two labels, a bad regex, a missing ``python:`` file,
    a misspelt parameter) fails before any model call; returns the spec ready to run."""
    try:
        return parsing.check(case.parse, base_dir=layers[-1].path.parent, rootdir=rootdir)
    except ParseSpecError as exc:
        file, line = line_of(layers, exc.key)
        raise CaseFileError(file, line, str(exc), rootdir=rootdir) from None  # the message names its parse.* key


def _check_metrics(case: Case, layers: list[Layer], rootdir: Path) -> dict[str, Metric]:
    """Every metric is built at collection: unknown names, bad parameters and a missing logprobs setting fail
    here, with the metric's line, not after the model calls were paid for."""
    from evalsuite.metrics import get_metric  # metrics build on the schema: imported once a case is checked

    metrics = {}
    for name, spec in case.metrics.items():
        try:
            metric = get_metric(name, spec, base_dir=layers[-1].path.parent)
        except UnknownName as exc:
            problem = str(exc)
        except MetricParamError as exc:
            problem = str(exc).removeprefix(f"{name}: ")
        else:
            if not metric.needs_logprobs or case.model.logprobs:
                metrics[name] = metric
                continue
            problem = f"{name} needs token logprobs; set model.logprobs: true"
        file, line = line_of(layers, _metric_key(layers, name))
        raise CaseFileError(file, line, f"{dotted(('metrics', name))}: {problem}", rootdir=rootdir)
    return metrics


def _metric_key(layers: list[Layer], name: str) -> KeyPath:
    """Where metric ``name`` is written: ``metrics.<name>``, or its item of the list form ``metrics: [a, b]``."""
    for layer in reversed(layers):
        written = layer.data.get("metrics")
        if isinstance(written, list) and name in written:
            return ("metrics", written.index(name))
        if written is not None:
            break
    return ("metrics", name)
