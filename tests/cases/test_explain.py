"""Schema errors as one line: file, line, key, the problem and the fix (did-you-mean, the valid choices)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.cases import CaseFileError
from evalsuite.errors import EvalsuiteError
from tests._support.case_files import CASE, error, load


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            ("temperature: 0", "temprature: 0"),
            "cases/x.yaml:4: model.temprature: unknown key 'temprature'; did you mean 'temperature'? valid keys: api, "
            "api_version, auth, base_url, logprobs, max_tokens, name, price_per_1k_input, price_per_1k_output, provider, "
            "response_format, seed, stop, temperature, timeout, tool_choice, tools, top_logprobs, top_p",
            id="unknown-key",
        ),
        pytest.param(
            ("model: {name: m, temperature: 0}", "model: {name: m, api: chatt}"),
            "cases/x.yaml:4: model.api: 'chatt' is not allowed; did you mean 'chat'? choices: chat, completions, responses",
            id="literal",
        ),
        pytest.param(
            ("model: {name: m, temperature: 0}", "model: {name: m, provider: openia}"),
            "cases/x.yaml:4: model.provider: unknown provider 'openia'; did you mean 'openai'? valid: "
            "azure_openai, databricks, openai",
            id="registered-name",
        ),
        pytest.param(
            ("    metrics: [accuracy]\n", ""),
            "cases/x.yaml:3: metrics: required key is missing; add it",
            id="missing",
        ),
        pytest.param(
            ("{examples: [{text: good, expected: positive}]}", "{path: a.jsonl, hf: imdb}"),
            "cases/x.yaml:5: dataset: give exactly one of 'examples' (inline rows), 'path' (a local file), 'hf' "
            "(a Hub dataset id) or 'table' (a Spark table); found path, hf",
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
            ("    metrics:", "    variants: {matrix: {null: [1]}}\n    metrics:"),
            "cases/x.yaml:7: variants.matrix: unknown key None; valid keys: temperature, max_tokens, top_p, seed",
            id="matrix-null-key",
        ),
        pytest.param(
            ("    metrics:", "    tags: [smoke, _wip]\n    metrics:"),
            "cases/x.yaml:7: tags: tag '_wip' cannot be a pytest marker name (empty, or starting with '_'); rename it",
            id="tag-not-a-marker-name",
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


def test_errors_are_evalsuite_errors_with_path_and_line(tmp_path: Path) -> None:
    with pytest.raises(EvalsuiteError) as info:
        load(tmp_path, "cases: [1, 2]\n")
    assert isinstance(info.value, CaseFileError)
    assert (info.value.path, info.value.line) == (tmp_path / "cases" / "x.yaml", 1)
    assert str(info.value) == "cases/x.yaml:1: cases[0]: input should be a valid dictionary (got 1)"
