"""The case-file format as JSON Schema, so YAML editors complete and check case files while they are typed.

``python -m evalsuite schema`` prints it; ``case-file.schema.json`` beside this module is its committed
output (a test keeps the two equal). It is generated from the pydantic models in ``schema``, plus what
those models cannot say:

- a case is validated only after it is merged over its layers (``defaults.yaml``, the file's
  ``defaults:``, ``[tool.evalsuite]``), so an entry of ``cases:`` needs only its ``id`` here and
  ``defaults:`` needs nothing;
- metric names, ``parse.kind`` and ``model.provider`` are registry names: the built-in ones are offered
  as suggestions, any other string stays valid (a conftest or an installed package may register it).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from evalsuite._registry import Registry
from evalsuite.cases.schema import Case, SuiteFile

SCHEMA_FILE = Path(__file__).with_name("case-file.schema.json")
# Draft 7: the newest draft the YAML language server (VS Code's YAML extension and other LSP editors) validates.
# What pydantic generates for these models is draft 7 once its "$defs" are "definitions".
_DIALECT = "http://json-schema.org/draft-07/schema#"
_REFS = "#/definitions/{model}"


def case_file_schema() -> dict[str, Any]:
    """The JSON Schema of one case file (``cases/*.yaml``)."""
    case = Case.model_json_schema(ref_template=_REFS)
    defs = case.pop("$defs")
    defs["Case"] = {**case, "required": ["id"]}
    defaults = {key: value for key, value in copy.deepcopy(case).items() if key != "required"}
    defs["CaseDefaults"] = {**defaults, "title": "CaseDefaults",
                            "description": "Case keys shared by the cases of this file; each case overrides them."}
    suite = SuiteFile.model_json_schema(ref_template=_REFS)
    suite["properties"]["cases"]["items"] = {"$ref": _REFS.format(model="Case")}
    defaults_prop = suite["properties"]["defaults"]  # draft 7 ignores the siblings of a $ref: allOf keeps them
    suite["properties"]["defaults"] = {"description": defaults_prop["description"],
                                       "allOf": [{"$ref": _REFS.format(model="CaseDefaults")}]}
    for entry in (defs["Case"], defs["CaseDefaults"]):
        _suggest_metrics(entry["properties"]["metrics"])
    _suggest(defs["ModelSettings"]["properties"]["provider"], _builtin_names("provider"))
    _suggest(defs["ParseSpec"]["properties"]["kind"], _builtin_names("parser"))
    return {"$schema": _DIALECT, **suite, "title": "evalsuite case file", "definitions": dict(sorted(defs.items()))}


def render() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(case_file_schema(), indent=2, ensure_ascii=False) + "\n"


def _suggest(prop: dict[str, Any], names: list[str]) -> None:
    """A string property whose built-in values editors offer, without rejecting other strings."""
    del prop["type"]
    prop["anyOf"] = [{"enum": names}, {"type": "string"}]


def _suggest_metrics(metrics: dict[str, Any]) -> None:
    """Built-in metric names as known keys of the mapping form and as suggested items of the list form."""
    mapping, listed = metrics["anyOf"]
    names = _builtin_names("metric")
    mapping["properties"] = {name: mapping["additionalProperties"] for name in names}
    _suggest(listed["items"], names)


def _builtin_names(kind: str) -> list[str]:
    """The names evalsuite itself registers, not those of the installed extensions (the file must not depend
    on what happens to be installed)."""
    registry = _registries()[kind]
    return [name for name in registry.names() if getattr(registry.get(name), "__module__", "").startswith("evalsuite.")]


def _registries() -> dict[str, Registry[Any]]:
    from evalsuite.metrics._registry import _METRICS  # the registries build on the schema: imported when used
    from evalsuite.model._providers import _providers
    from evalsuite.parsing import parsers

    return {"metric": _METRICS, "parser": parsers, "provider": _providers}
