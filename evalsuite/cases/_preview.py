"""Collection-time dry run of a case: its dataset's first rows, and every template rendered against them (and
the conversation field, when the case sends one, checked on them).

Why: a missing file, a misspelt column or an undefined template variable used to show only when the item
ran, after ``pytest --collect-only`` had passed, with the case's line. Here they fail collection at the
line of the key that is wrong (``dataset.path``, ``dataset.columns.<name>``, the template's own line), with
no model call and without loading the whole dataset (``dataset.preview`` reads the first rows). The run
still checks every row: these rows prove the case's shape, not its data.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from evalsuite import dataset, prompts
from evalsuite.cases._checks import check_labels
from evalsuite.cases._layers import Layer, line_in_text
from evalsuite.cases._source import KeyPath, dotted
from evalsuite.cases.schema import Case, PromptSpec
from evalsuite.errors import CaseFileError, DatasetError, PromptError

if TYPE_CHECKING:
    from evalsuite.metrics import Metric

_TEMPLATE_KEY = re.compile(r"prompt\.(system|user|few_shot\[(\d+)\]|truncate\.field|conversation)")
_TEMPLATE_LINE = re.compile(r"(?:template syntax error|the template failed) on line (\d+)")
_UNDEFINED = re.compile(r"undefined variable '(\w+)'")


def check_rows(case: Case, variants: list[tuple[str, Case]], metrics: dict[str, Metric], layers: list[Layer],
               base_dir: Path, rootdir: Path) -> None:
    """The dataset's first rows load (file, columns, labels) and every variant's templates render on them."""
    try:
        examples = dataset.preview(case.dataset, base_dir)
    except DatasetError as exc:
        file, line = line_in_text(layers, exc.key, 1)
        raise CaseFileError(file, line, str(exc), rootdir=rootdir) from None
    if examples is None:  # a Hub dataset: only a run can fetch it
        return
    check_labels(case, metrics, ((f"example {e.id!r} expects", e.expected) for e in examples), layers, rootdir,
                 key=("dataset", "expected"))
    rendered: list[PromptSpec] = []
    for prompt_name, variant_case in variants:
        if variant_case.prompt in rendered:  # a matrix variant changes model settings only: its templates are done
            continue
        rendered.append(variant_case.prompt)
        try:
            prompts.build_calls(variant_case.model_copy(update={"repeats": 1}), examples)
        except PromptError as exc:
            raise _template_error(str(exc), case, prompt_name, variant_case, layers, rootdir) from None


def _template_error(message: str, case: Case, prompt_name: str, variant_case: Case, layers: list[Layer],
                    rootdir: Path) -> CaseFileError:
    """The render error at the template's own line (a variant's template when the variant set it)."""
    message = message.removeprefix(f"case {case.id!r}: ")
    found = _TEMPLATE_KEY.search(message)
    if found is None:
        file, line = line_in_text(layers, ("prompt",), 1)
        return CaseFileError(file, line, message, rootdir=rootdir)
    key, text = _template_key(found, case, prompt_name, variant_case)
    file, line = line_in_text(layers, key, _line_in_template(message, text))
    return CaseFileError(file, line, message.replace(found.group(0), dotted(key), 1), rootdir=rootdir)


def _template_key(found: re.Match[str], case: Case, prompt_name: str, variant_case: Case) -> tuple[KeyPath, str]:
    """The key where the failing template is written, and its text."""
    part, shot = found.group(1), found.group(2)
    variant = case.variants.prompts.get(prompt_name) if prompt_name else None
    prompt = variant_case.prompt
    if part in ("truncate.field", "conversation"):  # a field name, not a template: its own line
        return ("prompt", *part.split(".")), ""
    field = "few_shot" if shot is not None else part
    set_by_variant = variant is not None and getattr(variant, field) is not None
    base: KeyPath = ("variants", "prompts", prompt_name) if set_by_variant else ("prompt",)
    if shot is not None:
        return base + ("few_shot", int(shot), "content"), prompt.few_shot[int(shot)].content
    return base + (part,), getattr(prompt, part) or ""


def _line_in_template(message: str, text: str) -> int:
    """The 1-based line of the template the error is about: Jinja's line for a syntax error or an exception,
    the first line using an undefined variable, else the first."""
    if syntax := _TEMPLATE_LINE.search(message):
        return int(syntax.group(1))
    if undefined := _UNDEFINED.search(message):
        word = re.compile(rf"\b{re.escape(undefined.group(1))}\b")
        for number, line in enumerate(text.splitlines(), 1):
            if word.search(line):
                return number
    return 1
