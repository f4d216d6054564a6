"""Stage 1: the case-file schema.

A case file (``cases/*.yaml``) holds one suite: optional ``suite`` name and ``defaults``, and a list
of ``cases``. Layers merge in this order, later wins: ``[tool.evalsuite]`` in pyproject.toml,
``cases/defaults.yaml``, the file's ``defaults``, the case itself. Credentials never come from YAML.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSettings(Strict):
    """Which endpoint to call and with which sampling parameters."""

    provider: str = Field(default="openai", description="A registered provider: openai, azure_openai, or one "
                          "added with @evalsuite.provider.")
    name: str = Field(default="gpt-4", description="The model, or the Azure deployment name.")
    base_url: str | None = Field(default=None, description="Any OpenAI-compatible endpoint (vLLM, llama.cpp, "
                                 "Databricks serving); else OPENAI_BASE_URL.")
    api: Literal["chat", "completions"] = Field(default="chat", description="chat/completions, or the legacy "
                                                "completions API.")
    api_version: str | None = Field(default=None, description="Azure only; else OPENAI_API_VERSION.")
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    logprobs: bool = Field(default=False, description="Request token logprobs (needed by perplexity).")
    top_logprobs: int | None = None
    stop: list[str] | None = Field(
        default=None, description="Stop sequence(s): one string or a list.",
        json_schema_extra={"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}},
                                     {"type": "null"}]})
    timeout: float = Field(default=60.0, description="Seconds per request.")
    price_per_1k_input: float | None = Field(default=None, description="USD per 1,000 input tokens; else the "
                                             "price table.")
    price_per_1k_output: float | None = Field(default=None, description="USD per 1,000 output tokens; else the "
                                              "price table.")

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("provider")
    @classmethod
    def _registered_provider(cls, value: str) -> str:
        from evalsuite.errors import EvalsuiteError
        from evalsuite.model import get_provider  # providers build on this schema: looked up lazily

        try:
            get_provider(value)
        except EvalsuiteError as exc:  # as a ValueError the loader reports it at the key's file:line
            raise ValueError(str(exc)) from None
        return value


class DatasetSpec(Strict):
    """Where the examples come from and how many to take."""

    examples: list[dict[str, Any]] | None = Field(default=None, description="Inline rows, one mapping per example.")
    path: str | None = Field(default=None, description="A .jsonl/.json/.csv/.parquet file, relative to the case file.")
    hf: str | None = Field(default=None, description='A Hugging Face Hub dataset id, e.g. "imdb".')
    table: str | None = Field(default=None, description='A table or view read through the active SparkSession, e.g. '
                              '"main.eval.imdb_test" (a Unity Catalog table on Databricks); rows ordered by dataset.id '
                              "when set.")
    config: str | None = Field(default=None, description="Hub dataset configuration name.")
    split: str = Field(default="test", description="Hub dataset split.")
    revision: str | None = Field(default=None, description="Hub dataset revision (a commit pins the data).")
    limit: int | None = Field(default=None, gt=0, description="Take at most this many examples.")
    shuffle: bool = Field(default=False, description="Shuffle (with seed) before limiting.")
    seed: int = 0
    stratify: str | None = Field(default=None, description="Column to sample evenly from when limiting.")
    columns: dict[str, str] = Field(default_factory=dict, description="New name -> source column.")
    id: str | None = Field(default=None, description="Column holding a stable example id; else the row index.")
    expected: str | None = Field(default="expected", description="Column holding the reference; null for "
                                 "reference-free cases.")
    label_names: list[str] | dict[Any, str] | None = Field(default=None, description="Maps stored labels (0/1) to "
                                                           "names.")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        sources = [name for name in ("examples", "path", "hf", "table") if getattr(self, name) is not None]
        if len(sources) != 1:
            raise ValueError(
                "give exactly one of 'examples' (inline rows), 'path' (a local file), 'hf' (a Hub dataset id) or "
                "'table' (a Spark table)"
                + (f"; found {', '.join(sources)}" if sources else "")
            )
        return self


class EngineSpec(Strict):
    """Where a case's model calls run: in this process, or spread over the active SparkSession's executors."""

    kind: Literal["local", "spark"] = Field(default="local", description="local: one async engine in this process; "
                                            "spark: the calls split by example id over the active SparkSession's "
                                            "tasks (replay always runs locally).")
    partitions: int | None = Field(default=None, gt=0, description="spark: tasks the calls are split into; else the "
                                   "session's default parallelism (its task slots).")
    concurrency: int | None = Field(default=None, gt=0, description="spark: requests in flight per task; else "
                                    "--eval-concurrency divided by the tasks that run at once.")
    shard_dir: str | None = Field(default=None, description="spark: folder for the tasks' cassette shards, seen by "
                                  "the driver and every executor (e.g. a /Volumes/... path on a multi-node cluster), "
                                  "relative to the case file; else beside the cassette.")
    env: list[str] = Field(default_factory=list, description="spark: more environment variables the executors get "
                           "from the driver (a custom provider's); OPENAI_* and AZURE_OPENAI_* always go.")

    @model_validator(mode="before")
    @classmethod
    def _kind_shorthand(cls, value: Any) -> Any:
        """``engine: spark`` is short for ``engine: {kind: spark}``."""
        return {"kind": value} if isinstance(value, str) else value


class Truncate(Strict):
    """Cut one long input field to a token budget before templating (the exercise cut reviews)."""

    field: str = Field(description="The input field to cut.")
    max_tokens: int = Field(gt=0, description="Token budget of the field.")
    tokenizer: Literal["cl100k_base"] = Field(default="cl100k_base", description="tiktoken encoding shipped with "
                                              "evalsuite (works offline).")


class Message(Strict):
    """One few-shot message."""

    role: Literal["system", "user", "assistant"]
    content: str


class PromptSpec(Strict):
    """Jinja2 templates (sandboxed) rendered with the example's fields."""

    system: str | None = Field(default=None, description="The system message template.")
    user: str | None = Field(default=None, description="The chat user message template, or the whole prompt for "
                             "api: completions.")
    few_shot: list[Message] = Field(default_factory=list, description="Messages put before the user message.")
    truncate: Truncate | None = None


class PromptVariant(Strict):
    """A named prompt variant: what it sets replaces the case's prompt."""

    system: str | None = None
    user: str | None = None
    few_shot: list[Message] | None = None


class Variants(Strict):
    """Named prompt variants and a parameter matrix; every combination is one pytest item."""

    prompts: dict[str, PromptVariant] = Field(default_factory=dict, description="Variant name -> prompt variant.")
    matrix: dict[Literal["temperature", "max_tokens", "top_p", "seed"], list[Any]] = Field(
        default_factory=dict, description="Model parameter -> the values to sweep.")


class ParseSpec(Strict):
    """How an answer becomes a prediction: a registered parser (``kind``) or a one-off function (``python``)."""

    kind: str = Field(default="raw", description="A registered parser: label, regex, json, raw, or one added with "
                      "@evalsuite.parser.")
    python: str | None = Field(default=None, description='"local_parsers.py:yes_no": a parser function, relative '
                               "to the case file.")
    labels: dict[str, list[str]] = Field(default_factory=dict, description="kind: label: label -> synonyms (the "
                                         "label itself included).")
    pattern: str | None = Field(default=None, description='kind: regex: group 1 (or the named group "answer") is the '
                                "prediction.")
    field: str | None = Field(default=None, description='kind: json: field path, e.g. "sentiment" or "result.label".')
    case_sensitive: bool = False
    strip: bool = True
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword parameters of a custom parser.")

    @field_validator("kind")
    @classmethod
    def _registered_parser(cls, value: str) -> str:
        from evalsuite.parsing import parsers  # parsing builds on this schema: looked up lazily

        parsers.get(value)  # UnknownName is a ValueError: the loader reports it at the key's file:line
        return value

    @model_validator(mode="after")
    def _one_parser(self) -> ParseSpec:
        if self.python is not None and "kind" in self.model_fields_set:
            raise ValueError("give either 'kind' (a registered parser) or 'python' ('<file>.py:<function>'), not both")
        return self


class MetricSpec(Strict):
    """A metric, its parameters and its thresholds.

    The metric is the registered one of its name, unless ``python`` or ``evaluate`` says where it is."""

    min: float | None = Field(default=None, description="Fail when the value is below.")
    max: float | None = Field(default=None, description="Fail when the value is above.")
    max_drop: float | None = Field(default=None, ge=0, description="Tolerated drop against the baseline, in metric "
                                   "units.")
    max_increase: float | None = Field(default=None, ge=0, description="Tolerated rise against the baseline, in "
                                       "metric units, for lower-is-better metrics (latency, tokens); setting it (or "
                                       "max_drop) also turns on their baseline gate.")
    params: dict[str, Any] = Field(default_factory=dict, description='Metric parameters, e.g. {"average": "macro"}, '
                                   '{"use_stemmer": true}; they may also be written beside min/max.')
    python: str | None = Field(default=None, description='"local_metrics.py:score": a function or Metric class, '
                               "relative to the case file.")
    evaluate: dict[str, Any] | None = Field(default=None, description="A Hugging Face evaluate module: "
                                            "{path: ./metrics/x} or {name: x}, key, args.")
    model_config = ConfigDict(extra="allow")  # short form: {average: macro, min: 0.8}


def _metric_shorthands(schema: dict[str, Any]) -> None:
    """Editors (JSON Schema) learn the shorthands ``Case._metric_shorthand`` accepts: ``accuracy: 0.8`` (a
    minimum), ``accuracy:`` (defaults) and ``metrics: [accuracy, f1]``."""
    spec = schema.pop("additionalProperties")
    mapping = {"type": "object", "minProperties": schema.pop("minProperties"),
               "additionalProperties": {"anyOf": [spec, {"type": "number"}, {"type": "null"}]}}
    del schema["type"]
    schema["anyOf"] = [mapping, {"type": "array", "minItems": 1, "items": {"type": "string"}}]


def _engine_shorthand(schema: dict[str, Any]) -> None:
    """Editors learn ``engine: spark`` (what ``EngineSpec._kind_shorthand`` accepts) besides the mapping."""
    schema["anyOf"] = [{"$ref": schema.pop("$ref")}, {"type": "string", "enum": ["local", "spark"]}]


class Case(Strict):
    """One case: a dataset, a prompt, a parser and thresholded metrics."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="Unique in its file; names the test item and its "
                    "cassette.")
    description: str | None = None
    tags: list[str] = Field(default_factory=list, description="pytest markers of the case's items (select with -m).")
    model: ModelSettings = Field(default_factory=ModelSettings)
    dataset: DatasetSpec
    prompt: PromptSpec
    variants: Variants = Field(default_factory=Variants)
    repeats: int = Field(default=1, ge=1, description="Samples per example (for sampling temperatures).")
    engine: EngineSpec = Field(default_factory=EngineSpec, json_schema_extra=_engine_shorthand,
                               description="Where the model calls run: local (default) or spark; `engine: spark` is "
                               "short for {kind: spark}.")
    parse: ParseSpec = Field(default_factory=ParseSpec)
    metrics: dict[str, MetricSpec] = Field(
        min_length=1, json_schema_extra=_metric_shorthands,
        description="Metric name -> thresholds and parameters ({min: 0.8}, or 0.8 for a minimum), or a list of "
                    "names.")

    @field_validator("tags")
    @classmethod
    def _marker_names(cls, value: list[str]) -> list[str]:
        """Tags become pytest markers, which refuse empty names and names starting with "_"."""
        for tag in value:
            if not tag or tag.startswith("_"):
                raise ValueError(f"tag {tag!r} cannot be a pytest marker name (empty, or starting with '_'); "
                                 "rename it")
        return value

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_shorthand(cls, value: Any) -> Any:
        """Allow ``metrics: [accuracy, f1]`` and ``accuracy: 0.8`` (a minimum) as shorthands."""
        if isinstance(value, list):
            return {name: {} for name in value} if all(isinstance(v, str) for v in value) else value
        if isinstance(value, dict):
            return {k: ({"min": v} if isinstance(v, (int, float)) else ({} if v is None else v)) for k, v in value.items()}
        return value


class SuiteFile(Strict):
    """An evalsuite case file: one suite of cases, merged over its defaults."""

    suite: str | None = Field(default=None, description="Suite name (names the cassette directory); else the file "
                              "name.")
    defaults: dict[str, Any] = Field(default_factory=dict, description="Case keys every case of this file starts "
                                     "from (over defaults.yaml and [tool.evalsuite]).")
    cases: list[dict[str, Any]] = Field(min_length=1, description="The cases; each is one or more pytest items.")
