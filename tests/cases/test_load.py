"""Case files -> pytest items: defaults layering, variant ids, and one clear file:line error per mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from evalsuite.cases import _load as loader
from evalsuite.errors import EvalsuiteError

CASE = """\
suite: reviews
cases:
  - id: sentiment
    model: {name: m, temperature: 0}
    dataset: {examples: [{text: good, expected: positive}]}
    prompt: {system: Classify., user: "Review: {{ text }}"}
    metrics: [accuracy]
"""


def write(root: Path, text: str, name: str = "cases/x.yaml") -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(root: Path, text: str) -> list[loader.CaseRun]:
    return loader.load_suite(write(root, text), root)


def error(root: Path, text: str) -> str:
    with pytest.raises(loader.CaseFileError) as info:
        load(root, text)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_case_without_variants_is_one_item_named_by_its_id(tmp_path: Path) -> None:
    [run] = load(tmp_path, CASE)
    assert (run.suite, run.item_id, run.variant, run.source) == ("reviews", "sentiment", "", "cases/x.yaml:3")
    assert run.base_dir == tmp_path / "cases"
    assert run.case.model.name == "m" and run.case.prompt.user == "Review: {{ text }}"


def test_suite_defaults_to_the_file_stem(tmp_path: Path) -> None:
    [run] = load(tmp_path, CASE.replace("suite: reviews\n", ""))
    assert run.suite == "x"


def test_prompt_variants_times_parameter_matrix(tmp_path: Path) -> None:
    runs = load(tmp_path, CASE + """\
    variants:
      prompts:
        plain: {}
        terse: {system: "Sentiment?", few_shot: [{role: user, content: meh}, {role: assistant, content: negative}]}
      matrix: {max_tokens: [20], temperature: [0, 0.7]}
""")
    assert [r.item_id for r in runs] == [
        "sentiment[plain-t0-mt20]", "sentiment[plain-t0.7-mt20]", "sentiment[terse-t0-mt20]", "sentiment[terse-t0.7-mt20]",
    ]
    by_id = {r.item_id: r for r in runs}
    terse = by_id["sentiment[terse-t0.7-mt20]"]
    assert terse.variant == "terse-t0.7-mt20"
    assert (terse.case.model.temperature, terse.case.model.max_tokens) == (0.7, 20)
    assert terse.case.prompt.system == "Sentiment?" and terse.case.prompt.user == "Review: {{ text }}"
    assert [m.content for m in terse.case.prompt.few_shot] == ["meh", "negative"]
    plain = by_id["sentiment[plain-t0-mt20]"].case
    assert plain.prompt.system == "Classify." and plain.prompt.few_shot == [] and plain.model.temperature == 0
    assert all(r.source == "cases/x.yaml:3" for r in runs)


def test_matrix_only_ids_use_fixed_abbreviations(tmp_path: Path) -> None:
    runs = load(tmp_path, CASE + "    variants: {matrix: {seed: [1, 12345678], top_p: [0.5]}}\n")
    assert [r.item_id for r in runs] == ["sentiment[p0.5-s1]", "sentiment[p0.5-s12345678]"]
    assert all("/" not in r.item_id and " " not in r.item_id for r in runs)


def test_defaults_layer_pyproject_then_defaults_yaml_then_file_then_case(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""\
        [project]
        name = "user-project"

        [tool.evalsuite]
        prices = {m = {input = 1.0, output = 2.0}}
        tags = ["from-pyproject"]

        [tool.evalsuite.model]
        name = "from-pyproject"
        timeout = 5.0
        top_p = 0.9
    """))
    write(tmp_path, """\
        model: {name: from-defaults-yaml, temperature: 0.3}
        parse: {kind: label, labels: {positive: [pos]}}
        repeats: 2
    """, "cases/defaults.yaml")
    runs = load(tmp_path, """\
        defaults:
          model: {name: from-file}
          repeats: 3
        cases:
          - id: a
            dataset: {examples: [{text: t, expected: e}]}
            prompt: {user: "{{ text }}"}
            metrics: [accuracy]
          - id: b
            tags: [own]
            model: {temperature: 0.9}
            parse: {labels: {negative: [neg]}}
            dataset: {examples: [{text: t, expected: e}]}
            prompt: {user: "{{ text }}"}
            metrics: [accuracy]
    """)
    a, b = (r.case for r in runs)
    assert (a.model.name, a.model.timeout, a.model.top_p, a.model.temperature) == ("from-file", 5.0, 0.9, 0.3)
    assert a.repeats == 3 and a.tags == ["from-pyproject"] and a.parse.kind == "label"
    assert b.model.temperature == 0.9 and b.model.name == "from-file"
    assert b.tags == ["own"]  # lists are replaced, not appended
    assert b.parse.kind == "label" and b.parse.labels == {"positive": ["pos"], "negative": ["neg"]}  # dicts merge


def test_an_error_in_defaults_yaml_points_into_defaults_yaml(tmp_path: Path) -> None:
    write(tmp_path, "model:\n  name: m\n  api: chatt\n", "cases/defaults.yaml")
    message = error(tmp_path, CASE)
    assert message == "cases/defaults.yaml:3: model.api: 'chatt' is not allowed; did you mean 'chat'? choices: chat, completions"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            ("temperature: 0", "temprature: 0"),
            "cases/x.yaml:4: model.temprature: unknown key 'temprature'; did you mean 'temperature'? valid keys: api, "
            "api_version, base_url, logprobs, max_tokens, name, price_per_1k_input, price_per_1k_output, provider, "
            "seed, stop, temperature, timeout, top_logprobs, top_p",
            id="unknown-key",
        ),
        pytest.param(
            ("model: {name: m, temperature: 0}", "model: {name: m, provider: openia}"),
            "cases/x.yaml:4: model.provider: 'openia' is not allowed; did you mean 'openai'? choices: openai, azure_openai",
            id="literal",
        ),
        pytest.param(
            ("    metrics: [accuracy]\n", ""),
            "cases/x.yaml:3: metrics: required key is missing; add it",
            id="missing",
        ),
        pytest.param(
            ("{examples: [{text: good, expected: positive}]}", "{path: a.jsonl, hf: imdb}"),
            "cases/x.yaml:5: dataset: give exactly one of 'examples' (inline rows), 'path' (a local file) or 'hf' "
            "(a Hub dataset id); found path, hf",
            id="dataset-sources",
        ),
        pytest.param(
            ("id: sentiment", "id: senti ment"),
            "cases/x.yaml:3: id: 'senti ment' is not a valid id; use only letters, digits, '_', '.' and '-' "
            "(ids name cassettes and baseline entries)",
            id="bad-id",
        ),
        pytest.param(
            ("temperature: 0}", "temperature: hot}"),
            "cases/x.yaml:4: model.temperature: input should be a valid number, unable to parse string as a number "
            "(got 'hot')",
            id="bad-number",
        ),
        pytest.param(
            ("cases:", "case:"),
            "cases/x.yaml:2: case: unknown key 'case'; did you mean 'cases'? valid keys: cases, defaults, suite",
            id="top-level-typo",
        ),
    ],
)
def test_schema_errors_name_file_line_key_and_fix(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    assert error(tmp_path, CASE.replace(*change)) == expected


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    message = error(tmp_path, CASE.replace("metrics: [accuracy]", "metrics: [accuracy"))
    assert message.startswith("cases/x.yaml:8: invalid YAML: while parsing a flow sequence")
    assert "check the indentation" in message


def test_duplicate_case_ids_and_duplicate_keys(tmp_path: Path) -> None:
    twice = CASE + CASE.split("cases:\n", 1)[1]
    assert error(tmp_path, twice) == (
        "cases/x.yaml:8: id: duplicate case id 'sentiment' (first at line 3); give every case in a file its own id"
    )
    assert error(tmp_path, CASE.replace("    metrics:", "    prompt: {user: x}\n    metrics:")) == (
        "cases/x.yaml:7: cases[0].prompt: duplicate key; keep only one"
    )


@pytest.mark.parametrize("key", ["api_key", "token", "password", "key"])
def test_credentials_in_yaml_are_rejected(tmp_path: Path, key: str) -> None:
    message = error(tmp_path, CASE.replace("{name: m,", f"{{name: m, {key}: sk-123,"))
    assert message.startswith(f"cases/x.yaml:4: cases[0].model.{key}: credentials must not be written in case files")
    assert "OPENAI_API_KEY" in message and "AZURE_OPENAI_API_KEY" in message


def test_credentials_in_pyproject_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.evalsuite]\napi_key = "sk-1"\n')
    assert error(tmp_path, CASE).startswith("pyproject.toml:2: api_key: credentials must not be written")


def test_data_columns_named_like_secrets_are_allowed(tmp_path: Path) -> None:
    [run] = load(tmp_path, CASE.replace("{text: good, expected: positive}", "{key: C, token: x, expected: positive}"))
    assert run.case.dataset.examples == [{"key": "C", "token": "x", "expected": "positive"}]


def test_matrix_errors(tmp_path: Path) -> None:
    assert error(tmp_path, CASE + "    variants: {matrix: {temprature: [0]}}\n") == (
        "cases/x.yaml:8: variants.matrix.temprature: unknown key 'temprature'; did you mean 'temperature'? "
        "valid keys: temperature, max_tokens, top_p, seed"
    )
    assert error(tmp_path, CASE + "    variants:\n      matrix:\n        max_tokens: [10, many]\n") == (
        "cases/x.yaml:10: variants.matrix.max_tokens[1]: input should be a valid integer, unable to parse string "
        "as an integer (got 'many')"
    )
    assert error(tmp_path, CASE + "    variants: {prompts: {a b: {}}}\n").startswith(
        "cases/x.yaml:8: variants.prompts.a b: variant name 'a b' must use only letters"
    )


def test_a_case_needs_a_user_template(tmp_path: Path) -> None:
    assert error(tmp_path, CASE.replace('user: "Review: {{ text }}"', "user: null")) == (
        "cases/x.yaml:6: prompt: prompt.user is missing; add a user template (the chat user message, or the whole "
        "prompt for api: completions)"
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
         "missing ), unterminated subpattern at position 8"),
    ],
    ids=["no-labels", "duplicate-synonym", "no-pattern", "bad-regex"],
)
def test_a_parser_that_cannot_work_fails_at_load_on_the_parse_line(tmp_path: Path, parse: str, expected: str) -> None:
    text = CASE.replace("    metrics:", f"    parse: {parse}\n    metrics:")
    assert error(tmp_path, text) == f"cases/x.yaml:7: {expected}"


def test_a_parse_error_from_defaults_yaml_points_into_defaults_yaml(tmp_path: Path) -> None:
    write(tmp_path, "model: {name: m}\nparse:\n  kind: regex\n  pattern: '('\n", "cases/defaults.yaml")
    assert error(tmp_path, CASE).startswith("cases/defaults.yaml:2: parse.pattern '(' is not a valid regular expression")


@pytest.mark.parametrize(
    "metrics,expected",
    [
        ("f1: {averge: macro}",
         "metrics.f1: unknown parameter 'averge'; valid: average, pos_label; did you mean 'average'?"),
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


def test_errors_are_evalsuite_errors_with_path_and_line(tmp_path: Path) -> None:
    with pytest.raises(EvalsuiteError) as info:
        load(tmp_path, "cases: [1, 2]\n")
    assert isinstance(info.value, loader.CaseFileError)
    assert (info.value.path, info.value.line) == (tmp_path / "cases" / "x.yaml", 1)
    assert str(info.value) == "cases/x.yaml:1: cases[0]: input should be a valid dictionary (got 1)"


def test_defaults_yaml_is_not_a_suite(tmp_path: Path) -> None:
    path = write(tmp_path, "model: {name: m}\n", "cases/defaults.yaml")
    with pytest.raises(loader.CaseFileError, match="defaults.yaml holds shared defaults"):
        loader.load_suite(path, tmp_path)
