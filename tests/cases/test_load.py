"""Case files -> pytest items: one item per case, and the parser and metric checks that fail at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.cases import CaseFileError, load_suite
from tests._support.case_files import CASE, error, load, with_parse, write


def test_a_case_without_variants_is_one_item_named_by_its_id(tmp_path: Path) -> None:
    [run] = load(tmp_path, CASE)
    assert (run.suite, run.item_id, run.variant, run.source) == ("reviews", "sentiment", "", "cases/x.yaml:3")
    assert run.base_dir == tmp_path / "cases"
    assert run.case.model.name == "m" and run.case.prompt.user == "Review: {{ text }}"


def test_suite_defaults_to_the_file_stem(tmp_path: Path) -> None:
    [run] = load(tmp_path, CASE.replace("suite: reviews\n", ""))
    assert run.suite == "x"


def test_duplicate_case_ids(tmp_path: Path) -> None:
    twice = CASE + CASE.split("cases:\n", 1)[1]
    assert error(tmp_path, twice) == (
        "cases/x.yaml:8: id: duplicate case id 'sentiment' (first at line 3); give every case in a file its own id"
    )


def test_unknown_metric_lists_valid_metrics(tmp_path: Path) -> None:
    message = error(tmp_path, CASE.replace("metrics: [accuracy]", "metrics: {acuracy: {min: 0.5}}"))
    assert message.startswith("cases/x.yaml:7: metrics.acuracy: unknown metric 'acuracy'; did you mean 'accuracy'? valid: ")
    assert "accuracy" in message.split("valid: ")[1]


@pytest.mark.parametrize(
    "parse,expected",
    [
        ("{kind: label}", "parse.kind label needs parse.labels, e.g. {positive: [positive, good], negative: [negative, bad]}"),
        ("{kind: label, labels: {positive: [good], negative: [Good]}}",
         "parse.labels: 'Good' is a synonym of both 'positive' and 'negative'"),
        ("{kind: regex}", r"parse.kind regex needs parse.pattern, e.g. 'answer: (\w+)'"),
        ("{kind: regex, pattern: 'answer: (.+'}", "parse.pattern 'answer: (.+' is not a valid regular expression: "
         "missing ) at position 11; fix the pattern (Python re syntax; escape literal characters such as ( [ . * "
         "with a backslash)"),
    ],
    ids=["no-labels", "duplicate-synonym", "no-pattern", "bad-regex"],
)
def test_a_parser_that_cannot_work_fails_at_load_on_the_parse_line(tmp_path: Path, parse: str, expected: str) -> None:
    assert error(tmp_path, with_parse(parse)) == f"cases/x.yaml:7: {expected}"


def test_an_unknown_parser_kind_lists_the_registered_ones_with_a_did_you_mean(tmp_path: Path) -> None:
    assert error(tmp_path, with_parse("{kind: lable}")) == (
        "cases/x.yaml:7: parse.kind: unknown parser 'lable'; did you mean 'label'? valid: json, label, raw, regex, tool_calls"
    )


PARSERS = """\
import json

def abbreviation(text: str, *, length: int = 1, upper: bool = False) -> str | None:
    word = text.strip()[:length]
    return (word.upper() if upper else word.lower()) or None

def needs_spec(text, spec):
    return spec.labels.get(text.strip().lower(), [None])[0]

def threshold(text, *, at: float):
    return float(text) >= at

LIMIT = 3
"""


def test_a_python_parser_is_resolved_relative_to_the_case_file(tmp_path: Path) -> None:
    write(tmp_path, PARSERS, "cases/parsers/local.py")
    [run] = load(tmp_path, with_parse("{python: parsers/local.py:abbreviation, params: {length: '3'}}"))
    assert run.case.parse.python == f"{tmp_path / 'cases' / 'parsers' / 'local.py'}:abbreviation"  # runs anywhere
    assert run.case.parse.params == {"length": 3}  # converted to the annotation at load time


@pytest.mark.parametrize(
    ("parse", "expected"),
    [
        ("{python: missing.py:f}", "cases/x.yaml:7: parse.python: cases/missing.py does not exist (the path is "
         "relative to the case file's folder); create it or fix the path"),
        ("{python: local.py}", "cases/x.yaml:7: parse.python: 'local.py' must be '<file>.py:<function>', e.g. "
         "'local_functions.py:my_function' (the file relative to the case file's folder)"),
        ("{python: local.py:abreviation}", "cases/x.yaml:7: parse.python: cases/local.py has no function "
         "'abreviation'; did you mean 'abbreviation'? functions defined there: abbreviation, needs_spec, threshold"),
        ("{python: local.py:LIMIT}", "cases/x.yaml:7: parse.python: cases/local.py:LIMIT is not a function (its type is "
         "int); name a function"),
        ("{python: local.py:abbreviation, kind: label}", "cases/x.yaml:7: parse: give either 'kind' (a registered "
         "parser) or 'python' ('<file>.py:<function>'), not both"),
        ("{python: local.py:abbreviation, params: {lenght: 2}}", "cases/x.yaml:7: parse.params.lenght: unknown "
         "parameter 'lenght'; did you mean 'length'? valid: length, upper"),
        ("{python: local.py:abbreviation, params: {upper: maybe}}", "cases/x.yaml:7: parse.params.upper: input "
         "should be a valid boolean, unable to interpret input (got 'maybe')"),
        ("{python: local.py:threshold}", "cases/x.yaml:7: parse.params: parameter 'at' is required, e.g. "
         "`params: {at: ...}`"),
        ("{kind: label, labels: {a: [a]}, params: {x: 1}}", "cases/x.yaml:7: parse.params.x: unknown parameter "
         "'x'; valid: none (this parser takes no parameters)"),
    ],
    ids=["no-file", "no-function-part", "misspelt-function", "not-callable", "kind-and-python", "unknown-param",
         "bad-param-value", "required-param", "builtin-takes-none"],
)
def test_python_parser_and_parameter_errors_name_the_key_and_the_fix(tmp_path: Path, parse: str, expected: str) -> None:
    write(tmp_path, PARSERS, "cases/local.py")
    assert error(tmp_path, with_parse(parse)) == expected


def test_a_python_parser_module_that_cannot_import_is_a_message_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "def f(text):\n    return text\n\ndef g(text)\n    return 1\n", "cases/broken.py")
    assert error(tmp_path, with_parse("{python: broken.py:f}")) == (
        "cases/x.yaml:7: parse.python: cases/broken.py:4: cannot import it: SyntaxError: expected ':'; fix the module"
    )
    write(tmp_path, "import json\n\nVALUE = json.loads('{')\n", "cases/raises.py")
    message = error(tmp_path, with_parse("{python: raises.py:f}"))
    assert message.startswith("cases/x.yaml:7: parse.python: cases/raises.py:3: cannot import it: JSONDecodeError: ")
    assert message.endswith("; fix the module")


@pytest.mark.parametrize(
    "metrics,expected",
    [
        ("f1: {averge: macro}",
         "metrics.f1: unknown parameter 'averge'; did you mean 'average'? valid: average, pos_label"),
        ("f1: {average: binary, min: 0.8}",
         "metrics.f1: average binary needs pos_label, the positive class, e.g. {pos_label: positive}"),
        ("regex_match: {min: 0.5}", "metrics.regex_match: parameter 'pattern' is required, e.g. `regex_match: {pattern: ...}`"),
        ("rouge1: {params: {use_stemmer: 'yes'}}", "metrics.rouge1: use_stemmer must be true or false; got 'yes'"),
    ],
)
def test_bad_metric_parameters_fail_at_load_on_the_metric_line(tmp_path: Path, metrics: str, expected: str) -> None:
    text = CASE.replace("    metrics: [accuracy]", f"    metrics:\n      accuracy: 0.8\n      {metrics}")
    assert error(tmp_path, text) == f"cases/x.yaml:9: {expected}"


def test_perplexity_without_logprobs_fails_at_load_on_the_metric_line(tmp_path: Path) -> None:
    block = CASE.replace("    metrics: [accuracy]", "    metrics:\n      - accuracy\n      - perplexity")
    assert error(tmp_path, block) == (
        "cases/x.yaml:9: metrics.perplexity: perplexity needs token logprobs; set model.logprobs: true"
    )
    mapping = CASE.replace("    metrics: [accuracy]", "    metrics:\n      accuracy:\n      perplexity: {max: 40}")
    assert error(tmp_path, mapping) == (
        "cases/x.yaml:9: metrics.perplexity: perplexity needs token logprobs; set model.logprobs: true"
    )
    [run] = load(tmp_path, mapping.replace("temperature: 0}", "temperature: 0, logprobs: true}"))
    assert set(run.case.metrics) == {"accuracy", "perplexity"}


def test_defaults_yaml_is_not_a_suite(tmp_path: Path) -> None:
    path = write(tmp_path, "model: {name: m}\n", "cases/defaults.yaml")
    with pytest.raises(CaseFileError, match="defaults.yaml holds shared defaults"):
        load_suite(path, tmp_path)
