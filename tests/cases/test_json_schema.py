"""The JSON Schema YAML editors use for case files: committed, current, and as permissive as the loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from evalsuite.cases.json_schema import SCHEMA_FILE
from tests._support.case_files import CASE, load

ROOT = Path(__file__).resolve().parents[2]
CASE_FILES = sorted((ROOT / "cases").glob("*.yaml"))


def run_schema(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "evalsuite", "schema", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def problems(validator: jsonschema.Draft7Validator, data: Any) -> list[str]:
    return [error.message for error in validator.iter_errors(data)]


def test_the_committed_schema_is_what_the_command_generates(tmp_path: Path) -> None:
    printed = run_schema()
    assert printed.returncode == 0, printed.stderr
    regenerate = f"python -m evalsuite schema --output {SCHEMA_FILE.relative_to(ROOT)}"
    assert printed.stdout == SCHEMA_FILE.read_text(), f"{SCHEMA_FILE.name} is stale; regenerate it: {regenerate}"
    written = run_schema("--output", str(tmp_path / "editor" / "case-file.schema.json"))
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "editor" / "case-file.schema.json").read_text() == printed.stdout


def test_an_unwritable_output_is_one_line_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = run_schema("--output", str(tmp_path / "file" / "schema.json"))
    assert result.returncode == 2
    assert str(tmp_path / "file" / "schema.json") in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.name for p in CASE_FILES])
def test_every_committed_case_file_is_valid(validator: jsonschema.Draft7Validator, path: Path) -> None:
    assert problems(validator, yaml.safe_load(path.read_text())) == []


def test_a_misspelt_key_is_rejected_at_every_level(validator: jsonschema.Draft7Validator) -> None:
    top, case, nested, defaults = (yaml.safe_load(CASE) for _ in range(4))
    top["sute"] = "reviews"
    case["cases"][0]["metircs"] = case["cases"][0].pop("metrics")
    nested["cases"][0]["model"]["temprature"] = 0
    defaults["defaults"] = {"modle": {"name": "m"}}
    for data, typo in ((top, "sute"), (case, "metircs"), (nested, "temprature"), (defaults, "modle")):
        assert any(f"'{typo}' was unexpected" in problem for problem in problems(validator, data)), typo


def test_what_the_loader_accepts_the_schema_accepts(validator: jsonschema.Draft7Validator,
                                                    tmp_path: Path) -> None:
    """Custom registry names, metric shorthands, a string stop, and a case completed by the file's defaults."""
    text = textwrap.dedent("""\
        defaults:
          dataset: {examples: [{text: good, expected: positive}]}
          prompt: {user: "Review: {{ text }}"}
        cases:
          - id: shorthand
            model: {name: m, stop: "\\n"}
            metrics: {accuracy: 0.8, contains:, f1: {average: macro, min: 0.5}}
          - id: listed
            parse: {kind: regex, pattern: "(\\\\w+)"}
            metrics: [accuracy, exact_match]
        """)
    assert len(load(tmp_path, text)) == 2  # the loader accepts it
    assert problems(validator, yaml.safe_load(text)) == []
    custom = yaml.safe_load(CASE)
    custom["cases"][0].update(model={"provider": "my_gateway"}, parse={"kind": "yes_no"}, metrics=["my_metric"])
    assert problems(validator, custom) == []  # registered by a conftest or a package: unknown to the file


def test_editors_are_offered_the_built_in_names() -> None:
    defs = json.loads(SCHEMA_FILE.read_text())["definitions"]
    provider = defs["ModelSettings"]["properties"]["provider"]["anyOf"][0]["enum"]
    kind = defs["ParseSpec"]["properties"]["kind"]["anyOf"][0]["enum"]
    mapping, listed = defs["Case"]["properties"]["metrics"]["anyOf"]
    assert {"openai", "azure_openai"} <= set(provider) and {"label", "regex", "json", "raw"} <= set(kind)
    suggested = set(listed["items"]["anyOf"][0]["enum"])
    assert {"accuracy", "f1", "rougeL", "sacrebleu"} <= set(mapping["properties"]) == suggested
    assert defs["ModelSettings"]["properties"]["temperature"]["title"] and defs["Case"]["description"]
    assert defs["ParseSpec"]["properties"]["pattern"]["description"]
