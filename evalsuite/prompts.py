"""Stage 3: a case and its examples -> the exact request bodies the engine sends.

Why a sandbox: case files are reviewed like code but run in CI with secrets in the environment, so
templates are rendered by Jinja2's ``SandboxedEnvironment`` (no ``__class__``/``__globals__`` escapes)
with ``StrictUndefined`` (a typo'd field is an error, not an empty prompt), bounded in what it may
build (:mod:`evalsuite._util.bounded_jinja`: 10 M characters per string and rendered text, 1 M list
items, ``range`` of 100,000; per render 2 s, 50 M characters and items made in all, macros 50 deep), so
``{{ 'x' * 3000000000 }}`` or two nested loops of 100,000 are an error, not an exhausted machine. Any
other exception a template raises (``1 // 0``, ``'x'.split('')``) is a :class:`PromptError` naming the
case, the template's key and the example, never a traceback.

Templates see the example's fields plus ``expected`` and ``example_id``.

chat: ``{"model", "messages": [system?, *few_shot, *conversation, user?]}``, plus ``tools``, ``tool_choice`` and
``response_format`` when set.
responses: ``{"model", "instructions": system?, "input": [*few_shot, *conversation, user?], "store": false}``;
tools in the Responses API's flat form, structured outputs as ``text.format``, ``max_tokens`` sent as
``max_output_tokens``. ``store: false`` always: a stored response is server-side state a replay cannot have.
completions: ``{"model", "prompt"}`` where the prompt is laid out as::

    <system>\\n\\n                 (only when prompt.system is set)
    <few-shot user>\\n<few-shot assistant>\\n\\n   (one block per user/assistant pair, in order)
    <user>

i.e. every few-shot message is followed by "\\n", and an assistant message by one more "\\n" that ends
its block; the rendered user template comes last, untouched (end it with e.g. "Sentiment:").

``prompt.conversation`` names a dataset field holding the conversation so far, a list of ``{role, content}``
messages (or its JSON text, e.g. from a CSV column). It is data, sent as is (never rendered as a template);
keys holding null are dropped, since ``datasets`` fills the keys one row lacks with null.

Sampling parameters that are set are added: temperature, max_tokens, top_p, seed, stop. With
``model.logprobs``: chat sends ``logprobs: true`` (+ ``top_logprobs``), responses ``include:
[message.output_text.logprobs]`` (+ ``top_logprobs``); the legacy completions API takes
an integer instead (how many alternatives per token, at most 5; the sampled token's logprob is always
returned), so it gets ``logprobs: min(top_logprobs or 1, 5)`` (1 rather than 0 because some
OpenAI-compatible servers treat 0 as "off").

Truncation (``prompt.truncate``) cuts one field to a token budget with the cl100k_base tiktoken
encoding shipped in ``evalsuite/tokenizers/`` (tiktoken would otherwise download it on first use).
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import threading
import traceback
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SecurityError

from evalsuite._util.bounded_jinja import (
    MAX_TEXT,
    BoundedSandbox,
    TemplateLimit,
    TemplateTimeout,
    render_bounded,
)
from evalsuite.cases.schema import TOOL_CHOICES, Case, ModelSettings, Truncate, unsendable
from evalsuite.errors import PromptError
from evalsuite.records import Call, Example

TOKENIZER_DIR = Path(__file__).parent / "tokenizers"
# The files tiktoken itself would download, checked against the sha256 tiktoken expects.
ENCODINGS = {
    "cl100k_base": ("cl100k_base.tiktoken", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}
# cl100k_base's split pattern and special tokens, as in tiktoken_ext.openai_public.cl100k_base (whose
# constructor cannot be called offline: it downloads the ranks; a test checks these against it).
CL100K_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
SAMPLING_PARAMS = ("temperature", "max_tokens", "top_p", "seed", "stop")
COMPLETIONS_MAX_LOGPROBS = 5
RESPONSES_LOGPROBS = "message.output_text.logprobs"  # what the Responses API's ``include`` names them
CONVERSATION_ROLES = ("system", "developer", "user", "assistant", "tool")

_encodings: dict[str, Any] = {}
_encodings_lock = threading.Lock()


def build_calls(case: Case, examples: list[Example]) -> list[Call]:
    """One Call per example and repeat (samples 0..repeats-1, identical bodies), in example order."""
    prompt = case.prompt
    api = case.model.api
    problem = unsendable(case.model)
    if problem is None and prompt.conversation is not None and api == "completions":
        problem = "api: completions sends a bare prompt, not the messages prompt.conversation holds; use api: chat"
    if problem is not None:
        raise PromptError(f"case {case.id!r}: model.{problem}")
    templates: list[tuple[str, str, _Compiled]] = []  # (key, role, compiled template)
    sources = [("prompt.system", "system", prompt.system)] if prompt.system is not None else []
    sources += [(f"prompt.few_shot[{i}]", m.role, m.content) for i, m in enumerate(prompt.few_shot)]
    if prompt.user is None and prompt.conversation is None:
        raise PromptError(f"case {case.id!r}: prompt.user is missing; add a user template")
    if prompt.user is not None:
        sources.append(("prompt.user", "user", prompt.user))
    for key, role, text in sources:
        try:
            templates.append((key, role, _compiled(text)))
        except jinja2.TemplateSyntaxError as exc:
            raise PromptError(f"case {case.id!r}: {key}: template syntax error on line {exc.lineno}: {exc.message}; "
                              "fix the template ({{ field }} for values, {% if %}...{% endif %} for logic)") from None
        except RecursionError:
            raise PromptError(f"case {case.id!r}: {key}: template nested too deeply to compile; "
                              "nest fewer brackets, blocks or operators") from None

    params = {**_params(case), **_tool_params(case.model)}
    constant: dict[str, str] = {}  # templates without variables (a system prompt) are rendered once
    calls: list[Call] = []
    for example in examples:
        context = {**_truncated(example.fields, prompt.truncate, example.id), "expected": example.expected,
                   "example_id": example.id}
        rendered = []
        for key, role, compiled in templates:
            cached = constant.get(key)
            text = cached if cached is not None else _render(case, key, compiled, context, example)
            if cached is None and not compiled.names:
                constant[key] = text
            rendered.append((key, role, text))
        body: dict[str, Any] = {"model": case.model.name}
        if api == "completions":
            body["prompt"] = _completions_prompt(rendered)
        else:
            before, last = (rendered, []) if prompt.user is None else (rendered[:-1], rendered[-1:])
            messages = [{"role": role, "content": text} for _, role, text in before]
            if prompt.conversation is not None:
                messages += _conversation(case, example)
            messages += [{"role": role, "content": text} for _, role, text in last]
            if api == "chat":
                body["messages"] = messages
            else:
                if prompt.system is not None:  # the Responses API's place for it; a conversation's own stay in input
                    body["instructions"] = messages.pop(0)["content"]
                body["input"] = messages
        body.update(params)
        calls.extend(Call(example.id, sample, api, copy.deepcopy(body) if sample else body)
                     for sample in range(case.repeats))
    return calls


class _Compiled:
    """A template compiled once per source text (a suite's 1,000 files often share their prompts).

    ``parts``: for a template that is only literal text and ``{{ field }}`` outputs (``Review: {{ text }}``),
    its pieces, a field as its name: such a template renders by joining, exactly what Jinja yields for text
    fields (a field that is not a ``str``, or too long, takes Jinja's path).
    """

    def __init__(self, text: str) -> None:
        parsed = _ENV.parse(text)
        self.template = _ENV.from_string(parsed)
        self.names = meta.find_undeclared_variables(parsed)
        self.parts = _plain_parts(parsed)

    def render(self, context: dict[str, Any]) -> str:
        if self.parts is not None:
            texts: list[str] = []
            for part in self.parts:
                piece = context.get(part.name) if isinstance(part, nodes.Name) else part
                if not isinstance(piece, str) or type(piece) is not str:  # a number, None, a str subclass: Jinja's
                    break
                texts.append(piece)
            else:
                if sum(map(len, texts)) <= MAX_TEXT:
                    return "".join(texts)
        return render_bounded(self.template, context)


def _plain_parts(parsed: nodes.Template) -> list[str | nodes.Name] | None:
    if len(parsed.body) != 1 or not isinstance(parsed.body[0], nodes.Output):
        return None
    parts: list[str | nodes.Name] = []
    for node in parsed.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            parts.append(node)
        else:
            return None
    return parts


_ENV = BoundedSandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@functools.lru_cache(maxsize=512)
def _compiled(text: str) -> _Compiled:
    return _Compiled(text)


def _params(case: Case) -> dict[str, Any]:
    model = case.model
    params = {name: getattr(model, name) for name in SAMPLING_PARAMS if getattr(model, name) is not None}
    if model.api == "responses":
        if "max_tokens" in params:
            params["max_output_tokens"] = params.pop("max_tokens")
        params["store"] = False
    if model.logprobs:
        if model.api == "chat":
            params["logprobs"] = True
        elif model.api == "responses":
            params["include"] = [RESPONSES_LOGPROBS]
        else:
            params["logprobs"] = min(model.top_logprobs or 1, COMPLETIONS_MAX_LOGPROBS)
        if model.top_logprobs is not None and model.api != "completions":
            params["top_logprobs"] = model.top_logprobs
    return params


def _tool_params(model: ModelSettings) -> dict[str, Any]:
    """``tools``, ``tool_choice`` and the structured-output format, in the wire form of ``model.api``."""
    responses = model.api == "responses"
    params: dict[str, Any] = {}
    if model.tools:
        tools = []
        for tool in model.tools:
            function = tool.model_dump(exclude_none=True)
            tools.append({"type": "function", **function} if responses else {"type": "function", "function": function})
        params["tools"] = tools
    choice = model.tool_choice
    if choice is not None:
        if choice in TOOL_CHOICES:
            params["tool_choice"] = choice
        else:
            named = {"name": choice} if responses else {"function": {"name": choice}}
            params["tool_choice"] = {"type": "function", **named}
    answer = model.response_format
    if answer is not None:
        if answer.type == "json_object":
            form: dict[str, Any] = {"type": "json_object"}
            if answer.json_schema is not None:  # llama.cpp's, Together's and Fireworks' JSON mode with a schema
                form["schema"] = answer.json_schema
        elif responses:
            form = {"type": "json_schema", "name": answer.name, "schema": answer.json_schema, "strict": answer.strict}
        else:
            form = {"type": "json_schema",
                    "json_schema": {"name": answer.name, "schema": answer.json_schema, "strict": answer.strict}}
        if responses:
            params["text"] = {"format": form}
        else:
            params["response_format"] = form
    return params


def _conversation(case: Case, example: Example) -> list[dict[str, Any]]:
    """The example's conversation field as messages, checked: a list of objects with a role (or a Responses input
    item's type) and text, content parts or, for an assistant's tool calls, no content."""
    field = case.prompt.conversation
    where = f"case {case.id!r}: prompt.conversation (example {example.id!r})"
    if field not in example.fields:
        raise PromptError(f"{where}: no field {field!r}; available fields: {', '.join(sorted(example.fields))}")
    value = example.fields[field]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise PromptError(f"{where}: field {field!r} is text that is not JSON; it must hold a list of "
                              '{"role": ..., "content": ...} messages') from None
    if not isinstance(value, list) or not value:
        raise PromptError(f"{where}: field {field!r} holds {_kind(value)}, not a list of messages; write it as "
                          '[{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}, ...]')
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise PromptError(f"{where}: message {index} is {_kind(message)}, not an object with role and content")
        message = {key: item for key, item in message.items() if item is not None}
        role, content = message.get("role"), message.get("content")
        if role is None and case.model.api == "responses" and isinstance(message.get("type"), str):
            messages.append(message)  # a Responses input item (function_call, function_call_output, ...)
            continue
        if role not in CONVERSATION_ROLES:
            raise PromptError(f"{where}: message {index}: role {role!r} is not one of {', '.join(CONVERSATION_ROLES)}")
        if not isinstance(content, (str, list)) and not (role == "assistant" and "tool_calls" in message):
            raise PromptError(f"{where}: message {index} ({role}): content is {_kind(content)}; give the message's "
                              "text (or a list of content parts)")
        messages.append(message)
    return messages


def _kind(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _render(case: Case, key: str, compiled: _Compiled, context: dict[str, Any], example: Example) -> str:
    missing = compiled.names - context.keys()
    if not missing:
        try:
            return compiled.render(context)
        except Exception as exc:  # noqa: BLE001  # whatever a template raises becomes a clear PromptError below
            error: Exception = exc
    where = f"case {case.id!r}: {key} (example {example.id!r})"
    available = ", ".join(sorted(context))
    if missing:
        raise PromptError(f"{where}: undefined variable {sorted(missing)[0]!r}; available fields: {available}")
    if isinstance(error, TemplateTimeout):
        raise PromptError(f"{where}: template too slow: {error}; loop over fewer items (a prompt renders in "
                          "microseconds)") from None
    if isinstance(error, TemplateLimit):
        raise PromptError(f"{where}: template too large: {error}; produce less text (render the field, not copies "
                          "of it), or shorten the data") from None
    if isinstance(error, SecurityError):
        raise PromptError(f"{where}: blocked by the template sandbox: {str(error).rstrip('.')}; templates may only "
                          f"read the example's fields; available fields: {available}") from None
    if isinstance(error, jinja2.UndefinedError):
        raise PromptError(f"{where}: {error.message}; available fields: {available}") from None
    if isinstance(error, jinja2.TemplateError):
        raise PromptError(f"{where}: {error}") from None
    if isinstance(error, RecursionError):
        raise PromptError(f"{where}: the template recursed too deeply ({error}); make recursive macros stop") from None
    raise PromptError(f"{where}: the template failed{_template_line(error)}: {type(error).__name__}: {error}; "
                      "fix the template expression that raises it") from None


def _template_line(error: Exception) -> str:
    """`` on line N`` of the template that raised: Jinja rewrites the traceback to name template lines."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == "<template>"]
    return f" on line {lines[-1]}" if lines else ""


def _completions_prompt(rendered: list[tuple[str, str, str]]) -> str:
    parts = []
    for _, role, text in rendered[:-1]:
        parts.append(text + ("\n\n" if role in ("assistant", "system") else "\n"))
    parts.append(rendered[-1][2])
    return "".join(parts)


# ------------------------------------------------------------------------------------------ truncation


def _truncated(fields: dict[str, Any], truncate: Truncate | None, example_id: str) -> dict[str, Any]:
    if truncate is None:
        return fields
    if truncate.field not in fields:
        raise PromptError(f"prompt.truncate.field: example {example_id!r} has no field {truncate.field!r}; "
                          f"available fields: {', '.join(sorted(fields))}")
    value = fields[truncate.field]
    if not isinstance(value, str):
        raise PromptError(f"prompt.truncate.field: {truncate.field!r} of example {example_id!r} is "
                          f"{type(value).__name__}, not text; truncate a text field")
    return {**fields, truncate.field: truncate_text(value, truncate.max_tokens, truncate.tokenizer)}


def truncate_text(text: str, max_tokens: int, tokenizer: str = "cl100k_base") -> str:
    """The longest prefix of ``text`` (on a token boundary) that encodes to at most ``max_tokens`` tokens."""
    encoding = get_encoding(tokenizer)
    tokens = encoding.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text
    keep = max_tokens
    while keep > 0:
        # decode_bytes + "ignore": a cut inside a multi-byte character drops the partial character
        prefix = encoding.decode_bytes(tokens[:keep]).decode("utf-8", errors="ignore")
        if len(encoding.encode(prefix, disallowed_special=())) <= max_tokens:
            return prefix
        keep -= 1  # re-encoding a prefix can merge differently; give up one more token
    return ""


def get_encoding(name: str = "cl100k_base") -> Any:
    """A tiktoken Encoding built from the file shipped with evalsuite: never touches the network."""
    with _encodings_lock:
        if name not in _encodings:
            _encodings[name] = _build_encoding(name)
        return _encodings[name]


def _build_encoding(name: str) -> Any:
    import tiktoken
    from tiktoken_ext import openai_public

    if name not in ENCODINGS:
        raise PromptError(f"prompt.truncate.tokenizer: {name!r} is not shipped with evalsuite; "
                          f"choices: {', '.join(ENCODINGS)}")
    filename, sha256 = ENCODINGS[name]
    data = (TOKENIZER_DIR / filename).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise PromptError(f"{TOKENIZER_DIR / filename}: corrupted tokenizer file (sha256 mismatch); reinstall evalsuite")
    # Parsed here rather than by tiktoken.load.load_tiktoken_bpe: that function copies even a local file
    # into TIKTOKEN_CACHE_DIR and fails when that directory is read-only.
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
    special = {
        openai_public.ENDOFTEXT: 100257,
        openai_public.FIM_PREFIX: 100258,
        openai_public.FIM_MIDDLE: 100259,
        openai_public.FIM_SUFFIX: 100260,
        openai_public.ENDOFPROMPT: 100276,
    }
    return tiktoken.Encoding(name=name, pat_str=CL100K_PAT_STR, mergeable_ranks=ranks, special_tokens=special)
