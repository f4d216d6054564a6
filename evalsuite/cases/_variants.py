"""Variant expansion: a case x its prompt variants x its parameter matrix, each with a stable id.

Ids (``terse-t0.7-mt20``) name pytest items, cassettes and baseline entries, so they use fixed
abbreviations in a fixed parameter order, never the YAML's key order.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from evalsuite.cases._explain import lower_first
from evalsuite.cases._layers import Layer, error_at
from evalsuite.cases.schema import Case, ModelSettings

PARAM_ABBREVIATIONS = {"temperature": "t", "max_tokens": "mt", "top_p": "p", "seed": "s"}
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def expand(case: Case, layers: list[Layer], rootdir: Path) -> Iterator[tuple[str, str, Case]]:
    """Every prompt variant x every parameter combination: (variant id, prompt variant name, case).

    Without prompt variants the case's own prompt is the only one; with them, the case's prompt is only
    the base each variant overrides (add an empty variant, e.g. ``plain: {}``, to run it as is)."""
    for name in case.variants.prompts:
        if not SAFE_NAME.match(name):
            raise error_at(layers, ("variants", "prompts", name), f"variant name {name!r} must use only letters, "
                           "digits, '_', '.' and '-' (it becomes part of test ids and file names)", rootdir)
    matrix = _matrix(case, layers, rootdir)
    prompts: list[tuple[str, Any]] = list(case.variants.prompts.items()) or [("", None)]
    combos = list(itertools.product(*(values for _, values in matrix)))
    seen: set[str] = set()
    for prompt_name, prompt_variant in prompts:
        for combo in combos:
            params = dict(zip((param for param, _ in matrix), combo))
            parts = ([prompt_name] if prompt_name else []) + [
                f"{PARAM_ABBREVIATIONS[p]}{format_param(v)}" for p, v in params.items()
            ]
            variant = "-".join(parts)
            if variant in seen:
                raise error_at(layers, ("variants",), f"two variants share the id {variant!r}; "
                               "remove duplicate values from the matrix", rootdir)
            seen.add(variant)
            prompt = case.prompt
            if prompt_variant is not None:
                overrides = {k: v for k, v in prompt_variant if v is not None}
                prompt = prompt.model_copy(update=overrides)
            model = case.model.model_copy(update=params) if params else case.model
            yield variant, prompt_name, case.model_copy(update={"prompt": prompt, "model": model})


def _matrix(case: Case, layers: list[Layer], rootdir: Path) -> list[tuple[str, list[Any]]]:
    """The matrix's parameters in the fixed id order, each value validated as a model setting."""
    matrix: list[tuple[str, list[Any]]] = []
    for param in PARAM_ABBREVIATIONS:
        if param not in case.variants.matrix:
            continue
        values = case.variants.matrix[param]
        if not values:
            raise error_at(layers, ("variants", "matrix", param), "empty list; give at least one value or "
                           "remove the key", rootdir)
        checked = []
        for index, value in enumerate(values):
            if value is None:  # "unset" is not a setting to sweep: the item id and the request need a value
                raise error_at(layers, ("variants", "matrix", param, index), "null is not a value to sweep; give a "
                               "number, or remove it", rootdir)
            try:
                checked.append(getattr(ModelSettings.model_validate({param: value}), param))
            except ValidationError as exc:
                msg = lower_first(exc.errors(include_url=False)[0]["msg"])
                raise error_at(layers, ("variants", "matrix", param, index), f"{msg} (got {value!r})",
                               rootdir) from None
        matrix.append((param, checked))
    return matrix


def format_param(value: float | int) -> str:
    """``0.7`` -> "0.7", ``0.0`` -> "0", ``20`` -> "20" (ints stay exact: ``format(12345678, "g")`` rounds)."""
    return str(value) if isinstance(value, int) else format(value, "g")
