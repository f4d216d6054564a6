"""User patterns: one compile point, ``re`` syntax kept, a catastrophic pattern bounded in time."""

from __future__ import annotations

import pytest

from evalsuite._util import user_regex
from evalsuite._util.user_regex import RegexTimeout, UserPattern
from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import EvalsuiteError, MetricParamError
from evalsuite.metrics import get_metric
from evalsuite.records import Answer, Example, Scored

EXPONENTIAL = r"(a|aa)+$"  # exponential in the regex package too (^(a+)+$ is exponential in re only)


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(user_regex, "MATCH_TIMEOUT_S", 0.05)


def test_re_syntax_still_works() -> None:
    assert UserPattern(r"(?<=Answer: )(?P<answer>\w+)(?!\w)", "parse.pattern").search("Answer: yes").group("answer") == "yes"
    assert UserPattern(r"(\w)\1", "parse.pattern").search("abccd").group(0) == "cc"
    assert UserPattern(r"(?i)YES", "parse.pattern").search("yes") is not None
    assert UserPattern("YES", "parse.pattern", ignore_case=True).search("yes") is not None


def test_an_invalid_pattern_names_its_key_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"^parse.pattern '\(unclosed' is not a valid regular expression: .*; fix the "
                                         "pattern"):
        UserPattern("(unclosed", "parse.pattern")


@pytest.mark.usefixtures("short_timeout")
def test_a_catastrophic_pattern_times_out_then_is_given_up() -> None:
    pattern = UserPattern(EXPONENTIAL, "parse.pattern")
    answer = "a" * 40 + "!"
    for _ in range(user_regex.MAX_TIMEOUTS - 1):
        with pytest.raises(RegexTimeout, match=r"parse.pattern '\(a\|aa\)\+\$' took over 0.05 s on an answer of 41 "
                                               "characters .*counts as not matched. Fix: rewrite it"):
            pattern.search(answer)
    with pytest.raises(EvalsuiteError, match=r"timed out .* on 3 answers: stopped rather than hang the run"):
        pattern.search(answer)
    with pytest.raises(EvalsuiteError, match="stopped rather than hang"):
        pattern.search("a")  # given up for good: no more seconds spent on it


@pytest.mark.usefixtures("short_timeout")
def test_regex_match_metric_counts_a_timed_out_answer_as_no_match() -> None:
    metric = get_metric("regex_match", MetricSpec(params={"pattern": EXPONENTIAL}))
    scored = [Scored(Example(i, {}), Answer(i, 0, text=text), "") for i, text in (("e1", "aa"), ("e2", "a" * 40 + "!"))]
    with pytest.warns(UserWarning, match=r"regex_match: pattern '\(a\|aa\)\+\$' took over"):
        assert metric.score(scored) == [1, 0]


def test_regex_match_metric_rejects_an_invalid_pattern_with_the_fix() -> None:
    with pytest.raises(MetricParamError, match=r"regex_match: pattern '\[a' is not a valid regular expression: .*fix"):
        get_metric("regex_match", MetricSpec(params={"pattern": "[a"}))
