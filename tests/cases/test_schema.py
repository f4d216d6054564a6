"""The case keys of the 2026 API surface: tools, tool_choice, response_format, parse.json_schema, the json_schema
metric's schema and prompt.conversation. Schemas may live in files beside the case file; every mistake is one line
naming the file, the line and the fix, at load time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests._support.case_files import error, load, write

WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                 "required": ["city"]}}
REVIEW = {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative"]}}, "required": ["sentiment"]}

CASE = """\
cases:
  - id: weather
    model:
      name: m
      tools: TOOLS
      tool_choice: CHOICE
    dataset: {examples: [{q: "Weather in Paris?", expected: get_weather}]}
    prompt: {user: "{{ q }}"}
    metrics: [tool_called]
"""


def case(tools: str = "tools.json", choice: str = "get_weather") -> str:
    return CASE.replace("TOOLS", tools).replace("CHOICE", choice)


def test_tools_are_read_from_a_file_beside_the_case_file_not_the_working_directory(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    write(tmp_path, json.dumps([{"type": "function", "function": WEATHER}]), "cases/tools.json")
    monkeypatch.chdir(tmp_path)  # the file is found relative to cases/, where the case file is
    [run] = load(tmp_path, case())
    assert [tool.model_dump(exclude_none=True) for tool in run.case.model.tools or []] == [WEATHER]
    write(tmp_path, "- name: get_time\n  description: Now\n", "cases/more/tools.yaml")
    [run] = load(tmp_path, case("more/tools.yaml", "auto"))
    assert run.case.model.tools is not None and run.case.model.tools[0].name == "get_time"


@pytest.mark.parametrize(("tools", "choice", "expected"), [
    ("missing.json", "auto", "cases/x.yaml:5: model.tools: cannot read 'missing.json' (No such file or directory; "
                             "looked in CASES); the path is relative to the case file's folder"),
    ("[{name: get_weather, parameters: {type: objekt}}]", "auto",
     "cases/x.yaml:5: model.tools[0].parameters: not a valid JSON Schema at type: 'objekt' is not valid under any of "
     "the given schemas"),
    ("[{name: get weather}]", "auto", "cases/x.yaml:5: model.tools[0].name: string should match pattern"),
    ("[{name: get_weather}]", "get_wether", "cases/x.yaml:6: model.tool_choice: 'get_wether' is neither auto, none, "
                                            "required nor a tool's name; did you mean 'get_weather'?"),
    ("[{name: a}, {name: a}]", "auto", "cases/x.yaml:5: model.tools: two tools are named 'a'; give each its own name"),
    ("tools.txt", "auto", "cases/x.yaml:5: model.tools: 'tools.txt' is neither a mapping nor a .json/.yaml file name"),
])
def test_tool_mistakes_are_one_line_at_their_key(tmp_path: Path, tools: str, choice: str, expected: str) -> None:
    message = error(tmp_path, case(tools, choice))
    assert message.startswith(expected.replace("CASES", str(tmp_path / "cases"))), message


def test_settings_an_api_cannot_send_fail_at_load(tmp_path: Path) -> None:
    completions = case("[{name: get_weather}]").replace("name: m\n", "name: m\n      api: completions\n")
    assert error(tmp_path, completions).startswith(
        "cases/x.yaml:6: model.tools: the completions API sends a bare prompt and takes no tools; use api: chat")
    responses = case("[{name: get_weather}]").replace("name: m\n", "name: m\n      api: responses\n      seed: 1\n")
    assert error(tmp_path, responses).startswith(
        "cases/x.yaml:6: model.seed: the Responses API has no seed parameter; set it to null for this case")


STRUCTURED = """\
cases:
  - id: review
    model:
      name: m
      response_format: FORMAT
    dataset: {examples: [{text: good, expected: positive}]}
    prompt: {user: "{{ text }}"}
    parse: PARSE
    metrics:
      json_schema: METRIC
"""


def structured(form: str = "{json_schema: review.json}", parse: str = "{kind: json, field: sentiment}",
               metric: str = "{min: 0.9}") -> str:
    return STRUCTURED.replace("FORMAT", form).replace("PARSE", parse).replace("METRIC", metric)


def test_the_json_schema_metric_checks_against_the_schema_sent_unless_given_its_own(tmp_path: Path) -> None:
    write(tmp_path, json.dumps(REVIEW), "cases/review.json")
    write(tmp_path, "type: object\nrequired: [mood]\n", "cases/mood.yaml")
    [run] = load(tmp_path, structured())
    assert run.case.model.response_format is not None and run.case.model.response_format.json_schema == REVIEW
    assert run.case.metrics["json_schema"].params["schema"] == REVIEW
    [run] = load(tmp_path, structured(metric="{schema: mood.yaml}", parse="{kind: json, json_schema: review.json}"))
    assert run.case.metrics["json_schema"].params["schema"] == {"type": "object", "required": ["mood"]}
    assert run.case.parse.json_schema == REVIEW


@pytest.mark.parametrize(("text", "expected"), [
    (structured("{type: json_schema}"), "cases/x.yaml:5: model.response_format: type json_schema needs json_schema"),
    (structured("{json_schema: {type: object, required: sentiment}}"),
     "cases/x.yaml:5: model.response_format.json_schema: not a valid JSON Schema at required: 'sentiment' is not of "
     "type 'array'"),
    (structured("{type: json_object}"), "cases/x.yaml:10: metrics.json_schema: no schema to check answers against; "
                                        "set model.response_format: {json_schema: ...}"),
    (structured(parse="{kind: json, json_schema: broken.json}"), "cases/x.yaml:8: parse.json_schema: 'broken.json' is "
                                                                 "not valid JSON: Expecting"),
])
def test_structured_output_mistakes_are_one_line_at_their_key(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, json.dumps(REVIEW), "cases/review.json")
    write(tmp_path, "{not json", "cases/broken.json")
    message = error(tmp_path, text)
    assert message.startswith(expected), message


CONVERSATION = """\
cases:
  - id: memory
    model: {name: m, api: API}
    dataset: {path: dialogs.jsonl, expected: name}
    prompt:
      conversation: log
    metrics: [contains]
"""


def test_a_conversation_case_needs_no_user_template_and_its_first_rows_are_checked_at_load(tmp_path: Path) -> None:
    good = [{"role": "user", "content": "I am Ana."}, {"role": "assistant", "content": "Hi Ana."},
            {"role": "user", "content": "Who am I?"}]
    rows = [{"log": good, "name": "Ana"}, {"log": good[:1], "name": "Ana"}]
    write(tmp_path, "\n".join(json.dumps(row) for row in rows), "cases/dialogs.jsonl")
    [run] = load(tmp_path, CONVERSATION.replace("API", "chat"))
    assert run.case.prompt.conversation == "log" and run.case.prompt.user is None

    rows.append({"log": [{"role": "user", "text": "Who am I?"}], "name": "Ana"})  # the third row: still previewed
    write(tmp_path, "\n".join(json.dumps(row) for row in rows), "cases/dialogs.jsonl")
    assert error(tmp_path, CONVERSATION.replace("API", "chat")) == (
        "cases/x.yaml:6: prompt.conversation (example '2'): message 0 (user): content is NoneType None; give the "
        "message's text (or a list of content parts)")
    assert error(tmp_path, CONVERSATION.replace("API", "completions")).startswith(
        "cases/x.yaml:2: prompt.conversation: the completions API sends a bare prompt, not messages; use api: chat")


def test_a_schema_file_path_is_absolute_or_relative_to_the_case_file(tmp_path: Path) -> None:
    schema = write(tmp_path, json.dumps(REVIEW), "schemas/review.json")
    [run] = load(tmp_path, structured(f"{{json_schema: {os.fspath(schema)}}}"))
    assert run.case.metrics["json_schema"].params["schema"] == REVIEW
    [run] = load(tmp_path, structured("{json_schema: ../schemas/review.json}"))
    assert run.case.model.response_format is not None and run.case.model.response_format.json_schema == REVIEW
