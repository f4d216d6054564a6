"""Examples -> request bodies: sandboxed templates, chat and completions layouts, params, repeats, truncation."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalsuite._util import bounded_jinja
from evalsuite.cases.schema import Case
from evalsuite.prompts import PromptError, build_calls, get_encoding, truncate_text
from evalsuite.records import Example

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = [Example("r1", {"text": "A small gem"}, "positive"), Example("r2", {"text": "I walked out"}, "negative")]
FEW_SHOT = [{"role": "user", "content": "Loved it"}, {"role": "assistant", "content": "positive"},
            {"role": "user", "content": "Hated it"}, {"role": "assistant", "content": "negative"}]


def case(model: dict | None = None, **prompt) -> Case:
    prompt.setdefault("user", "Review: {{ text }}\nSentiment:")
    return Case.model_validate({"id": "c", "model": {"name": "m", **(model or {})}, "prompt": prompt,
                                "dataset": {"examples": [{}]}, "metrics": ["accuracy"]})


def test_chat_body_has_system_few_shot_then_user() -> None:
    [first, _] = build_calls(case(system="Classify {{ example_id }}.", few_shot=FEW_SHOT), EXAMPLES)
    assert first.api == "chat" and (first.example_id, first.sample) == ("r1", 0)
    assert first.body == {"model": "m", "messages": [
        {"role": "system", "content": "Classify r1."},
        *FEW_SHOT,
        {"role": "user", "content": "Review: A small gem\nSentiment:"},
    ]}


def test_completions_prompt_layout() -> None:
    [first, _] = build_calls(case({"api": "completions"}, system="Classify.", few_shot=FEW_SHOT), EXAMPLES)
    assert first.api == "completions"
    assert first.body == {"model": "m", "prompt": (
        "Classify.\n\nLoved it\npositive\n\nHated it\nnegative\n\nReview: A small gem\nSentiment:"
    )}
    [bare, _] = build_calls(case({"api": "completions"}), EXAMPLES)
    assert bare.body["prompt"] == "Review: A small gem\nSentiment:"


def test_templates_see_fields_expected_and_example_id() -> None:
    [call, _] = build_calls(case(user="{{ example_id }}|{{ text | upper }}|{{ expected }}"), EXAMPLES)
    assert call.body["messages"] == [{"role": "user", "content": "r1|A SMALL GEM|positive"}]


def test_sampling_params_and_logprobs() -> None:
    model = {"temperature": 0, "max_tokens": 5, "top_p": 0.9, "seed": 7, "stop": "\n", "logprobs": True,
             "top_logprobs": 3}
    [chat, _] = build_calls(case(model), EXAMPLES)
    assert {k: v for k, v in chat.body.items() if k not in ("model", "messages")} == {
        "temperature": 0.0, "max_tokens": 5, "top_p": 0.9, "seed": 7, "stop": ["\n"], "logprobs": True, "top_logprobs": 3,
    }
    [completions, _] = build_calls(case({**model, "api": "completions", "top_logprobs": 9}), EXAMPLES)
    assert completions.body["logprobs"] == 5 and "top_logprobs" not in completions.body
    [plain, _] = build_calls(case({"api": "completions", "logprobs": True}), EXAMPLES)
    assert plain.body["logprobs"] == 1
    [unset, _] = build_calls(case(), EXAMPLES)
    assert set(unset.body) == {"model", "messages"}


def test_repeats_give_identical_bodies_and_hashes() -> None:
    c = case(model={"temperature": 1}).model_copy(update={"repeats": 3})
    calls = build_calls(c, EXAMPLES)
    assert [(x.example_id, x.sample) for x in calls] == [("r1", 0), ("r1", 1), ("r1", 2), ("r2", 0), ("r2", 1), ("r2", 2)]
    assert calls[0].body == calls[1].body == calls[2].body and calls[0].body != calls[3].body
    # The hash is the cassette's match key: sha256 of the sorted-key JSON body, temperature 1 == 1.0.
    canonical = json.dumps({**calls[0].body, "temperature": 1}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert calls[0].prompt_hash == hashlib.sha256(canonical.encode()).hexdigest() == calls[2].prompt_hash
    assert calls[0].prompt_hash != calls[3].prompt_hash


def test_undefined_variable_names_it_and_the_available_fields() -> None:
    with pytest.raises(PromptError) as info:
        build_calls(case(user="Review: {{ review }}"), EXAMPLES)
    assert str(info.value) == ("case 'c': prompt.user (example 'r1'): undefined variable 'review'; "
                               "available fields: example_id, expected, text")
    with pytest.raises(PromptError, match=r"prompt.user \(example 'r1'\): 'str object' has no attribute 'nope'"):
        build_calls(case(user="{{ text.nope }}"), EXAMPLES)


def test_sandbox_blocks_attribute_escapes() -> None:
    with pytest.raises(PromptError) as info:
        build_calls(case(user="{{ ''.__class__.__mro__ }}"), EXAMPLES)
    message = str(info.value)
    assert message.startswith("case 'c': prompt.user (example 'r1'): blocked by the template sandbox")
    assert "__class__" in message and "available fields: example_id, expected, text" in message


def test_template_syntax_error_names_the_template() -> None:
    with pytest.raises(PromptError, match=r"case 'c': prompt.system: template syntax error on line 1: "):
        build_calls(case(system="{{ text "), EXAMPLES)


def test_truncation_cuts_the_field_to_the_token_budget() -> None:
    long = "The film opens on a quiet harbour town and lingers there for a very long time. " * 20
    c = case(user="{{ text }}", truncate={"field": "text", "max_tokens": 25})
    [call] = build_calls(c, [Example("r", {"text": long}, None)])
    content = call.body["messages"][0]["content"]
    encoding = get_encoding()
    assert len(encoding.encode(content)) == 25 and long.startswith(content)
    [short] = build_calls(c, [Example("r", {"text": "Tiny."}, None)])
    assert short.body["messages"][0]["content"] == "Tiny."
    accents = "crème brûlée à la carte, déjà vu " * 10
    cut = truncate_text(accents, 13)
    assert accents.startswith(cut) and "\ufffd" not in cut and len(encoding.encode(cut)) <= 13


def test_truncating_a_missing_field_is_a_clear_error() -> None:
    with pytest.raises(PromptError, match=r"example 'r1' has no field 'body'; available fields: text"):
        build_calls(case(truncate={"field": "body", "max_tokens": 3}), EXAMPLES)


def test_shipped_cl100k_matches_tiktoken_official_encoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Feed tiktoken's own cl100k_base constructor our file through its cache: same pattern, specials, tokens."""
    import tiktoken_ext.openai_public as openai_public

    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    shutil.copy(REPO / "evalsuite" / "tokenizers" / "cl100k_base.tiktoken", tmp_path / hashlib.sha1(url.encode()).hexdigest())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    official = openai_public.cl100k_base()
    ours = get_encoding()
    assert ours._pat_str == official["pat_str"] and ours._special_tokens == official["special_tokens"]
    assert ours._mergeable_ranks == official["mergeable_ranks"]
    assert ours.encode("hello world") == [15339, 1917] and ours.n_vocab == 100277


def test_truncation_works_without_network() -> None:
    """A fresh process, an empty tiktoken cache, Hub offline and (where permitted) no network at all."""
    script = (
        "from evalsuite.prompts import truncate_text, get_encoding\n"
        "text = truncate_text('one two three four five six seven eight nine ten', 4)\n"
        "print(repr(text), len(get_encoding().encode(text)))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TIKTOKEN_CACHE_DIR": "/nonexistent/evalsuite",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(key, None)
    command = [sys.executable, "-c", script]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "-rn", *command]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "'one two three four' 4"


@pytest.mark.parametrize("template,limit", [
    ("{{ 'x' * 3000000000 }}", "limit is 10,000,000 characters"),
    ("{{ ([text] * 3000000000)|length }}", "limit is 1,000,000 items"),
    ("{% for i in range(3000000000) %}{% endfor %}", "limit is 100,000 items"),
    ("{% set ns = namespace(s=text) %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     "limit is 10,000,000 characters"),
    ("{{ ((text * 1000)|replace('a', text * 1000))|length }}", "limit is 10,000,000 characters"),
    ("{{ (text * 100000, text * 100000)|join * 1 }}{{ ([text * 100000] * 1000)|join }}", "limit is 10,000,000 characters"),
    ("{{ '%3000000000s' % text }}{{ '{:>3000000000}'.format(text) }}", "limit is 10,000,000 characters"),
    ("{{ text|center(3000000000) }}", "limit is 10,000,000 characters"),
    ("{{ 2 ** 3000000000 }}", "limit is 100,000 bits"),
    ("{% for i in range(100000) %}{{ text * 100 }}{% endfor %}", "passed 10,000,000 characters"),
    ("{{ '{:{}}'.format(text, 3000000000) }}{{ '%*s' % (3000000000, text) }}", "limit is 10,000,000 characters"),
    ("{% set items = [text] %}{% for i in range(64) %}{% set _ = items.extend(items) %}{% endfor %}",
     "limit is 1,000,000 items"),
])
def test_templates_cannot_build_unbounded_values(template: str, limit: str) -> None:
    """Each bound is checked before the value is built: none of these allocates more than a few MB."""
    with pytest.raises(PromptError) as error:
        build_calls(case(user=template), [Example("r1", {"text": "abcdefghijklmnopqrstuvwxyz"}, None)])
    message = str(error.value)
    assert message.startswith("case 'c': prompt.user (example 'r1'): template too large: ")
    assert limit in message


def test_bounded_sandbox_keeps_ordinary_templates_working() -> None:
    template = ("{{ 'ab' * 2 }} {{ [1] + [2] }} {{ 2 ** 10 }} {{ '%3s|' % text }} {{ '{:>4}'.format(text) }} "
                "{{ range(3)|join(',') }} {{ text ~ '!' }} {{ text|center(5) }} {{ text.replace('a', 'A') }} {{ 7 % 3 }} "
                "{{ '%d over 20000000' % n }} {{ '{:,}'.format(n) }} {{ '%d'|format(n) }} {{ range(2)|map('string')|join }}")
    [call] = build_calls(case(user=template), [Example("r1", {"text": "a", "n": 30000000}, None)])
    assert call.body["messages"][-1]["content"] == ("abab [1, 2] 1024   a|    a 0,1,2 a!   a   A 1 "
                                                     "30000000 over 20000000 30,000,000 30000000 01")


@pytest.mark.parametrize("template,expected", [
    ("{% set d = {} %}{% for i in range(100000) %}{% set _ = d.update({i: 'x'*9999999}) %}{% endfor %}{{ d|length }}",
     "template too large: the render made 59,999,994 characters and list items in all; the limit is 50,000,000"),
    ("{{ (['x'*9999999] * 999999) | string | length }}",
     "template too large: the string filter would make 10,000,005 characters; the limit is 10,000,000 characters"),
    ("{{ (['x'*9999999] * 999999) | sort | length }}", "template too large: the sort filter would make"),
    ("{{ [[1]*999999]*999999 }}", "template too large: the {{ }} output would make"),
    ("{% set s = ['x' * 9999999] * 999 %}{{ s ~ '' }}{{ s|join }}", "template too large: '~' concatenation would make"),
    ("{% set s = ['x' * 9999999] * 999 %}{{ '{}'.format(s) }}", "template too large: str.format would make"),
], ids=["loop-keeping-large-values", "string-of-shared-references", "sort-of-shared-references",
        "printing-a-nested-list", "concatenating-a-list", "formatting-a-list"])
def test_small_values_that_add_up_are_refused_early(template: str, expected: str) -> None:
    """Each value is within its own bound; the render's allocation budget, or measuring a container before it
    becomes text, stops these after a few MB (each used to take 1.6 to 17 GB)."""
    with pytest.raises(PromptError) as error:
        build_calls(case(user=template), EXAMPLES[:1])
    assert str(error.value).startswith(f"case 'c': prompt.user (example 'r1'): {expected}")


def test_nested_loops_meet_the_render_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """10^10 empty iterations used to hang collection; every iteration now checks the deadline."""
    monkeypatch.setattr(bounded_jinja, "MAX_SECONDS", 0.05)
    template = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}ok"
    with pytest.raises(PromptError) as error:
        build_calls(case(user=template), EXAMPLES[:1])
    assert str(error.value) == ("case 'c': prompt.user (example 'r1'): template too slow: the render used more than "
                                "0.05 s of CPU time; the limit is 0.05 s; loop over fewer items (a prompt renders in "
                                "microseconds)")


def test_a_render_is_charged_for_its_cpu_time_not_for_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy machine (other processes, another thread holding the GIL) delays a render; it must not fail it. Recording
    25k IMDB prompts at load 8-20 failed with "template too slow" when the budget was wall-clock time."""
    monkeypatch.setattr(bounded_jinja, "MAX_SECONDS", 0.05)
    waited = []
    rows = [Example("r1", {"text": "A small gem", "wait": lambda: waited.append(time.sleep(0.2)) or ""})]
    [call] = build_calls(case(user="{{ wait() }}{{ text }}"), rows)
    assert waited and call.body["messages"][-1]["content"] == "A small gem"


@pytest.mark.parametrize("template,expected", [
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
     "template too large: macro 'f' called itself (or other macros) more than 50 deep"),
    ("\n{{ 1 // 0 }}", "the template failed on line 2: ZeroDivisionError: integer division or modulo by zero"),
    ("{{ ('x'*9).split('') }}", "the template failed on line 1: ValueError: empty separator"),
    ('{{ "x" * 9 | length }}', "the template failed on line 1: TypeError: object of type 'int' has no len()"),
], ids=["recursive-macro", "zero-division", "value-error", "type-error"])
def test_an_exception_in_a_template_is_a_clear_error(template: str, expected: str) -> None:
    """These used to escape as tracebacks (RecursionError, ZeroDivisionError, ...) from collection and runs."""
    with pytest.raises(PromptError) as error:
        build_calls(case(user=template), EXAMPLES[:1])
    assert str(error.value).startswith(f"case 'c': prompt.user (example 'r1'): {expected}")


def test_ordinary_loops_macros_and_printed_lists_still_render() -> None:
    template = ("{% macro item(x) %}[{{ x }}]{% endmacro %}{% for i in range(3) %}{{ item(i) }}{% endfor %} "
                "{{ [text] * 2 }} {{ {'k': [1, 2]} }} {% for c in text * 2 %}{{ loop.index }}{% endfor %}")
    [call] = build_calls(case(user=template), [Example("r1", {"text": "ab"}, None)])
    assert call.body["messages"][-1]["content"] == "[0][1][2] ['ab', 'ab'] {'k': [1, 2]} 1234"


# ------------------------------------------------------------- tools, structured outputs, responses, conversations

WEATHER = {"name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
REVIEW_SCHEMA = {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative"]}},
                 "required": ["sentiment"], "additionalProperties": False}


def test_chat_sends_tools_tool_choice_and_the_json_schema_format_in_chat_wire_form() -> None:
    model = {"tools": [WEATHER, {"type": "function", "function": {"name": "get_time"}}], "tool_choice": "get_weather",
             "response_format": {"json_schema": REVIEW_SCHEMA, "name": "review"}}
    [call, _] = build_calls(case(model), EXAMPLES)
    assert call.body["tools"] == [{"type": "function", "function": WEATHER},
                                  {"type": "function", "function": {"name": "get_time",
                                                                    "parameters": {"type": "object", "properties": {}}}}]
    assert call.body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert call.body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "review", "schema": REVIEW_SCHEMA, "strict": True}}
    [required, _] = build_calls(case({"tools": [WEATHER], "tool_choice": "required"}), EXAMPLES)
    assert required.body["tool_choice"] == "required" and "response_format" not in required.body


def test_json_mode_with_a_schema_is_sent_in_the_json_object_dialect() -> None:
    """llama.cpp, Together and Fireworks read {type: json_object, schema}: how a local model gets constrained JSON."""
    [call, _] = build_calls(case({"response_format": {"type": "json_object", "json_schema": REVIEW_SCHEMA}}), EXAMPLES)
    assert call.body["response_format"] == {"type": "json_object", "schema": REVIEW_SCHEMA}
    [plain, _] = build_calls(case({"response_format": {"type": "json_object"}}), EXAMPLES)
    assert plain.body["response_format"] == {"type": "json_object"}


def test_responses_body_has_instructions_input_store_false_and_its_own_parameter_names() -> None:
    model = {"api": "responses", "temperature": 0, "max_tokens": 20, "top_p": 0.5, "logprobs": True, "top_logprobs": 2,
             "tools": [WEATHER], "tool_choice": "get_weather", "response_format": {"json_schema": REVIEW_SCHEMA}}
    [call, _] = build_calls(case(model, system="Be brief.", few_shot=FEW_SHOT[:2]), EXAMPLES)
    assert call.api == "responses"
    assert call.body == {
        "model": "m", "instructions": "Be brief.",
        "input": [*FEW_SHOT[:2], {"role": "user", "content": "Review: A small gem\nSentiment:"}],
        "temperature": 0, "max_output_tokens": 20, "top_p": 0.5, "store": False,
        "include": ["message.output_text.logprobs"], "top_logprobs": 2,
        "tools": [{"type": "function", **WEATHER}], "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "answer", "schema": REVIEW_SCHEMA, "strict": True}},
    }


CHAT_LOG = [{"role": "user", "content": "My name is Ana."}, {"role": "assistant", "content": "Hello Ana!"},
            {"role": "user", "content": "What is my name?"}]


def test_a_conversation_field_is_sent_after_the_few_shot_and_before_the_user_turn() -> None:
    rows = [Example("d1", {"log": CHAT_LOG}, "Ana"), Example("d2", {"log": json.dumps(CHAT_LOG[:1])}, None)]
    [first, second] = build_calls(case(user=None, conversation="log", system="Be kind."), rows)
    assert first.body["messages"] == [{"role": "system", "content": "Be kind."}, *CHAT_LOG]
    assert second.body["messages"][1:] == CHAT_LOG[:1]  # JSON text (a CSV column) is read as the list it holds
    [with_user] = build_calls(case(conversation="log", user="Answer in one word."), rows[:1])
    assert with_user.body["messages"] == [*CHAT_LOG, {"role": "user", "content": "Answer in one word."}]
    [responses] = build_calls(case({"api": "responses"}, user=None, conversation="log", system="Be kind."), rows[:1])
    assert responses.body["instructions"] == "Be kind." and responses.body["input"] == CHAT_LOG


def test_conversation_messages_are_data_sent_as_is_without_the_nulls_datasets_pads_with() -> None:
    log = [{"role": "user", "content": "{{ not a template }}", "name": None},
           {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                 "function": {"name": "f", "arguments": "{}"}}]},
           {"role": "tool", "content": "sunny", "tool_call_id": "c1", "name": None}]
    [call] = build_calls(case(user=None, conversation="log"), [Example("d1", {"log": log}, None)])
    assert call.body["messages"] == [{"role": "user", "content": "{{ not a template }}"},
                                     {k: v for k, v in log[1].items() if v is not None},
                                     {"role": "tool", "content": "sunny", "tool_call_id": "c1"}]


@pytest.mark.parametrize(("log", "problem"), [
    ("hello", "field 'log' is text that is not JSON; it must hold a list of"),
    ([], "field 'log' holds list [], not a list of messages"),
    (["hi"], "message 0 is str 'hi', not an object with role and content"),
    ([{"role": "bot", "content": "x"}], "message 0: role 'bot' is not one of system, developer, user, assistant, tool"),
    ([{"role": "user", "content": 3}], "message 0 (user): content is int 3; give the message's text"),
])
def test_a_malformed_conversation_names_the_example_the_message_and_the_fix(log: object, problem: str) -> None:
    with pytest.raises(PromptError) as info:
        build_calls(case(user=None, conversation="log"), [Example("d7", {"log": log}, None)])
    assert str(info.value).startswith(f"case 'c': prompt.conversation (example 'd7'): {problem}")
    with pytest.raises(PromptError, match="no field 'dialog'; available fields: log"):
        build_calls(case(user=None, conversation="dialog"), [Example("d7", {"log": []}, None)])


@pytest.mark.parametrize(("model", "problem"), [
    ({"api": "completions", "tools": [WEATHER]}, "model.tools: the completions API sends a bare prompt and takes no tools"),
    ({"api": "responses", "seed": 7}, "model.seed: the Responses API has no seed parameter"),
    ({"api": "completions", "response_format": {"type": "json_object"}}, "model.response_format: the completions API"),
])
def test_settings_the_api_cannot_send_are_refused_even_after_an_eval_api_override(model: dict, problem: str) -> None:
    loaded = case({"tools": model.get("tools"), "seed": model.get("seed"),
                   "response_format": model.get("response_format")})  # valid for chat, as loaded
    overridden = loaded.model_copy(update={"model": loaded.model.model_copy(update={"api": model["api"]})})
    with pytest.raises(PromptError) as info:
        build_calls(overridden, EXAMPLES)
    assert str(info.value).startswith(f"case 'c': {problem}")
    with pytest.raises(PromptError, match="api: completions sends a bare prompt, not the messages"):
        conversation = case(user=None, conversation="log")
        build_calls(conversation.model_copy(update={"model": conversation.model.model_copy(update={"api": "completions"})}),
                    [Example("d1", {"log": CHAT_LOG}, None)])


PLAIN_TEMPLATES = ["{{ text }}", "Review: {{ text }}\nSentiment:", "{{ text }} / {{ example_id }}\n", "no fields",
                   "{{ text }}{{ text }}"]
FIELD_VALUES = ["A small gem", "", "ünïcode ✓ \r\n tabs\t", 5, 2.5, None, True, ["a", "b"], {"k": "v"}]


@pytest.mark.parametrize("template", PLAIN_TEMPLATES)
def test_text_and_field_templates_render_exactly_as_jinja_does(template: str) -> None:
    """Such templates are joined without Jinja (25k renders of ``{{ text }}`` took half a second); every field
    type comes out as Jinja prints it."""
    from evalsuite import prompts

    compiled = prompts._compiled(template)
    assert compiled.parts is not None  # the joined path is the one taken for text fields
    for value in FIELD_VALUES:
        context = {"text": value, "example_id": "r1", "expected": None}
        assert compiled.render(context) == bounded_jinja.render_bounded(compiled.template, context), value


def test_a_field_template_still_refuses_a_field_over_the_text_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounded_jinja, "MAX_TEXT", 10)
    monkeypatch.setattr("evalsuite.prompts.MAX_TEXT", 10)
    with pytest.raises(PromptError, match="template too large"):
        build_calls(case(user="{{ text }}"), [Example("r1", {"text": "x" * 11})])


def test_a_template_is_compiled_once_for_every_case_that_uses_it() -> None:
    """Collecting 1,000 case files that share a prompt compiled it 1,000 times."""
    from evalsuite import prompts

    text = "Once per process: {{ text }} {% if expected %}({{ expected }}){% endif %}"
    first = build_calls(case(user=text), EXAMPLES)
    misses = prompts._compiled.cache_info().misses
    again = build_calls(case(user=text, system="Another case"), EXAMPLES)
    assert prompts._compiled.cache_info().misses == misses + 1  # only the new system prompt
    assert [c.body["messages"][-1] for c in again] == [c.body["messages"][-1] for c in first]
    assert first[0].body["messages"][-1]["content"] == "Once per process: A small gem (positive)"
