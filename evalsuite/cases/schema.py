"""Stage 1: the case-file schema.

A case file (``cases/*.yaml``) holds one suite: optional ``suite`` name and ``defaults``, and a list
of ``cases``. Layers merge in this order, later wins: ``[tool.evalsuite]`` in pyproject.toml,
``cases/defaults.yaml``, the file's ``defaults``, the case itself. Credentials never come from YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"  # OpenAI's rule for function and response-format names
TOOL_CHOICES = ("auto", "none", "required")
_API_BOUND = ("seed", "stop", "tools", "tool_choice", "response_format")  # model settings only some APIs take
_SCHEMA_OR_FILE: dict[str, Any] = {"anyOf": [{"type": "object"}, {"type": "boolean"}, {"type": "string"},
                                             {"type": "null"}]}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _or_file_name(schema: dict[str, Any]) -> None:
    """Editors (JSON Schema) learn that a key taking a list or a mapping also takes the name of a file holding it."""
    schema["anyOf"].insert(-1, {"type": "string"})


def base_dir(info: ValidationInfo) -> Path | None:
    """The case file's folder, which the loader passes as validation context: file names are relative to it."""
    folder = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    return Path(folder) if folder is not None else None


def schema_value(value: Any, info: ValidationInfo, what: str = "") -> Any:
    """A JSON Schema written inline, or read from the file a string names; checked to be a schema."""
    from evalsuite._util.json_schemas import check_schema, read_schema_file  # jsonschema: only when a case uses it

    if isinstance(value, str):
        value = read_schema_file(value, base_dir(info), what)
    check_schema(value, what)
    return value


class Tool(Strict):
    """A function the model may call, described by a JSON Schema of its arguments (OpenAI function calling)."""

    name: str = Field(pattern=TOOL_NAME, description="The function's name (letters, digits, '_', '-').")
    description: str | None = Field(default=None, description="What the function does; the model reads it.")
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}},
                                       description="JSON Schema of the arguments object.")
    strict: bool | None = Field(default=None, description="Ask the API to keep the arguments valid against "
                                "parameters (OpenAI structured outputs); sent only when set.")

    @model_validator(mode="before")
    @classmethod
    def _api_forms(cls, value: Any) -> Any:
        """Accept tool lists pasted from the APIs: chat's ``{type: function, function: {...}}`` and the Responses
        API's ``{type: function, name: ...}``."""
        if isinstance(value, dict) and value.get("type") == "function":
            inner = value.get("function")
            return inner if isinstance(inner, dict) else {k: v for k, v in value.items() if k != "type"}
        return value

    @field_validator("parameters")
    @classmethod
    def _a_schema(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        checked: dict[str, Any] = schema_value(value, info)
        return checked


class ResponseFormat(Strict):
    """Structured outputs: the JSON the model must answer with."""

    type: Literal["json_schema", "json_object"] = Field(
        default="json_schema", description="json_schema: OpenAI structured outputs (response_format json_schema, "
        "Responses text.format). json_object: JSON mode; a json_schema given with it is sent as response_format."
        "schema, the form llama.cpp, Together and Fireworks read.")
    json_schema: dict[str, Any] | bool | None = Field(
        default=None, description="The answer's JSON Schema, inline or a .json/.yaml file beside the case file.",
        json_schema_extra=_SCHEMA_OR_FILE)
    name: str = Field(default="answer", pattern=TOOL_NAME, description="The schema's name, sent with it.")
    strict: bool = Field(default=True, description="type json_schema: the API keeps the answer valid against the "
                         "schema (OpenAI strict mode).")

    @field_validator("json_schema", mode="before")
    @classmethod
    def _a_schema(cls, value: Any, info: ValidationInfo) -> Any:
        return value if value is None else schema_value(value, info)

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs json_schema: the answer's schema, inline or a file name "
                             "(or type: json_object for JSON mode without a schema)")
        return self


class ModelSettings(Strict):
    """Which endpoint to call and with which sampling parameters."""

    provider: str = Field(default="openai", description="A registered provider: openai, azure_openai, databricks, "
                          "or one added with @evalsuite.provider.")
    name: str = Field(default="gpt-4", description="The model, the Azure deployment or the Databricks serving "
                      "endpoint name.")
    base_url: str | None = Field(default=None, description="Any OpenAI-compatible endpoint (vLLM, llama.cpp, "
                                 "Databricks serving); else OPENAI_BASE_URL.")
    api: Literal["chat", "completions", "responses"] = Field(
        default="chat", description="chat/completions, the legacy completions API, or the Responses API "
        "(responses.create, sent with store: false).")
    api_version: str | None = Field(default=None, description="Azure only; else OPENAI_API_VERSION.")
    auth: Literal["key", "entra"] = Field(default="key", description="How to sign in: key (the provider's key or "
                                          "token variables) or entra (azure_openai: a Microsoft Entra ID token from "
                                          "azure-identity's DefaultAzureCredential).")
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
    tools: list[Tool] | None = Field(
        default=None, description="Functions the model may call: a list of {name, description, parameters} "
        "(the APIs' own tool forms are accepted too), or a .json/.yaml file beside the case file holding that list.",
        json_schema_extra=_or_file_name)
    tool_choice: str | None = Field(default=None, description="auto, none, required, or the name of one of the "
                                    "tools to force a call to it.")
    response_format: ResponseFormat | None = Field(default=None, description="Structured outputs: "
                                                   "{json_schema: <schema or file>, strict: true}.")
    timeout: float = Field(default=60.0, description="Seconds per request.")
    price_per_1k_input: float | None = Field(default=None, description="USD per 1,000 input tokens; else the "
                                             "price table.")
    price_per_1k_output: float | None = Field(default=None, description="USD per 1,000 output tokens; else the "
                                              "price table.")

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("tools", mode="before")
    @classmethod
    def _tools_file(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        from evalsuite._util.json_schemas import read_schema_file

        tools = read_schema_file(value, base_dir(info))
        if not isinstance(tools, list):
            raise ValueError(f"{value!r} holds {type(tools).__name__}; a tools file holds a list of tools, "
                             "e.g. [{name: get_weather, parameters: {...}}]")
        return tools

    @field_validator(*_API_BOUND)
    @classmethod
    def _api_can_send(cls, value: Any, info: ValidationInfo) -> Any:
        """Checked per key (so an error points at its line), against the fields declared above it."""
        assert info.field_name is not None
        problem = None if value is None else _cannot_send(info.field_name, value, info.data.get("api"),
                                                          info.data.get("tools"))
        if problem is not None:
            raise ValueError(problem)
        return value

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

    @field_validator("auth")
    @classmethod
    def _auth_the_provider_supports(cls, value: str, info: ValidationInfo) -> str:
        from evalsuite.model import get_provider

        provider = info.data.get("provider")
        if provider is None:  # the provider itself was refused: that is the error to show
            return value
        methods = get_provider(provider).auth_methods
        if value not in methods:
            raise ValueError(f"provider {provider!r} does not support auth {value!r}; valid: {', '.join(methods)}"
                             + ("; entra is for provider azure_openai" if value == "entra" else ""))
        return value


def unsendable(model: ModelSettings) -> str | None:
    """``"<key>: <why>"`` when one of ``model``'s settings cannot go into a request of its ``api`` (None when all
    can): checked per key when the case loads, and again when calls are built (``--eval-api`` may change the API
    after loading)."""
    for key in _API_BOUND:
        value = getattr(model, key)
        problem = None if value is None else _cannot_send(key, value, model.api, model.tools)
        if problem is not None:
            return f"{key}: {problem}"
    return None


def _cannot_send(key: str, value: Any, api: str | None, tools: list[Tool] | None) -> str | None:
    if api == "completions" and key in ("tools", "tool_choice", "response_format"):
        return f"the completions API sends a bare prompt and takes no {key}; use api: chat (or responses)"
    if api == "responses" and key in ("seed", "stop"):
        return f"the Responses API has no {key} parameter; set it to null for this case, or use api: chat"
    if api == "responses" and key == "response_format" and value.type == "json_object" \
            and value.json_schema is not None:
        return ("the Responses API's json_object format takes no schema; use type: json_schema (the default), or "
                "drop json_schema")
    if key == "tools":
        names = [tool.name for tool in value]
        twice = next((name for name in names if names.count(name) > 1), None)
        return None if twice is None else f"two tools are named {twice!r}; give each its own name"
    if key == "tool_choice" and value not in TOOL_CHOICES:
        names = [tool.name for tool in tools or []]
        if not names:
            return f"{value!r} names a tool, but the case has no tools; add model.tools"
        if value not in names:
            from evalsuite.errors import suggest

            return (f"{value!r} is neither auto, none, required nor a tool's name; "
                    f"{suggest(value, [*TOOL_CHOICES, *names], 'choices')}")
    return None


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
    conversation: str | None = Field(default=None, description="A dataset field holding a list of {role, content} "
                                     "messages, sent after the few-shot messages as the conversation so far (then "
                                     "prompt.user, if set, as the last user turn).")
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
    field: str | None = Field(default=None, description='kind: json: field path, e.g. "sentiment" or "result.label"; '
                              'kind: tool_calls: "name", "arguments" or "arguments.city".')
    json_schema: dict[str, Any] | bool | None = Field(
        default=None, description="kind: json: the object must be valid against this JSON Schema (inline or a "
        ".json/.yaml file beside the case file), else the answer is unparsed.", json_schema_extra=_SCHEMA_OR_FILE)
    case_sensitive: bool = False
    strip: bool = True
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword parameters of a custom parser.")

    @field_validator("json_schema", mode="before")
    @classmethod
    def _a_schema(cls, value: Any, info: ValidationInfo) -> Any:
        return value if value is None else schema_value(value, info)

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

    The metric is the registered one of its name, unless ``python``, ``evaluate`` or ``judge`` says what it is."""

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
    judge: dict[str, Any] | None = Field(default=None, description="An LLM judge: {model: {...}, rubric: ..., "
                                         "scale: [1, 5]} (PASS/FAIL without scale; compare: <field> for pairwise).")
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

    @model_validator(mode="after")
    def _conversation_sendable(self) -> Case:
        if self.prompt.conversation is not None and self.model.api == "completions":
            raise ValueError("prompt.conversation: the completions API sends a bare prompt, not messages; use api: "
                             "chat (or responses)")
        return self

    @model_validator(mode="after")
    def _schema_metric(self, info: ValidationInfo) -> Case:
        """The ``json_schema`` metric checks answers against its ``schema``: inline, a file beside the case file,
        or by default the schema the model was sent (``model.response_format.json_schema``)."""
        spec = self.metrics.get("json_schema")
        if spec is None or spec.python is not None or spec.evaluate is not None:
            return self
        given = {**(spec.model_extra or {}), **spec.params}
        if "schema" in given:
            schema = schema_value(given["schema"], info, "metrics.json_schema.schema")
        elif self.model.response_format is not None and self.model.response_format.json_schema is not None:
            schema = self.model.response_format.json_schema
        else:
            return self  # the metric says what is missing when it is built
        self.metrics["json_schema"] = spec.model_copy(update={"params": {**spec.params, "schema": schema}})
        return self


class SuiteFile(Strict):
    """An evalsuite case file: one suite of cases, merged over its defaults."""

    suite: str | None = Field(default=None, description="Suite name (names the cassette directory); else the file "
                              "name.")
    defaults: dict[str, Any] = Field(default_factory=dict, description="Case keys every case of this file starts "
                                     "from (over defaults.yaml and [tool.evalsuite]).")
    cases: list[dict[str, Any]] = Field(min_length=1, description="The cases; each is one or more pytest items.")
