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

    provider: str = "openai"  # a registered provider: openai, azure_openai, or one added with @evalsuite.provider
    name: str = "gpt-4"  # model, or the Azure deployment name
    base_url: str | None = None  # any OpenAI-compatible endpoint (vLLM, llama.cpp, Databricks serving)
    api: Literal["chat", "completions"] = "chat"
    api_version: str | None = None  # Azure only; else OPENAI_API_VERSION
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    stop: list[str] | None = None
    timeout: float = 60.0
    price_per_1k_input: float | None = None  # USD; else the price table
    price_per_1k_output: float | None = None

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

    examples: list[dict[str, Any]] | None = None
    path: str | None = None  # .jsonl/.json/.csv/.parquet, relative to the case file
    hf: str | None = None  # Hub dataset id, e.g. "imdb"
    config: str | None = None  # Hub dataset configuration name
    split: str = "test"
    revision: str | None = None
    limit: int | None = Field(default=None, gt=0)
    shuffle: bool = False
    seed: int = 0
    stratify: str | None = None  # column to sample evenly from when limiting
    columns: dict[str, str] = Field(default_factory=dict)  # new name -> source column
    id: str | None = None  # column holding a stable example id; else the row index
    expected: str | None = "expected"  # column holding the reference; None for reference-free cases
    label_names: list[str] | dict[Any, str] | None = None  # maps stored labels (0/1) to names

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        sources = [name for name in ("examples", "path", "hf") if getattr(self, name) is not None]
        if len(sources) != 1:
            raise ValueError(
                "give exactly one of 'examples' (inline rows), 'path' (a local file) or 'hf' (a Hub dataset id)"
                + (f"; found {', '.join(sources)}" if sources else "")
            )
        return self


class Truncate(Strict):
    """Cut one long input field to a token budget before templating (the exercise cut reviews)."""

    field: str
    max_tokens: int = Field(gt=0)
    tokenizer: Literal["cl100k_base"] = "cl100k_base"  # tiktoken encoding shipped with evalsuite (works offline)


class Message(Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class PromptSpec(Strict):
    """Jinja2 templates (sandboxed) rendered with the example's fields."""

    system: str | None = None
    user: str | None = None  # the chat user message, or the whole prompt for api: completions
    few_shot: list[Message] = Field(default_factory=list)
    truncate: Truncate | None = None


class PromptVariant(Strict):
    system: str | None = None
    user: str | None = None
    few_shot: list[Message] | None = None


class Variants(Strict):
    """Named prompt variants and a parameter matrix; every combination is one pytest item."""

    prompts: dict[str, PromptVariant] = Field(default_factory=dict)
    matrix: dict[Literal["temperature", "max_tokens", "top_p", "seed"], list[Any]] = Field(default_factory=dict)


class ParseSpec(Strict):
    """How an answer becomes a prediction: a registered parser (``kind``) or a one-off function (``python``)."""

    kind: str = "raw"  # a registered parser: label, regex, json, raw, or one added with @evalsuite.parser
    python: str | None = None  # "local_parsers.py:yes_no": a parser function, relative to the case file
    labels: dict[str, list[str]] = Field(default_factory=dict)  # label -> synonyms (label itself included)
    pattern: str | None = None  # regex; group 1 (or the named group "answer") is the prediction
    field: str | None = None  # JSON field path, e.g. "sentiment" or "result.label"
    case_sensitive: bool = False
    strip: bool = True
    params: dict[str, Any] = Field(default_factory=dict)  # keyword parameters of a custom parser

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

    min: float | None = None
    max: float | None = None
    max_drop: float | None = Field(default=None, ge=0)  # tolerated drop vs baseline, in metric units
    params: dict[str, Any] = Field(default_factory=dict)  # e.g. {"average": "macro"}, {"use_stemmer": true}
    python: str | None = None  # "local_metrics.py:score": a function or Metric class, relative to the case file
    evaluate: dict[str, Any] | None = None  # a Hugging Face evaluate module: {path: ./metrics/x} or {name: x}, key, args
    model_config = ConfigDict(extra="allow")  # short form: {average: macro, min: 0.8}


class Case(Strict):
    """One case: a dataset, a prompt, a parser and thresholded metrics."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    model: ModelSettings = Field(default_factory=ModelSettings)
    dataset: DatasetSpec
    prompt: PromptSpec
    variants: Variants = Field(default_factory=Variants)
    repeats: int = Field(default=1, ge=1)
    parse: ParseSpec = Field(default_factory=ParseSpec)
    metrics: dict[str, MetricSpec] = Field(min_length=1)

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
    suite: str | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)
    cases: list[dict[str, Any]] = Field(min_length=1)
