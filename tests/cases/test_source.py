"""Reading case files with the line of every key: YAML syntax errors, duplicate keys, undecodable text and
alias bombs at their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.cases._source import TEXT_START, read_tool_table, read_yaml
from evalsuite.errors import CaseFileError
from tests._support.case_files import CASE, error


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    message = error(tmp_path, CASE.replace("metrics: [accuracy]", "metrics: [accuracy"))
    assert message.startswith("cases/x.yaml:8: invalid YAML: while parsing a flow sequence")
    assert "check the indentation" in message


def test_duplicate_keys_are_an_error_not_a_silent_last_wins(tmp_path: Path) -> None:
    assert error(tmp_path, CASE.replace("    metrics:", "    prompt: {user: x}\n    metrics:")) == (
        "cases/x.yaml:7: cases[0].prompt: duplicate key; keep only one"
    )


def write_bytes(root: Path, data: bytes) -> Path:
    path = root / "cases" / "x.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_error(root: Path, data: bytes) -> str:
    with pytest.raises(CaseFileError) as info:
        read_yaml(write_bytes(root, data), root)
    return str(info.value)


LAUGHS = b'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + b"".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n".encode() for a, b in zip("abcdefgh", "bcdefghi")) + b"cases: [*i]\n"
MERGE_BOMB = b"x0: &x0 {k: v}\n" + b"".join(
    f"x{i}: &x{i} {{<<: [*x{i - 1}, *x{i - 1}], k{i}: v}}\n".encode() for i in range(1, 40)) + b"cases: [*x39]\n"


@pytest.mark.parametrize("data,expected", [
    (b"cases:\n  - id: caf\xe9\n", "cases/x.yaml:2: not valid UTF-8 (byte 0xe9 at offset 18); save the file as UTF-8"),
    (b"cases:\n\n  - id: a\x00b\n", "cases/x.yaml:3: character U+0000 is not allowed in YAML"),
    (b"cases: " + b"[" * 5000 + b"]" * 5000 + b"\n", "cases/x.yaml:1: values nest more than 64 levels deep"),
    (LAUGHS, "cases/x.yaml:6: YAML aliases expand to more than 100,000 values (limit reached at *e), which looks "
             "like an alias bomb"),
    (MERGE_BOMB, "cases/x.yaml:14: YAML aliases expand to more than 100,000 values"),
    (b"cases:\n  - &loop [*loop]\n", "cases/x.yaml:2: the alias *loop refers to a value that contains it"),
    (b"cases:\n  - {id: a, repeats: !!int three}\n", "cases/x.yaml:2: invalid YAML: the tag !!int does not fit the "
                                                     "value 'three'; remove the tag or fix the value"),
    (b"seed: " + b"9" * 5000 + b"\n", "cases/x.yaml:1: invalid YAML: the tag !!int does not fit the value '9999"),
], ids=["not-utf8", "nul-byte", "deep-nesting", "billion-laughs", "merge-key-bomb", "recursive-alias", "bad-tag",
        "int-too-long"])
def test_unreadable_and_hostile_yaml_is_one_error_at_its_line(tmp_path: Path, data: bytes, expected: str) -> None:
    message = read_error(tmp_path, data)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_aliases_within_the_bounds_still_share_settings(tmp_path: Path) -> None:
    text = b"model: &m {name: m, temperature: 0}\ncases:\n  - {model: *m}\n  - {model: {<<: *m, name: n}}\n"
    data, lines = read_yaml(write_bytes(tmp_path, text), tmp_path)
    assert data["cases"] == [{"model": {"name": "m", "temperature": 0}}, {"model": {"name": "n", "temperature": 0}}]
    assert lines[("cases", 1)] == 4


def test_a_block_scalar_records_where_its_text_starts(tmp_path: Path) -> None:
    _, lines = read_yaml(write_bytes(tmp_path, b"prompt:\n  user: |\n    line one\n    line two\n"), tmp_path)
    assert (lines[("prompt", "user")], lines[("prompt", "user", TEXT_START)]) == (2, 3)


@pytest.mark.parametrize("data,expected", [
    (b"[tool.evalsuite]\nx = " + b"[" * 5000 + b"]" * 5000 + b"\n",
     "pyproject.toml:1: invalid TOML: values nest too deeply"),
    (b"[tool.evalsuite]\nname = 'caf\xe9'\n", "pyproject.toml:2: not valid UTF-8 (byte 0xe9 at offset 28)"),
], ids=["deep-nesting", "not-utf8"])
def test_an_unreadable_pyproject_is_one_error_at_its_line(tmp_path: Path, data: bytes, expected: str) -> None:
    (tmp_path / "pyproject.toml").write_bytes(data)
    with pytest.raises(CaseFileError) as info:
        read_tool_table(tmp_path)
    assert str(info.value).startswith(expected), str(info.value)


SAME_EITHER_WAY = [
    CASE,
    "base: &b {name: m, temperature: 0}\ncases:\n  - id: a\n    model: {<<: *b, temperature: 0.7}\n"
    "  - id: b\n    model: *b\n",
    "cases:\n  - id: c\n    prompt:\n      user: |\n        Review: {{ text }}\n        Sentiment:\n"
    "      system: >\n        folded\n        text\n",
    "cases: [{id: 'q', x: \"d\\u00e9j\\u00e0\", y: !!str 7, z: 0o17, w: 1e3, v: ~, u: 2001-12-14, t: yes}]\n",
    "# comment only\n",
    "\ufeffcases:\n- id: bom\n",
]


@pytest.mark.parametrize("text", SAME_EITHER_WAY)
def test_libyaml_reads_a_file_as_the_pure_python_loader_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               text: str) -> None:
    """Collection reads case files with libyaml's parser (collecting 1,000 files spent 2 s in PyYAML's pure-Python
    scanner): same values, same line of every key."""
    from evalsuite.cases import _source

    path = write_bytes(tmp_path, text.encode())
    assert _source._fast_read(path.read_text(encoding="utf-8")) is not None  # the libyaml path is the one taken
    fast = read_yaml(path, tmp_path)
    monkeypatch.setattr(_source, "_CParser", None)
    assert read_yaml(path, tmp_path) == fast


def test_a_file_libyaml_cannot_read_gets_the_pure_python_message(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, b"cases:\n  - id: a\n\tbad: tab\n")
    with pytest.raises(CaseFileError, match=r"^cases/x.yaml:3: invalid YAML: while scanning for the next token found "
                                            "character '\\\\t' that cannot start any token"):
        read_yaml(path, tmp_path)
