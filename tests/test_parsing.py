"""Answer text -> prediction, including the answers the exercise's ``"positive" in pred`` rule got wrong."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest

from evalsuite.cases.schema import ParseSpec
from evalsuite.parsing import check, names, parse
from evalsuite.records import Answer
from tests._support.dist_info import install_package
from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, REVIEWS, make_project, report_json, run

SENTIMENT = ParseSpec(
    kind="label",
    labels={"positive": ["positive", "good", "thumbs up"], "negative": ["negative", "bad"], "neutral": ["neutral", "mixed"]},
)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Negative. It is not positive", ("negative", True)),  # the naive rule said positive
        ("Positive", ("positive", True)),
        ("  NEGATIVE\n", ("negative", True)),
        ("Sentiment: good.", ("positive", True)),
        ("I'd say thumbs   up!", ("positive", True)),  # multi-word synonym, any whitespace
        ("It is not positive, it is negative.", ("negative", True)),  # the negated mention is skipped
        ("The review isn't negative; overall positive.", ("positive", True)),
        ("Mixed, leaning positive", ("neutral", True)),  # the label named first wins
        ("positive and negative", ("positive", True)),
        # decided: a negated label alone is ambiguous (neutral? negative?) -> unparsed, counted wrong, reported
        ("not positive", (None, False)),
        ("Never bad, never good", (None, False)),
        ("Positively charming", (None, False)),  # whole words only
        ("nonnegative", (None, False)),
        ("I cannot tell", (None, False)),
        ("", (None, False)),
        (None, (None, False)),  # errored call
    ],
)
def test_label_parsing(text, expected):
    assert parse(text, SENTIMENT) == expected


def test_label_case_sensitive_and_synonyms_containing_a_negation():
    spec = ParseSpec(kind="label", labels={"A": ["A"], "B": ["B"]}, case_sensitive=True)
    assert parse("a then B", spec) == ("B", True)
    toxic = ParseSpec(kind="label", labels={"safe": ["not toxic", "safe"], "toxic": ["toxic"]})
    assert parse("Not toxic.", toxic) == ("safe", True)  # the longest synonym at a position wins
    assert parse("toxic", toxic) == ("toxic", True)


def test_check_rejects_unusable_specs():
    with pytest.raises(ValueError, match="needs parse.labels"):
        check(ParseSpec(kind="label"))
    with pytest.raises(ValueError, match="synonym of both 'a' and 'b'"):
        check(ParseSpec(kind="label", labels={"a": ["yes"], "b": ["YES"]}))
    with pytest.raises(ValueError, match="needs parse.pattern"):
        check(ParseSpec(kind="regex"))
    with pytest.raises(ValueError, match="not a valid regular expression"):
        check(ParseSpec(kind="regex", pattern="(unclosed"))
    check(SENTIMENT)


@pytest.mark.parametrize(
    "pattern,text,expected",
    [
        (r"answer:\s*(?P<answer>\w+)", "Reasoning... ANSWER: 42 done", ("42", True)),  # named group, case-folded
        (r"(\w+) then (\w+)", "first then second", ("first", True)),  # group 1
        (r"\d+", "about 17 or 18", ("17", True)),  # no group: whole (first) match
        (r"####\s*(-?[\d,]+)", "so #### -1,250", ("-1,250", True)),
        (r"(yes)|(no)", "no", (None, False)),  # group 1 did not take part in the match
        (r"answer: (\w+)", "no answer here", (None, False)),
    ],
)
def test_regex_parsing(pattern, text, expected):
    assert parse(text, ParseSpec(kind="regex", pattern=pattern)) == expected


def test_regex_case_sensitive():
    spec = ParseSpec(kind="regex", pattern=r"Answer: (\w+)", case_sensitive=True)
    assert parse("answer: x", spec) == (None, False)
    assert parse("Answer: x", spec) == ("x", True)


@pytest.mark.parametrize(
    "text,field,expected",
    [
        ('{"sentiment": "positive"}', "sentiment", ("positive", True)),
        ('Here you go:\n```json\n{"result": {"label": "neg", "score": 0.9}}\n```\nThanks', "result.label", ("neg", True)),
        ('Brace {not json} then {"a": {"b": [1, {"c": 3}]}} end', "a.b.1.c", (3, True)),
        ('{"a": 1} and later {"a": 2}', "a", (1, True)),  # the first object
        ('```json\n{"a": 1}\n```', None, ({"a": 1}, True)),  # no field: the whole object
        ('{"a": 1}', "b", (None, False)),  # missing field
        ('{"a": [1]}', "a.5", (None, False)),
        ('{"a": 1', "a", (None, False)),  # truncated
        ("[1, 2]", None, (None, False)),  # not an object
        ("no json", None, (None, False)),
        (None, "a", (None, False)),
    ],
)
def test_json_parsing(text, field, expected):
    assert parse(text, ParseSpec(kind="json", field=field)) == expected


def test_raw_parsing():
    assert parse("  The answer.\n", ParseSpec()) == ("The answer.", True)
    assert parse("  The answer.\n", ParseSpec(strip=False)) == ("  The answer.\n", True)
    assert parse(None, ParseSpec()) == (None, False)


def test_a_json_field_holding_null_is_no_prediction():
    assert parse('{"answer": null}', ParseSpec(kind="json", field="answer")) == (None, False)


REVIEW = {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative"]}}, "required": ["sentiment"]}


@pytest.mark.parametrize(("text", "expected"), [
    ('Sure: {"sentiment": "positive"}', ("positive", True)),
    ('{"sentiment": "great"}', (None, False)),  # not one of the schema's values
    ('{"mood": "positive"}', (None, False)),  # a required key missing
])
def test_json_with_a_schema_leaves_an_invalid_object_unparsed(text: str, expected: tuple) -> None:
    assert parse(text, ParseSpec(kind="json", field="sentiment", json_schema=REVIEW)) == expected


def tool_answer(*calls: tuple[str, str], text: str | None = None) -> Answer:
    return Answer("e1", 0, text=text, tool_calls=[{"name": n, "arguments": a} for n, a in calls] or None)


@pytest.mark.parametrize(("field", "answer", "expected"), [
    (None, tool_answer(("get_weather", '{"city": "Paris"}'), ("get_time", "{}")),
     ({"name": "get_weather", "arguments": {"city": "Paris"}}, True)),  # the first call
    ("name", tool_answer(("get_weather", "{}")), ("get_weather", True)),
    ("arguments.city", tool_answer(("get_weather", '{"city": "Paris"}')), ("Paris", True)),
    ("arguments.city", tool_answer(("get_weather", "{}")), (None, False)),
    (None, tool_answer(("get_weather", '{"city": ')), (None, False)),  # arguments that are not JSON
    (None, tool_answer(("get_weather", '["Paris"]')), (None, False)),  # nor an object
    (None, tool_answer(text="It is sunny."), (None, False)),  # answered in text: no call to parse
])
def test_tool_calls_parser_reads_the_answers_first_call(field: str | None, answer: Answer, expected: tuple) -> None:
    assert parse(answer.text, ParseSpec(kind="tool_calls", field=field), answer=answer) == expected


def test_a_custom_parser_may_read_the_whole_answer(tmp_path) -> None:
    (tmp_path / "finish.py").write_text("def finish(text, answer, *, cut='cut'):\n"
                                        "    return cut if answer.finish_reason == 'length' else text\n")
    spec = check(ParseSpec(python="finish.py:finish", params={"cut": "TRUNCATED"}), base_dir=tmp_path)
    assert parse("half an", spec, answer=Answer("e1", 0, text="half an", finish_reason="length")) == ("TRUNCATED", True)
    assert parse("whole", spec, answer=Answer("e1", 0, text="whole", finish_reason="stop")) == ("whole", True)


def test_parsers_are_named_by_a_registry_checked_when_the_spec_is_built():
    assert {"label", "regex", "json", "raw"} <= set(names())
    with pytest.raises(ValueError, match=r"unknown parser 'rgex'; did you mean 'regex'\? valid: .*regex"):
        ParseSpec(kind="rgex")


def test_a_python_parser_gets_the_spec_and_its_params(tmp_path):
    (tmp_path / "mine.py").write_text(
        "def pick(text, spec, *, index: int = 0):\n"
        "    words = text.split()\n"
        "    return spec.labels.get(words[index]) if len(words) > index else None\n"
    )
    spec = check(ParseSpec(python="mine.py:pick", labels={"yes": ["y"]}, params={"index": "1"}), base_dir=tmp_path)
    assert spec.params == {"index": 1}
    assert parse("so yes", spec) == (["y"], True)
    assert parse("yes", spec) == (None, False)  # None: unparsed, counted wrong, listed in the report


# ------------------------------------------------------------------ custom parsers end to end (pytester)

WORDS_CASE = """\
suite: words
cases:
  - id: abbreviated
    model: {name: test-model, temperature: 0, max_tokens: 3}
    dataset: {path: data/reviews.jsonl, label_names: [neg, pos], expected: label}
    prompt: {user: "Review: {{ text }}"}
    parse: PARSE
    metrics: {accuracy: {min: 0.75}}
"""
# The server answers "Positive"/"Negative": only a parser that abbreviates to 3 letters matches the labels.
ABBREVIATION = """\
def abbreviation(text: str, *, length: int = 1) -> str | None:
    return text.strip()[:length].lower() or None
"""


def words_project(pytester: pytest.Pytester, parse: str) -> pytest.Pytester:
    make_project(pytester)
    (pytester.path / "cases" / "reviews.yaml").unlink()
    (pytester.path / "cases" / "words.yaml").write_text(WORDS_CASE.replace("PARSE", parse))
    return pytester


def record_then_replay(pytester: pytest.Pytester, *replay_args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Record against the local server, replay offline; the replayed report's one item."""
    with ChatServer(sentiment_responder) as server:
        live = run(pytester, "cases", "--record-mode=once",
                   env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY, **(env or {})})
        assert live.returncode == 0, live.stdout + live.stderr
        assert len(server.requests) == len(REVIEWS)
    replay = run(pytester, "cases", "--record-mode=none", *replay_args, env=env)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    [item] = report_json(pytester)["items"]
    assert {m["name"]: m["value"] for m in item["metrics"]} == {"accuracy": 1.0}
    assert {r["prediction"] for r in item["records"]} == {"neg", "pos"}
    return item


def test_a_parser_registered_in_conftest_parses_recorded_and_replayed_answers(pytester: pytest.Pytester) -> None:
    project = words_project(pytester, "{kind: abbreviation, params: {length: 3}}")
    project.makeconftest("import evalsuite\n\n\n@evalsuite.parser('abbreviation')\n" + ABBREVIATION)
    record_then_replay(project)


def test_a_parser_from_an_installed_package_entry_point(pytester: pytest.Pytester) -> None:
    project = words_project(pytester, "{kind: abbreviation, params: {length: 3}}")
    env = install_package(  # a plain function: the package need not import evalsuite
        project.path / "site", "evalsuite-abbreviation",
        {"evalsuite.parsers": {"abbreviation": "abbreviation_parser:abbreviation"}},
        {"abbreviation_parser": ABBREVIATION})
    record_then_replay(project, env=env)


def test_a_python_parser_beside_the_case_file_runs_in_every_worker(pytester: pytest.Pytester) -> None:
    project = words_project(pytester, "{python: parsers/local.py:abbreviation, params: {length: 3}}")
    (project.path / "cases" / "parsers").mkdir()
    (project.path / "cases" / "parsers" / "local.py").write_text(ABBREVIATION)
    record_then_replay(project, "-n", "2")


def test_a_misspelt_custom_parser_or_a_bad_python_path_fails_collection_with_one_line(pytester: pytest.Pytester) -> None:
    project = words_project(pytester, "{kind: abreviation}")
    project.makeconftest("import evalsuite\n\n\n@evalsuite.parser('abbreviation')\n" + ABBREVIATION)
    result = run(project, "cases", "--collect-only")
    assert result.returncode != 0
    assert ("cases/words.yaml:7: parse.kind: unknown parser 'abreviation'; did you mean 'abbreviation'? valid: "
            "abbreviation, json, label, raw, regex, tool_calls") in result.stdout, result.stdout
    assert "Traceback" not in result.stdout

    (project.path / "cases" / "words.yaml").write_text(WORDS_CASE.replace("PARSE", "{python: parsers.py:abbreviation}"))
    result = run(project, "cases", "--collect-only")
    assert ("cases/words.yaml:7: parse.python: cases/parsers.py does not exist (the path is relative to the case "
            "file's folder); create it or fix the path") in result.stdout, result.stdout
    assert "Traceback" not in result.stdout


@pytest.mark.parametrize("pattern", [r"^(a+)+$", r"(a|aa)+$"])
def test_a_catastrophic_parse_pattern_leaves_the_answer_unparsed(pattern: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`^(a+)+$` on a 34-character answer hung scoring with `re`; now the answer is unparsed, with a warning."""
    from evalsuite._util import user_regex

    monkeypatch.setattr(user_regex, "MATCH_TIMEOUT_S", 0.05)
    spec = ParseSpec(kind="regex", pattern=pattern, case_sensitive=True)
    check(spec)
    with pytest.warns(UserWarning, match="parse.pattern .* counts as not matched") if "|" in pattern else nullcontext():
        assert parse("a" * 34 + "!", spec) == (None, False)
    assert parse("aaaa", spec) == ("a" if "|" in pattern else "aaaa", True)


def test_an_invalid_parse_pattern_says_which_key_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"parse.pattern '\(unclosed' is not a valid regular expression: .*fix the pattern"):
        check(ParseSpec(kind="regex", pattern="(unclosed"))
