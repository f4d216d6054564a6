"""Answer text -> prediction, including the answers the exercise's ``"positive" in pred`` rule got wrong."""

from __future__ import annotations

import pytest

from evalsuite.cases.schema import ParseSpec
from evalsuite.parsing import check, parse

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
