"""A pydantic ``ValidationError`` -> one ``<file>:<line>: <key>: <problem>; <fix>`` line.

Why: pydantic reports every problem with its own location scheme (union tags, ``[key]`` markers) and
no line; a user needs the first problem in file order, at its line, with the choices it allows and a
did-you-mean for typos.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from evalsuite.cases._layers import Layer, line_of
from evalsuite.cases._source import KeyPath, dotted
from evalsuite.errors import CaseFileError, suggest


def from_validation(exc: ValidationError, model: type[BaseModel], layers: list[Layer], rootdir: Path,
                    data: dict[str, Any] | None = None) -> CaseFileError:
    """The first problem (in file order) as one message: key, what is wrong, how to fix it."""
    data = layers[-1].data if data is None else data
    problems = []
    for error in exc.errors(include_url=False):
        key, extra = _real_key(data, error)
        where, line = line_of(layers, key if extra is None else key + (extra,))
        problems.append((str(where), line, key, extra, error))
    # A typo'd key is reported as "unknown" rather than as the "missing" key it was meant to be.
    problems.sort(key=lambda p: (p[0] != str(layers[-1].path), p[4]["type"] == "missing", p[1]))
    file, line, key, extra, error = problems[0]
    siblings = [p[4] for p in problems if p[2] == key and p[3] == extra]
    full_key = key + (extra,) if extra is not None else key
    message = _explain(model, full_key, error, siblings)
    return CaseFileError(Path(file), line, f"{dotted(full_key)}: {message}" if full_key else message, rootdir=rootdir)


def _real_key(data: Any, error: ErrorDetails) -> tuple[KeyPath, Any]:
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


def _explain(model: type[BaseModel], key: KeyPath, error: ErrorDetails, siblings: list[ErrorDetails]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        parent = _annotation_at(model, key[:-1])
        valid = sorted(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
        return f"unknown key {key[-1]!r}; {suggest(key[-1], valid, 'valid keys')}"
    if kind == "missing":
        return "required key is missing; add it"
    if kind == "literal_error":
        if loc and loc[-1] == "[key]":  # a dict whose keys are a Literal (variants.matrix)
            bad_key = error["input"]  # the key as written (pydantic's loc holds it as text: None -> 'None')
            dict_type = _annotation_at(model, key[:-1] if key and key[-1] == bad_key else key)
            key_type = typing.get_args(dict_type)[0] if typing.get_origin(dict_type) is dict else None
            choices = [str(c) for c in typing.get_args(key_type)]
            return f"unknown key {bad_key!r}; {suggest(bad_key, choices, 'valid keys')}"
        annotation = _annotation_at(model, key)
        choices = [str(c) for c in typing.get_args(annotation)] if typing.get_origin(annotation) is Literal else []
        if choices:
            return f"{error['input']!r} is not allowed; {suggest(error['input'], choices, 'choices')}"
    if kind == "string_pattern_mismatch" and key and key[-1] == "id":
        return (f"{error['input']!r} is not a valid id; use only letters, digits, '_', '.' and '-' "
                "(ids name cassettes and baseline entries)")
    if len(siblings) > 1:  # a union: say every shape that would have been accepted
        shapes = " or ".join(dict.fromkeys(lower_first(s["msg"]) for s in siblings))
        return f"got {short(error['input'])}: {shapes}"
    message = lower_first(error["msg"]).removeprefix("value error, ")
    return f"{message} (got {short(error['input'])})" if kind != "value_error" else message


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def short(value: Any) -> str:
    """``repr(value)``, cut to 60 characters (a whole dataset row would swamp the message)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
