"""``semantic_similarity``: cosine similarity of the answer's and the reference's embeddings.

Why through an endpoint: embeddings come from an OpenAI-compatible ``/v1/embeddings`` (OpenAI, Azure, a
Databricks serving endpoint, llama.cpp's server), called with ``client.embeddings.create`` through the same
engine and recorded in the metric's own cassette beside the item's (``<item id>@semantic_similarity.json``),
so CI replays the vectors offline with no model at all. One request per answer embeds the answer and its
reference(s) together. Cosines are on the model's own scale: unrelated texts often score well above 0 (a
generative model's pooled states, or E5, put everything in a narrow cone), so calibrate ``min`` on answers you
have read, as with any threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import ValidationError

from evalsuite.cases.schema import ModelSettings
from evalsuite.errors import MetricError, MetricParamError, display_path
from evalsuite.metrics._base import REQUIRED, Kind
from evalsuite.metrics._calls import CallingMetric
from evalsuite.metrics._registry import metric
from evalsuite.records import Scored


@metric("semantic_similarity")
class SemanticSimilarity(CallingMetric):
    kind: Kind = "mean"
    value_range: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)
    defaults: ClassVar[dict[str, Any]] = {"model": REQUIRED, "against": "expected"}

    def __init__(self, params: dict[str, Any]) -> None:
        try:
            self.model = ModelSettings.model_validate(params["model"])
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in ("model", *error["loc"]))
            raise MetricParamError(f"{self.name}: {where}: {error['msg']}") from None
        super().__init__(params)

    def describe(self) -> str:
        against = self.params["against"]
        return (f"mean cosine similarity of the answer's and {against!r}'s embeddings from "
                f"{self.model.provider}:{self.model.name} (/v1/embeddings); with several references, the closest; "
                "the parsed answer when it is text, else the answer; an empty or errored answer scores 0")

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        from evalsuite.model._embeddings import embeddings_call

        context = self.context()
        values: list[Any] = [None] * len(scored)
        calls, owners = [], []
        no_reference = errored = 0
        for index, item in enumerate(scored):
            text = item.prediction if item.parsed and isinstance(item.prediction, str) else item.answer.text or ""
            references = self._references(item)
            if not references:
                no_reference += 1
            elif not item.answer.ok or not text.strip():  # an errored answer is no closer to the reference than ""
                values[index] = 0.0
                errored += not item.answer.ok
            else:
                texts = [context.sendable(text), *references]
                calls.append(embeddings_call(item.example.id, item.answer.sample, texts, self.model))
                owners.append(index)
        answers = context.answer(self.name, calls, self.model, "embeddings") if calls else []
        errors = 0
        for owner, call, answer in zip(owners, calls, answers):
            vectors = answer.embeddings or []
            if not answer.ok or len(vectors) != len(call.body["input"]) or not _comparable(vectors):
                errors += 1  # a vector missing, of another length or all zeros: no cosine to trust
                continue
            first, *others = vectors
            values[owner] = max(_cosine(first, other) for other in others)
        remarks = [f"{n} {what}" for n, what in ((errored, "answer(s) errored (scored 0)"),
                                                 (errors, "embedding call(s) errored (not measured)"),
                                                 (no_reference, "example(s) without a reference (not measured)"))
                   if n]
        context.note(self.name, kind="embeddings",
                     model={"provider": self.model.provider, "name": self.model.name},
                     cassette=display_path(context.cassette(self.name), context.rootdir), calls=len(calls),
                     errors=errors, remark="; ".join(remarks))
        return values

    def _references(self, item: Scored) -> list[str]:
        against, example = self.params["against"], item.example
        if against != "expected" and against not in example.fields:
            raise MetricError(f"{self.name}: against names the dataset field {against!r}, which example "
                              f"{example.id!r} does not have; fields: {', '.join(sorted(example.fields))}")
        value = example.expected if against == "expected" else example.fields[against]
        values = value if isinstance(value, (list, tuple)) else [value]
        return [str(v) for v in values if v is not None and str(v).strip()]


def _comparable(vectors: list[list[float]]) -> bool:
    """One length for all, none all zeros (a cosine with a zero vector is undefined)."""
    return len({len(v) for v in vectors}) == 1 and all(any(v) for v in vectors)


def _cosine(a: list[float], b: list[float]) -> float:
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return math.fsum(x * y for x, y in zip(a, b)) / norms
