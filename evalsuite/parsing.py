"""Stage 5: answer text -> prediction.

Why a parser at all: the exercise scored sentiment with ``"positive" in pred``, which calls
"Negative. It is not positive" positive. Here a label answer is the label whose synonym appears FIRST as a
whole word, and a mention directly negated ("not positive", "isn't negative") is no answer for that label.
We never infer the complement from a negation: "not positive" alone is ambiguous in a multi-label task
(neutral? negative?), so it is unparsed, counted wrong and listed in the report rather than guessed.

``parse`` returns ``(prediction, parsed_ok)``; an errored call (``text is None``) or an unparseable answer
is ``(None, False)``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from evalsuite.cases.schema import ParseSpec

# A negator right before a label mention: "not", "no", "never", "nor", "neither", or a word ending in n't.
_NEGATED = re.compile(r"(?:\b(?:not|no|never|nor|neither)|n[’']t)\s*$", re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)


def parse(text: str | None, spec: ParseSpec) -> tuple[Any, bool]:
    if text is None:
        return None, False
    if spec.kind == "label":
        return _label(text, spec)
    if spec.kind == "regex":
        return _regex(text, spec)
    if spec.kind == "json":
        return _json(text, spec)
    return (text.strip() if spec.strip else text), True


def check(spec: ParseSpec) -> None:
    """Raise ``ValueError`` with a fix if ``spec`` cannot work (for the loader, before any model call)."""
    if spec.kind == "label":
        if not spec.labels:
            raise ValueError("parse.kind label needs parse.labels, e.g. {positive: [positive, good], negative: [negative, bad]}")
        _label_pattern(_label_key(spec))
    if spec.kind == "regex":
        if not spec.pattern:
            raise ValueError(r"parse.kind regex needs parse.pattern, e.g. 'answer: (\w+)'")
        try:
            _compile(spec.pattern, spec.case_sensitive)
        except re.error as error:
            raise ValueError(f"parse.pattern {spec.pattern!r} is not a valid regular expression: {error}") from None


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


def _label(text: str, spec: ParseSpec) -> tuple[Any, bool]:
    pattern, owner = _label_pattern(_label_key(spec))
    for match in pattern.finditer(text):
        if _NEGATED.search(text, 0, match.start()):
            continue  # "not positive" says nothing about which label the answer is
        found = " ".join(match.group().split())
        return owner[found if spec.case_sensitive else found.casefold()], True
    return None, False


@lru_cache(maxsize=64)
def _compile(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)


def _regex(text: str, spec: ParseSpec) -> tuple[Any, bool]:
    """Group "answer" if the pattern names it, else group 1, else the whole match; the first match wins."""
    match = _compile(spec.pattern or "", spec.case_sensitive).search(text)
    if match is None:
        return None, False
    if "answer" in match.re.groupindex:
        value = match.group("answer")
    else:
        value = match.group(1) if match.re.groups else match.group(0)
    if value is None:  # the group sits in a branch that did not match
        return None, False
    return (value.strip() if spec.strip else value), True


def _json(text: str, spec: ParseSpec) -> tuple[Any, bool]:
    """The first JSON object: a ```json fenced block first, else the first ``{`` that starts valid JSON."""
    value = _first_object(text)
    if value is None:
        return None, False
    for part in spec.field.split(".") if spec.field else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return None, False
    return value, True


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
