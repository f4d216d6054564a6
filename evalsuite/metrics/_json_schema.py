"""``json_schema``: the share of answers that are JSON valid against a JSON Schema (structured outputs).

Why the whole answer: with ``model.response_format`` the API promises JSON and nothing else, so text around
the object is already a failure; to score JSON found inside prose, use ``parse: {kind: json, json_schema: ...}``
(an invalid object is then unparsed, which every metric counts as wrong). The schema is the metric's ``schema``
parameter (inline or a file beside the case file), else the one the model was sent
(``model.response_format.json_schema``; the case loader hands it over). Validation is the ``jsonschema``
library's, in the draft the schema's ``$schema`` names (else 2020-12).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from evalsuite._util.json_schemas import check_schema, schema_error
from evalsuite.errors import MetricParamError
from evalsuite.metrics._base import Metric
from evalsuite.metrics._registry import metric
from evalsuite.records import Scored


@metric("json_schema")
class JsonSchema(Metric):
    kind = "proportion"
    defaults = {"schema": None}

    def __init__(self, params: dict[str, Any]) -> None:
        if params["schema"] is None:
            raise MetricParamError(f"{self.name}: no schema to check answers against; set model.response_format: "
                                   f"{{json_schema: ...}}, or the metric's own `{self.name}: {{schema: ...}}` (inline "
                                   "or a .json/.yaml file beside the case file)")
        try:
            check_schema(params["schema"], "schema")
        except ValueError as exc:
            raise MetricParamError(f"{self.name}: {exc}") from None
        super().__init__(params)

    def describe(self) -> str:
        return ("share of answers whose whole text is JSON valid against the JSON Schema (jsonschema library); "
                "text around the JSON, an answer without text or an error = invalid")

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        return [int(self._valid(item.answer.text) if item.answer.ok else 0) for item in scored]

    def _valid(self, text: str | None) -> bool:
        if text is None:
            return False
        try:
            value = json.loads(text)
        except ValueError:
            return False
        return schema_error(self.params["schema"], value) is None
