"""Layers: pyproject.toml, defaults.yaml, the file's defaults and the case merge in order; errors point into the
layer that set the key; credentials are rejected in every layer."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests._support.case_files import CASE, error, load, write


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
            dataset: {examples: [{text: t, expected: positive}]}
            prompt: {user: "{{ text }}"}
            metrics: [accuracy]
          - id: b
            tags: [own]
            model: {temperature: 0.9}
            parse: {labels: {negative: [neg]}}
            dataset: {examples: [{text: t, expected: negative}]}
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
    assert message == "cases/defaults.yaml:3: model.api: 'chatt' is not allowed; did you mean 'chat'? choices: chat, completions, responses"


@pytest.mark.parametrize("key", ["api_key", "token", "password", "key"])
def test_credentials_in_yaml_are_rejected(tmp_path: Path, key: str) -> None:
    message = error(tmp_path, CASE.replace("{name: m,", f"{{name: m, {key}: sk-123,"))
    assert message.startswith(f"cases/x.yaml:4: cases[0].model.{key}: credentials must not be written in case files")
    assert "OPENAI_API_KEY" in message and "AZURE_OPENAI_API_KEY" in message


def test_credentials_in_pyproject_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.evalsuite]\napi_key = "sk-1"\n')
    assert error(tmp_path, CASE).startswith("pyproject.toml:2: api_key: credentials must not be written")


def test_data_columns_named_like_secrets_are_allowed(tmp_path: Path) -> None:
    data = CASE.replace("{text: good, expected: positive}", "{key: C, token: x, expected: positive}")
    [run] = load(tmp_path, data.replace("{{ text }}", "{{ key }}"))
    assert run.case.dataset.examples == [{"key": "C", "token": "x", "expected": "positive"}]


def test_a_parse_error_from_defaults_yaml_points_into_defaults_yaml(tmp_path: Path) -> None:
    write(tmp_path, "model: {name: m}\nparse:\n  kind: regex\n  pattern: '('\n", "cases/defaults.yaml")
    assert error(tmp_path, CASE).startswith("cases/defaults.yaml:2: parse.pattern '(' is not a valid regular expression")


def test_a_case_naming_its_parser_replaces_the_parser_its_defaults_name(tmp_path: Path) -> None:
    write(tmp_path, "def first_word(text):\n    return text.split()[0]\n", "cases/local.py")
    write(tmp_path, "parse: {kind: label, labels: {positive: [pos]}}\n", "cases/defaults.yaml")
    [run] = load(tmp_path, CASE.replace("    metrics:", "    parse: {python: local.py:first_word}\n    metrics:"))
    assert run.case.parse.python is not None and run.case.parse.python.endswith("local.py:first_word")
    assert run.case.parse.labels == {"positive": ["pos"]}  # the other parse settings still merge

    write(tmp_path, "parse: {python: local.py:first_word}\n", "cases/defaults.yaml")
    [run] = load(tmp_path, CASE.replace("    metrics:", "    parse: {kind: regex, pattern: '(\\w+)'}\n    metrics:"))
    assert (run.case.parse.kind, run.case.parse.python) == ("regex", None)
