"""Stage 5: answer text -> prediction, by a named parser.

Why a parser at all: the exercise scored sentiment with ``"positive" in pred``, which calls
"Negative. It is not positive" positive. Here a label answer is the label whose synonym appears FIRST as a
whole word, and a mention directly negated ("not positive", "isn't negative") is no answer for that label.
We never infer the complement from a negation: "not positive" alone is ambiguous in a multi-label task
(neutral? negative?), so it is unparsed, counted wrong and listed in the report rather than guessed.

Parsers are a registry (``label``, ``regex``, ``json``, ``tool_calls``, ``raw`` built in), so a case file names
one by ``parse.kind``: a user adds one with ``@evalsuite.parser("name")`` in a ``conftest.py``, from a package
through the ``evalsuite.parsers`` entry-point group, or for one case with ``parse: {python: "file.py:fn"}``.
A parser is a function of the answer text returning the prediction, or ``None`` when the text cannot be
parsed; it receives the ``ParseSpec`` if it has a parameter named ``spec`` and the whole ``Answer`` (tool
calls, finish reason) if it has one named ``answer``, and its other parameters are set by ``parse.params``
(checked at load time, with a did-you-mean, and converted to their annotations).

``parse`` returns ``(prediction, parsed_ok)``; an errored call, an answer without text (unless the parser
reads the ``answer``, as ``tool_calls`` does) or an unparseable answer is ``(None, False)``.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import typing
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from evalsuite._registry import Registry
from evalsuite._util.json_schemas import schema_error
from evalsuite._util.python_ref import load_function, resolve_ref
from evalsuite._util.user_regex import RegexTimeout, UserPattern, user_pattern
from evalsuite.cases.schema import ParseSpec
from evalsuite.errors import EvalsuiteError, EvalsuiteWarning, ParseSpecError, suggest
from evalsuite.records import Answer

__all__ = ["ParseSpec", "check", "names", "parse", "parser"]

Check = Callable[[ParseSpec], None]  # raises ValueError("<what to fix>") when a spec cannot work
Run = Callable[[str, ParseSpec, "Answer | None"], Any]
_INJECTED = ("spec", "answer")  # parameters evalsuite passes; parse.params sets the others

# A negator right before a label mention: "not", "no", "never", "nor", "neither", or a word ending in n't.
_NEGATED = re.compile(r"(?:\b(?:not|no|never|nor|neither)|n[’']t)\s*$", re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
_NOT_PARAMS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class Parser:
    """A registered parser: the user's function, its optional check, and the parameters a case may set."""

    def __init__(self, fn: Callable[..., Any], check: Check | None = None) -> None:
        self.__module__, self.__qualname__ = fn.__module__, fn.__qualname__  # tell two registrations apart
        self.fn = fn
        self.check = check
        signature = inspect.signature(fn)
        first = next(iter(signature.parameters.values()), None)
        if first is None or first.kind not in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD):
            raise EvalsuiteError(f"parser {fn.__module__}.{fn.__qualname__} must take the answer text as its first "
                                 "parameter, e.g. def yes_no(text: str) -> bool | None")
        rest = list(signature.parameters.values())[1:]
        self.params = [p for p in rest if p.name not in _INJECTED and p.kind not in _NOT_PARAMS]
        self._any_params = any(p.kind is p.VAR_KEYWORD for p in rest)
        self.takes_answer = "answer" in signature.parameters
        self.run = self._runner(fn, "spec" in signature.parameters)

    def _runner(self, fn: Callable[..., Any], takes_spec: bool) -> Run:
        """``run(text, spec, answer)``: a call of ``fn`` that passes what it declares, by keyword."""
        takes_answer, has_params = self.takes_answer, bool(self.params or self._any_params)

        def run(text: str, spec: ParseSpec, answer: Answer | None) -> Any:
            injected: dict[str, Any] = {"spec": spec} if takes_spec else {}
            if takes_answer:
                injected["answer"] = answer
            return fn(text, **injected, **spec.params) if has_params else fn(text, **injected)

        return run

    def bind(self, given: dict[str, Any]) -> dict[str, Any]:
        """``parse.params`` checked against the function's parameters and converted to their annotations."""
        declared = {p.name: p for p in self.params}
        for key in given:
            if key not in declared and not self._any_params:
                listed = suggest(key, list(declared), "valid", none="none (this parser takes no parameters)")
                raise ParseSpecError(("parse", "params", key), f"parse.params.{key}: unknown parameter {key!r}; {listed}")
        hints = _type_hints(self.fn)
        bound = dict(given)
        for name, param in declared.items():
            if name not in given:
                if param.default is param.empty:
                    raise ParseSpecError(("parse", "params"), f"parse.params: parameter {name!r} is required, "
                                         f"e.g. `params: {{{name}: ...}}`")
                continue
            try:
                bound[name] = TypeAdapter(hints.get(name, Any)).validate_python(given[name])
            except ValidationError as exc:
                msg = exc.errors(include_url=False)[0]["msg"]
                raise ParseSpecError(("parse", "params", name),
                                     f"parse.params.{name}: {msg[:1].lower()}{msg[1:]} (got {given[name]!r})") from None
        return bound


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an annotation that does not resolve (a name imported only for type checking): no conversion
        return {}


parsers: Registry[Parser] = Registry("parser")
_by_kind: dict[str, Parser] = {}  # kind -> its Parser, looked up once per kind


def parser(name: str, *, check: Check | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(text[, spec][, **params]) -> prediction | None`` as the parser ``parse.kind: <name>``.

    ``check(spec)`` runs at load time and raises ``ValueError("<what to fix>")`` for a spec the parser
    cannot work with. The function is returned unchanged, so it stays callable in the user's own tests."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        parsers.add(name, Parser(fn, check))
        _by_kind.pop(name, None)
        return fn

    return register


def names() -> list[str]:
    return parsers.names()


def parse(text: str | None, spec: ParseSpec, *, answer: Answer | None = None) -> tuple[Any, bool]:
    """``(prediction, parsed_ok)`` of an answer's text; ``answer`` reaches parsers that read it (tool calls)."""
    found = _by_kind.get(spec.kind) if spec.python is None else None
    if found is None:
        found = _parser_for(spec)
        if spec.python is None:
            _by_kind[spec.kind] = found
    if text is None and not found.takes_answer:
        return None, False
    prediction = found.run(text or "", spec, answer)
    return prediction, prediction is not None


def check(spec: ParseSpec, *, base_dir: Path | None = None, rootdir: Path | None = None) -> ParseSpec:
    """Raise ``ParseSpecError`` (a ``ValueError`` naming its ``parse.*`` key) with a fix if ``spec`` cannot
    work, before any model call; return the spec ready to run anywhere: a ``python:`` file made absolute
    (relative to ``base_dir``, the case file's folder) and ``params`` converted to their declared types."""
    if spec.python is not None:
        base = Path.cwd() if base_dir is None else base_dir
        try:
            found = _as_parser(load_function(spec.python, base, rootdir=rootdir))
        except (ValueError, EvalsuiteError) as exc:
            raise ParseSpecError(("parse", "python"), f"parse.python: {exc}") from None
        spec = spec.model_copy(update={"python": resolve_ref(spec.python, base)})
    else:
        found = _registered(spec.kind)
    if spec.params or found.params:
        spec = spec.model_copy(update={"params": found.bind(spec.params)})
    if found.check is not None:
        try:
            found.check(spec)
        except ParseSpecError:
            raise
        except ValueError as exc:  # the message names its parse.* key; the loader adds the line of parse:
            raise ParseSpecError(("parse",), str(exc)) from None
    return spec


def _parser_for(spec: ParseSpec) -> Parser:
    return _python_parser(spec.python) if spec.python is not None else _registered(spec.kind)


def _registered(kind: str) -> Parser:
    found = parsers.get(kind)
    if not isinstance(found, Parser):  # an entry point naming a plain function: wrapped once, then kept
        found = Parser(found)
        parsers.add(kind, found)
    return found


@functools.cache
def _python_parser(ref: str) -> Parser:
    return _as_parser(load_function(ref, Path.cwd()))  # ``check`` made the path absolute


def _as_parser(fn: Callable[..., Any]) -> Parser:
    return fn if isinstance(fn, Parser) else Parser(fn)


# ----------------------------------------------------------------------------------------------- label


def _check_label(spec: ParseSpec) -> None:
    if not spec.labels:
        raise ValueError("parse.kind label needs parse.labels, e.g. {positive: [positive, good], negative: [negative, bad]}")
    _label_pattern(_label_key(spec))


def _label_key(spec: ParseSpec) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], bool]:
    return tuple((label, tuple(synonyms)) for label, synonyms in spec.labels.items()), spec.case_sensitive


@lru_cache(maxsize=64)
def _label_pattern(key: tuple[tuple[tuple[str, tuple[str, ...]], ...], bool]) -> tuple[re.Pattern[str], dict[str, str]]:
    """One alternation of every synonym, longest first, so "very positive" wins over "positive" at a position."""
    labels, case_sensitive = key
    owner: dict[str, str] = {}
    for label, synonyms in labels:
        for synonym in (label, *synonyms):
            word = " ".join(str(synonym).split())
            form = word if case_sensitive else word.casefold()
            if not form:
                continue
            if owner.setdefault(form, label) != label:
                raise ValueError(f"parse.labels: {word!r} is a synonym of both {owner[form]!r} and {label!r}")
    alternatives = "|".join(r"\s+".join(map(re.escape, form.split())) for form in sorted(owner, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", 0 if case_sensitive else re.IGNORECASE)
    return pattern, owner


@parser("label", check=_check_label)
def _label(text: str, spec: ParseSpec) -> str | None:
    pattern, owner = _label_pattern(_label_key(spec))
    for match in pattern.finditer(text):
        if _NEGATED.search(text, 0, match.start()):
            continue  # "not positive" says nothing about which label the answer is
        found = " ".join(match.group().split())
        return owner[found if spec.case_sensitive else found.casefold()]
    return None


# ----------------------------------------------------------------------------------------------- regex


def _check_regex(spec: ParseSpec) -> None:
    if not spec.pattern:
        raise ValueError(r"parse.kind regex needs parse.pattern, e.g. 'answer: (\w+)'")
    _compile(spec.pattern, spec.case_sensitive)


def _compile(pattern: str, case_sensitive: bool) -> UserPattern:
    return user_pattern(pattern, "parse.pattern", ignore_case=not case_sensitive)


@parser("regex", check=_check_regex)
def _regex(text: str, spec: ParseSpec) -> str | None:
    """Group "answer" if the pattern names it, else group 1, else the whole match; the first match wins.

    A search that runs past the time limit (catastrophic backtracking) leaves the answer unparsed, with a
    warning naming the pattern."""
    pattern = _compile(spec.pattern or "", spec.case_sensitive)
    try:
        match = pattern.search(text)
    except RegexTimeout as timeout:
        warnings.warn(str(timeout), EvalsuiteWarning, stacklevel=2)
        return None
    if match is None:
        return None
    if "answer" in pattern.groupindex:
        value = match.group("answer")
    else:
        value = match.group(1) if pattern.groups else match.group(0)
    if value is None:  # the group sits in a branch that did not match
        return None
    return str(value).strip() if spec.strip else str(value)


# ------------------------------------------------------------------------------------------- json, raw


@parser("json")
def _json(text: str, spec: ParseSpec) -> Any:
    """The first JSON object: a ```json fenced block first, else the first ``{`` that starts valid JSON.
    A field holding ``null`` is no prediction (unparsed), like a missing field; with ``parse.json_schema``,
    so is an object that is not valid against it."""
    value: Any = _first_object(text)
    if value is None or spec.json_schema is not None and schema_error(spec.json_schema, value) is not None:
        return None
    return _field(value, spec.field)


def _field(value: Any, path: str | None) -> Any:
    """The part of ``value`` a dotted path names (``result.label``, ``items.0``); None when it is not there."""
    for part in path.split(".") if path else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


@parser("tool_calls")
def _tool_calls(text: str, spec: ParseSpec, answer: Answer | None) -> Any:
    """The answer's first tool call as ``{"name": ..., "arguments": {...}}`` (the arguments' JSON decoded), or the
    part ``parse.field`` names (``name``, ``arguments.city``); no call, or arguments that are not a JSON object,
    is unparsed."""
    calls = answer.tool_calls if answer is not None else None
    if not calls:
        return None
    try:
        arguments = json.loads(calls[0]["arguments"] or "{}")
    except ValueError:
        return None
    if not isinstance(arguments, dict):
        return None
    return _field({"name": calls[0]["name"], "arguments": arguments}, spec.field)


def _first_object(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    for block in [*_FENCE.findall(text), text]:
        start = block.find("{")
        while start != -1:
            try:
                value, _ = decoder.raw_decode(block, start)
            except json.JSONDecodeError:
                start = block.find("{", start + 1)
                continue
            if isinstance(value, dict):
                return value
            start = block.find("{", start + 1)
    return None


@parser("raw")
def _raw(text: str, spec: ParseSpec) -> str:
    return text.strip() if spec.strip else text
