"""pytest collection of hostile or broken case files: one clear collection error per file, naming its line,
never a traceback or an INTERNALERROR, while the other case files still collect."""

from __future__ import annotations

import pytest

from tests._support.project import run
from tests.cases.test_source import LAUGHS, MERGE_BOMB

GOOD = """\
cases:
  - id: good
    model: {name: m, temperature: 0}
    repeats: 3
    dataset: {path: data/rows.jsonl}
    prompt: {user: "Q: {{ question }}"}
    parse: {kind: label, labels: {wet: [wet], dry: [dry]}}
    metrics: [accuracy]
"""


def test_broken_case_files_are_collection_errors_at_their_line_and_the_rest_collects(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    cases = pytester.path / "cases"
    (cases / "data").mkdir(parents=True)
    (cases / "data" / "rows.jsonl").write_text('{"question": "Is water wet?", "expected": "wet"}\n')
    (cases / "good.yaml").write_text(GOOD.replace("    repeats: 3\n", ""))
    (cases / "repeats.yaml").write_text(GOOD)  # a warning, made an error below
    (cases / "latin1.yaml").write_bytes(b"cases:\n  - id: caf\xe9\n")
    (cases / "nul.yaml").write_bytes(b"cases:\n  - id: a\x00\n")
    (cases / "deep.yaml").write_bytes(b"cases: " + b"[" * 3000 + b"]" * 3000 + b"\n")
    (cases / "laughs.yaml").write_bytes(LAUGHS)
    (cases / "merge.yaml").write_bytes(MERGE_BOMB)
    (cases / "typo.yaml").write_text((cases / "good.yaml").read_text().replace("{{ question }}", "{{ questoin }}"))
    (cases / "nodata.yaml").write_text((cases / "good.yaml").read_text().replace("rows.jsonl", "missing.jsonl"))

    result = run(pytester, "cases", "--collect-only", "-q", "-W", "error::evalsuite.errors.CaseFileWarning")

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    for located in ["cases/latin1.yaml:2: not valid UTF-8", "cases/nul.yaml:2: character U+0000 is not allowed",
                    "cases/deep.yaml:1: values nest more than 64 levels", "cases/laughs.yaml:6: YAML aliases expand",
                    "cases/merge.yaml:14: YAML aliases expand", "cases/typo.yaml:5: prompt.user (example '0'): "
                    "undefined variable 'questoin'", "cases/nodata.yaml:4: dataset.path 'data/missing.jsonl': no such"]:
        assert located in result.stdout, located
    assert "Traceback" not in output and "INTERNALERROR" not in output
    assert "cases/good.yaml::good" in result.stdout and "1 test collected, 8 errors" in result.stdout
    assert "cases/repeats.yaml:4: repeats: 3 samples at temperature 0 (good)" in result.stdout


def test_collecting_a_case_file_imports_neither_the_sdk_nor_vcrpy_nor_scipy(tmp_path) -> None:
    """What a case file's items are needs the case, its dataset's first rows and its templates: the SDK, vcrpy and
    the statistics wait for an item to run (they were a second of every ``pytest --collect-only``)."""
    import subprocess
    import sys

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "good.yaml").write_text(GOOD.replace("data/rows.jsonl", "rows.jsonl"))
    (tmp_path / "cases" / "rows.jsonl").write_text('{"question": "Is water wet?", "expected": "wet"}\n')
    code = ("import sys; from pathlib import Path; import evalsuite._pytest_items as items; "
            f"root = Path({str(tmp_path)!r}); runs = items.load_suite(root / 'cases' / 'good.yaml', root); "
            "print(len(runs), sorted(m for m in ('openai', 'vcr', 'scipy', 'datasets', 'evalsuite.runner') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1 []"
