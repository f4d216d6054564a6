"""Stage 1: a YAML case file -> one ``CaseRun`` per case x variant.

Why this module exists: users edit YAML by hand, so every mistake must come back as one line that
names the file, the line, the key and the fix (``cases/x.yaml:12: metrics.acuracy: unknown metric
'acuracy'; did you mean 'accuracy'? valid: ...``), never as a pydantic traceback. PyYAML's node tree
keeps the line of every key; pydantic's error locations are mapped back onto it.

Layers merge in this order, later wins (dicts deep-merged, lists replaced): the ``[tool.evalsuite]``
table of ``<rootdir>/pyproject.toml`` (minus tool-level settings such as ``prices``), the
``defaults.yaml`` beside the case file (not a suite itself: the collector skips it), the file's
``defaults:``, then the case.
"""

from __future__ import annotations

import difflib
import itertools
import re
import tomllib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from evalsuite import parsing
from evalsuite.cases.schema import Case, ModelSettings, SuiteFile
from evalsuite.errors import CaseFileError, display_path
from evalsuite.errors import MetricParamError, UnknownName

DEFAULTS_FILE = "defaults.yaml"
TOOL_KEYS = frozenset({"prices"})  # [tool.evalsuite] keys that configure the tool, not cases
SECRET_KEYS = frozenset({"api_key", "key", "token", "password"})
# Maps of user data (rows, label names, column names): their keys are data, never settings.
DATA_MAPS = (("dataset", "examples"), ("dataset", "columns"), ("dataset", "label_names"), ("parse", "labels"))
PARAM_ABBREVIATIONS = {"temperature": "t", "max_tokens": "mt", "top_p": "p", "seed": "s"}
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")

KeyPath = tuple[Any, ...]


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


@dataclass
class _Layer:
    """One source of settings with the line of each of its keys."""

    path: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int]
    prefix: KeyPath = ()  # where the case's keys live inside ``lines`` (e.g. ("cases", 3))


def tool_settings(rootdir: Path) -> dict[str, Any]:
    """The ``[tool.evalsuite]`` table of ``<rootdir>/pyproject.toml`` ({} when absent)."""
    path = Path(rootdir) / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        line = int(m.group(1)) if (m := re.search(r"line (\d+)", str(exc))) else 1
        raise CaseFileError(path, line, f"invalid TOML: {exc}; fix the syntax", rootdir=rootdir) from None
    table = data.get("tool", {}).get("evalsuite", {})
    return table if isinstance(table, dict) else {}


def load_suite(path: Path, rootdir: Path) -> list[CaseRun]:
    """Parse, layer, validate and expand one case file into pytest items."""
    path = Path(path)
    rootdir = Path(rootdir)
    if path.name == DEFAULTS_FILE:
        raise CaseFileError(path, 1, f"{DEFAULTS_FILE} holds shared defaults, not cases; load the case files beside it",
                            rootdir=rootdir)
    data, lines = _read_yaml(path, rootdir)
    if not isinstance(data, dict):
        raise CaseFileError(path, 1, "the file must be a mapping with 'cases:' (and optional 'suite:', 'defaults:'); "
                            "see the README for an example", rootdir=rootdir)
    layers = _base_layers(path, rootdir)
    _reject_secrets(_Layer(path, data, lines), rootdir, data_under=(("defaults",), ("cases", None)))
    try:
        suite_file = SuiteFile.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(exc, SuiteFile, [_Layer(path, data, lines)], rootdir) from None

    if suite_file.defaults:
        layers.append(_Layer(path, suite_file.defaults, lines, ("defaults",)))
    suite = suite_file.suite or path.stem
    if not SAFE_NAME.match(suite):
        key = ("suite",) if suite_file.suite else ()
        raise CaseFileError(path, lines.get(key, 1), f"{'suite: ' if key else ''}suite name {suite!r} must use only "
                            "letters, digits, '_', '.' and '-' (it names the cassette directory); "
                            + ("rename it" if key else "rename the file or set 'suite:'"), rootdir=rootdir)
    runs: list[CaseRun] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(suite_file.cases):
        case_layer = _Layer(path, raw, lines, ("cases", index))
        case_line = lines.get(("cases", index), 1)
        all_layers = [*layers, case_layer]
        merged: dict[str, Any] = {}
        for layer in all_layers:
            merged = _deep_merge(merged, layer.data)
        try:
            case = Case.model_validate(merged)
        except ValidationError as exc:
            raise _from_validation(exc, Case, all_layers, rootdir, data=merged) from None
        if case.id in seen:
            raise _error_at(all_layers, ("id",), f"duplicate case id {case.id!r} (first at line {seen[case.id]}); "
                            "give every case in a file its own id", rootdir)
        seen[case.id] = case_line
        _check_parse(case, all_layers, rootdir)
        _check_metrics(case, all_layers, rootdir)
        source = f"{display_path(path, rootdir)}:{case_line}"
        for variant, prompt_name, variant_case in _expand(case, all_layers, rootdir):
            if variant_case.prompt.user is None:
                where = ("variants", "prompts", prompt_name) if prompt_name else ("prompt",)
                raise _error_at(all_layers, where, "prompt.user is missing; add a user template (the chat user "
                                "message, or the whole prompt for api: completions)", rootdir)
            item_id = f"{case.id}[{variant}]" if variant else case.id
            runs.append(CaseRun(suite, variant_case, variant, item_id, source, path.parent, prompt_name or ""))
    return runs


# ---------------------------------------------------------------------------------------------- YAML


class _SafeLineLoader(yaml.SafeLoader):
    """PyYAML's safe loader; kept as its own class so nothing here can register unsafe tags globally."""


def _read_yaml(path: Path, rootdir: Path) -> tuple[Any, dict[KeyPath, int]]:
    """Safe-load a YAML file and map every key path to its 1-based line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseFileError(path, 1, f"cannot read the file: {exc.strerror}", rootdir=rootdir) from None
    loader = _SafeLineLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        lines: dict[KeyPath, int] = {(): 1}
        if node is not None:
            _index_lines(loader, node, (), lines, path, rootdir)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise CaseFileError(path, line, f"invalid YAML: {problem}; check the indentation, and quote values that "
                            "contain ': ', '#', '{' or start with '*', '&', '!'", rootdir=rootdir) from None
    except yaml.YAMLError as exc:
        raise CaseFileError(path, 1, f"invalid YAML: {exc}", rootdir=rootdir) from None
    finally:
        loader.dispose()
    return data, lines


def _index_lines(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int],
                 file: Path, rootdir: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, typing.Hashable):
                continue
            if key in seen:  # PyYAML silently keeps the last one; a typo'd copy would be invisible
                raise CaseFileError(file, key_node.start_mark.line + 1,
                                    f"{_dotted(path + (key,))}: duplicate key; keep only one", rootdir=rootdir)
            seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _index_lines(loader, value_node, path + (key,), lines, file, rootdir)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _index_lines(loader, item, path + (index,), lines, file, rootdir)


def _toml_lines(text: str, table: dict[str, Any]) -> dict[KeyPath, int]:
    """Best-effort lines for the top-level keys of ``[tool.evalsuite]`` (tomllib keeps no positions)."""
    lines: dict[KeyPath, int] = {}
    header = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if re.match(r"^\[\s*tool\.evalsuite\s*\]", stripped):
            header = number
            lines[()] = number
            continue
        if header is None:
            continue
        if m := re.match(r"^\[\s*tool\.evalsuite\.([A-Za-z0-9_\-]+)", stripped):
            lines.setdefault((m.group(1),), number)
        elif stripped.startswith("[") and not stripped.startswith("[tool.evalsuite"):
            header = None
        elif m := re.match(r"^([A-Za-z0-9_\-]+)\s*[=.]", stripped):
            lines.setdefault((m.group(1),), number)
    lines.setdefault((), 1)
    return {k: v for k, v in lines.items() if not k or k[0] in table}


# ------------------------------------------------------------------------------------------- layers


def _base_layers(path: Path, rootdir: Path) -> list[_Layer]:
    layers = []
    table = {k: v for k, v in tool_settings(rootdir).items() if k not in TOOL_KEYS}
    if table:
        pyproject = rootdir / "pyproject.toml"
        layer = _Layer(pyproject, table, _toml_lines(pyproject.read_text(encoding="utf-8"), table))
        _reject_secrets(layer, rootdir)
        layers.append(layer)
    defaults_path = path.parent / DEFAULTS_FILE
    if defaults_path.is_file():
        data, lines = _read_yaml(defaults_path, rootdir)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise CaseFileError(defaults_path, 1, "defaults.yaml must be a mapping of case keys "
                                "(model:, dataset:, parse:, ...)", rootdir=rootdir)
        layer = _Layer(defaults_path, data, lines)
        _reject_secrets(layer, rootdir)
        layers.append(layer)
    return layers


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Later wins; dicts merge key by key, everything else (lists included) is replaced."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _line_of(layers: list[_Layer], key: KeyPath) -> tuple[Path, int]:
    """File and line of ``key`` in the layer that set it (the last layer holding its deepest existing
    prefix), falling back to the closest parent key that has a line in that layer."""
    for depth in range(len(key), -1, -1):
        prefix = key[:depth]
        for layer in reversed(layers):  # the last layer that holds a key is the one that won
            if _has(layer.data, prefix):
                for known in range(len(prefix), -1, -1):
                    if layer.prefix + prefix[:known] in layer.lines:
                        return layer.path, layer.lines[layer.prefix + prefix[:known]]
    last = layers[-1]
    return last.path, last.lines.get(last.prefix, 1)


def _has(data: Any, key: KeyPath) -> bool:
    for part in key:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False
    return True


def _error_at(layers: list[_Layer], key: KeyPath, message: str, rootdir: Path) -> CaseFileError:
    file, line = _line_of(layers, key)
    return CaseFileError(file, line, f"{_dotted(key)}: {message}" if key else message, rootdir=rootdir)


def _dotted(key: KeyPath) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _reject_secrets(layer: _Layer, rootdir: Path, data_under: tuple[KeyPath, ...] = ((),)) -> None:
    """Credentials belong in the environment: a key in YAML ends up in git and in reports."""
    for key in sorted(layer.lines, key=lambda k: layer.lines[k]):
        if not key or not isinstance(key[-1], str) or key[-1].lower() not in SECRET_KEYS:
            continue
        if any(_relative(key, root) is not None and _in_data_map(_relative(key, root)) for root in data_under):
            continue
        raise CaseFileError(layer.path, layer.lines[key],
                            f"{_dotted(key)}: credentials must not be written in case files; set the "
                            "OPENAI_API_KEY or AZURE_OPENAI_API_KEY environment variable instead "
                            "(a CI secret in CI)", rootdir=rootdir)


def _relative(key: KeyPath, root: KeyPath) -> KeyPath | None:
    """``key`` below ``root`` (None in ``root`` matches any list index), else None."""
    if len(key) < len(root):
        return None
    for part, want in zip(key, root):
        if want is not None and part != want:
            return None
    return key[len(root):]


def _in_data_map(key: KeyPath) -> bool:
    return any(key[: len(m)] == m and len(key) > len(m) for m in DATA_MAPS)


# --------------------------------------------------------------------------------------- validation


def _from_validation(exc: ValidationError, model: type[BaseModel], layers: list[_Layer], rootdir: Path,
                     data: dict[str, Any] | None = None) -> CaseFileError:
    """The first problem (in file order) as one message: key, what is wrong, how to fix it."""
    data = layers[-1].data if data is None else data
    problems = []
    for error in exc.errors(include_url=False):
        key, extra = _real_key(data, error)
        file, line = _line_of(layers, key if extra is None else key + (extra,))
        problems.append((str(file), line, key, extra, error))
    # A typo'd key is reported as "unknown" rather than as the "missing" key it was meant to be.
    problems.sort(key=lambda p: (p[0] != str(layers[-1].path), p[4]["type"] == "missing", p[1]))
    file, line, key, extra, error = problems[0]
    siblings = [p[4] for p in problems if p[2] == key and p[3] == extra]
    full_key = key + (extra,) if extra is not None else key
    message = _explain(model, full_key, error, siblings)
    return CaseFileError(Path(file), line, f"{_dotted(full_key)}: {message}" if full_key else message, rootdir=rootdir)


def _real_key(data: Any, error: dict[str, Any]) -> tuple[KeyPath, Any]:
    """The part of pydantic's location that exists in the data (union tags dropped), and a missing key."""
    key: KeyPath = ()
    loc = list(error["loc"])
    for position, part in enumerate(loc):
        if isinstance(data, dict) and part in data:
            data = data[part]
            key += (part,)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
            key += (part,)
        elif position == len(loc) - 1 and error["type"] == "missing":
            return key, part
    return key, None


def _annotation_at(model: type[BaseModel], key: KeyPath) -> Any:
    """The type annotation that governs ``key`` inside ``model`` (None when unknown)."""
    annotation: Any = model
    for part in key:
        annotation = _strip_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            annotation = field.annotation
        elif typing.get_origin(annotation) in (list, tuple):
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return None
    return _strip_optional(annotation)


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _suggest(word: Any, choices: list[str], label: str) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}{label}: {', '.join(choices)}"


def _explain(model: type[BaseModel], key: KeyPath, error: dict[str, Any], siblings: list[dict[str, Any]]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        parent = _annotation_at(model, key[:-1])
        valid = sorted(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
        return f"unknown key {key[-1]!r}; {_suggest(key[-1], valid, 'valid keys')}"
    if kind == "missing":
        return "required key is missing; add it"
    if kind == "literal_error":
        if loc and loc[-1] == "[key]":  # a dict whose keys are a Literal (variants.matrix)
            dict_type = _annotation_at(model, key[:-1])
            choices = [str(c) for c in typing.get_args(typing.get_args(dict_type)[0])] if dict_type else []
            return f"unknown key {key[-1]!r}; {_suggest(key[-1], choices, 'valid keys')}"
        annotation = _annotation_at(model, key)
        choices = [str(c) for c in typing.get_args(annotation)] if typing.get_origin(annotation) is Literal else []
        if choices:
            return f"{error['input']!r} is not allowed; {_suggest(error['input'], choices, 'choices')}"
    if kind == "string_pattern_mismatch" and key and key[-1] == "id":
        return (f"{error['input']!r} is not a valid id; use only letters, digits, '_', '.' and '-' "
                "(ids name cassettes and baseline entries)")
    if len(siblings) > 1:  # a union: say every shape that would have been accepted
        shapes = " or ".join(dict.fromkeys(_lower_first(s["msg"]) for s in siblings))
        return f"got {_short(error['input'])}: {shapes}"
    message = _lower_first(error["msg"]).removeprefix("value error, ")
    return f"{message} (got {_short(error['input'])})" if kind != "value_error" else message


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_parse(case: Case, layers: list[_Layer], rootdir: Path) -> None:
    """A parser that cannot work (no labels, a synonym of two labels, a bad regex) fails before any model call."""
    try:
        parsing.check(case.parse)
    except ValueError as exc:
        file, line = _line_of(layers, ("parse",))
        raise CaseFileError(file, line, str(exc), rootdir=rootdir) from None  # the message names its parse.* key


def _check_metrics(case: Case, layers: list[_Layer], rootdir: Path) -> None:
    """Every metric is built at collection: unknown names, bad parameters and a missing logprobs setting fail
    here, with the metric's line, not after the model calls were paid for."""
    from evalsuite.metrics import get_metric  # metrics build on the schema: imported once a case is checked

    for name, spec in case.metrics.items():
        try:
            metric = get_metric(name, spec, base_dir=layers[-1].path.parent)
        except UnknownName as exc:
            problem = f"unknown metric {name!r}; {_suggest(name, exc.valid, 'valid')}"
        except MetricParamError as exc:
            problem = str(exc).removeprefix(f"{name}: ")
        else:
            if not metric.needs_logprobs or case.model.logprobs:
                continue
            problem = f"{name} needs token logprobs; set model.logprobs: true"
        file, line = _line_of(layers, _metric_key(layers, name))
        raise CaseFileError(file, line, f"{_dotted(('metrics', name))}: {problem}", rootdir=rootdir)


def _metric_key(layers: list[_Layer], name: str) -> KeyPath:
    """Where metric ``name`` is written: ``metrics.<name>``, or its item of the list form ``metrics: [a, b]``."""
    for layer in reversed(layers):
        written = layer.data.get("metrics")
        if isinstance(written, list) and name in written:
            return ("metrics", written.index(name))
        if written is not None:
            break
    return ("metrics", name)


# ---------------------------------------------------------------------------------------- variants


def _expand(case: Case, layers: list[_Layer], rootdir: Path) -> Iterator[tuple[str, str, Case]]:
    """Every prompt variant x every parameter combination: (variant id, prompt variant name, case).

    Without prompt variants the case's own prompt is the only one; with them, the case's prompt is only
    the base each variant overrides (add an empty variant, e.g. ``plain: {}``, to run it as is)."""
    for name in case.variants.prompts:
        if not SAFE_NAME.match(name):
            raise _error_at(layers, ("variants", "prompts", name), f"variant name {name!r} must use only letters, "
                            "digits, '_', '.' and '-' (it becomes part of test ids and file names)", rootdir)
    matrix: list[tuple[str, list[Any]]] = []
    for param in PARAM_ABBREVIATIONS:  # fixed order, so ids do not depend on the YAML's key order
        if param not in case.variants.matrix:
            continue
        values = case.variants.matrix[param]
        if not values:
            raise _error_at(layers, ("variants", "matrix", param), "empty list; give at least one value or "
                            "remove the key", rootdir)
        checked = []
        for index, value in enumerate(values):
            try:
                checked.append(getattr(ModelSettings.model_validate({param: value}), param))
            except ValidationError as exc:
                msg = _lower_first(exc.errors(include_url=False)[0]["msg"])
                raise _error_at(layers, ("variants", "matrix", param, index), f"{msg} (got {value!r})",
                                rootdir) from None
        matrix.append((param, checked))

    prompts: list[tuple[str, Any]] = list(case.variants.prompts.items()) or [("", None)]
    combos = list(itertools.product(*(values for _, values in matrix)))
    seen: set[str] = set()
    for prompt_name, prompt_variant in prompts:
        for combo in combos:
            params = dict(zip((param for param, _ in matrix), combo))
            parts = ([prompt_name] if prompt_name else []) + [
                f"{PARAM_ABBREVIATIONS[p]}{_format_param(v)}" for p, v in params.items()
            ]
            variant = "-".join(parts)
            if variant in seen:
                raise _error_at(layers, ("variants",), f"two variants share the id {variant!r}; "
                                "remove duplicate values from the matrix", rootdir)
            seen.add(variant)
            prompt = case.prompt
            if prompt_variant is not None:
                overrides = {k: v for k, v in prompt_variant if v is not None}
                prompt = prompt.model_copy(update=overrides)
            model = case.model.model_copy(update=params) if params else case.model
            yield variant, prompt_name, case.model_copy(update={"prompt": prompt, "model": model})


def _format_param(value: float | int) -> str:
    """``0.7`` -> "0.7", ``0.0`` -> "0", ``20`` -> "20" (ints stay exact: ``format(12345678, "g")`` rounds)."""
    return str(value) if isinstance(value, int) else format(value, "g")
