"""``python -m evalsuite judge-check LABELS``: the judge's agreement with human labels, and the gate on it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from evalsuite import cli, runner
from evalsuite.judge_check import kappas
from evalsuite.cases import load_suite
from evalsuite.report import write_reports
from tests._support.chat_server import ChatServer
from tests._support.metric_calls import JUDGE_MODEL, judge_project, judge_responder, verdict_alternatives

HUMAN = [1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 3, 4, 5, 2, 3, 4, 1, 5, 4, 3]
JUDGE = [1, 2, 3, 5, 5, 4, 4, 3, 1, 1, 3, 4, 5, 2, 2, 4, 2, 5, 4, 4]


def labels(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["judge-check", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def kappa_line(out: str) -> tuple[float, float, float]:
    match = re.search(r"Cohen's kappa  (-?[\d.]+), 95% CI \[(-?[\d.]+), (-?[\d.]+)\]", out)
    assert match, out
    return float(match[1]), float(match[2]), float(match[3])


def test_kappa_is_scikit_learns_with_quadratic_weights_on_a_scale_and_a_bootstrap_interval(tmp_path: Path, capsys) -> None:
    path = labels(tmp_path / "labels.jsonl", [{"label": h, "judge": j} for h, j in zip(HUMAN, JUDGE)])
    code, out, _ = check(capsys, path)
    assert code == 0
    kappa, low, high = kappa_line(out)
    assert kappa == pytest.approx(cohen_kappa_score(HUMAN, JUDGE, weights="quadratic"), abs=5e-4)
    assert low < kappa < high <= 1
    assert "agreement      0.700 (14 of 20 equal)" in out and "(quadratic weights; bootstrap, 2000 resamples, seed 0)" in out
    assert "only 20 labels: too few to trust the interval" in out
    rows = out.split("confusion (rows: human, columns: judge)\n")[1].splitlines()
    assert rows[0].split() == ["1", "2", "3", "4", "5"]
    assert [int(v) for v in rows[4].split()[1:]] == [0, 0, 0, 4, 1]  # human 4: the judge said 4 four times, 5 once
    assert check(capsys, path)[1] == out  # seeded: the same interval every time

    unweighted = kappa_line(check(capsys, path, "--weights", "none")[1])[0]
    assert unweighted == pytest.approx(cohen_kappa_score(HUMAN, JUDGE), abs=5e-4) and unweighted < kappa


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_the_bootstrap_kappas_are_scikit_learns(weights: str | None) -> None:
    """The resamples' kappas are computed at once from their confusion matrices: each equals cohen_kappa_score."""
    rng = np.random.default_rng(7)
    pairs = [(rng.integers(0, 4, 30), rng.integers(0, 4, 30)) for _ in range(50)]
    stack = np.array([confusion_matrix(h, j, labels=range(4)) for h, j in pairs])
    expected = [cohen_kappa_score(h, j, labels=range(4), weights=weights) for h, j in pairs]
    assert kappas(stack, weights) == pytest.approx(expected, abs=1e-12)


def test_min_kappa_gates_on_the_lower_bound(tmp_path: Path, capsys) -> None:
    path = labels(tmp_path / "labels.jsonl", [{"label": h, "judge": j} for h, j in zip(HUMAN, JUDGE)])
    _, low, _ = kappa_line(check(capsys, path)[1])
    code, out, _ = check(capsys, path, "--min-kappa", round(low - 0.01, 2))
    assert code == 0 and out.rstrip().endswith("pass")
    code, out, _ = check(capsys, path, "--min-kappa", round(low + 0.01, 2))
    assert code == 1
    assert f"gate: kappa's lower bound {low:.3f} < --min-kappa {round(low + 0.01, 2):g}: FAIL" in out


def test_pass_fail_labels_in_any_spelling_are_unweighted(tmp_path: Path, capsys) -> None:
    human = ["pass", "PASS", "fail", "yes", "no", "true", "false", "pass", "fail", "fail"]
    judge = [1, 1, 0, 1, 1, 1, 0, 0, 0, 0]
    path = tmp_path / "labels.csv"
    path.write_text("label,judge\n" + "\n".join(f"{h},{j}" for h, j in zip(human, judge)) + "\n")
    code, out, _ = check(capsys, path)
    as_numbers = [1, 1, 0, 1, 0, 1, 0, 1, 0, 0]
    assert code == 0 and kappa_line(out)[0] == pytest.approx(cohen_kappa_score(as_numbers, judge), abs=5e-4)
    assert "(unweighted;" in out


def test_the_judges_verdicts_are_read_from_a_report(tmp_path: Path, monkeypatch, capsys) -> None:
    """A real run's report: with logprob weighting the values are expectations, so the parsed verdicts are used."""
    judge = f"{{model: {{name: {JUDGE_MODEL}, temperature: 0, logprobs: true, top_logprobs: 5}}, scale: [1, 5]}}"
    judge_project(tmp_path, judge)
    [case_run] = load_suite(tmp_path / "cases" / "graded.yaml", tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    with ChatServer(judge_responder, alternatives=verdict_alternatives) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = runner.run_item(case_run, runner.RunSettings(rootdir=tmp_path, record_mode="once"))
    write_reports(tmp_path / "reports", [result], {})
    assert {r.example_id: r.scores["quality"] for r in result.records}["q1"] == pytest.approx(3.3 / 0.7)
    path = labels(tmp_path / "labels.jsonl", [{"example_id": "q1", "label": 5}, {"example_id": "q2", "label": 3},
                                              {"example_id": "q3", "label": 1, "item": "graded::answers"}])
    code, out, _ = check(capsys, path, "--report", tmp_path / "reports" / "report.json")
    assert code == 0
    assert out.startswith(f"judge-check: quality in {tmp_path / 'reports' / 'report.json'} against {path} (3 labelled")
    # the whole 1..5 scale counts, the unused 4 included: weights are steps on the scale
    scale = [1, 2, 3, 4, 5]
    kappa = cohen_kappa_score([5, 3, 1], [5, 2, 1], weights="quadratic", labels=scale)
    assert kappa_line(out)[0] == pytest.approx(kappa, abs=5e-4)
    assert "agreement      0.667 (2 of 3 equal)" in out


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read the labels"),
    ('{"label": 1, "judge": 1}\n{"label": 1, "judge": 1}\n', "kappa is undefined with a single category"),
    ('{"label": 1, "judge": 2}\n{"judge": 1}\n', "row 2: needs 'label'"),
    ('{"label": 1, "judge": 2}\nnot json\n', "labels.jsonl:2: not JSON"),
    ('{"label": 1, "example_id": "q1"}\n', "cannot read the report"),
])
def test_unusable_input_exits_2_with_one_line(tmp_path: Path, capsys, content: str | None, message: str) -> None:
    path = tmp_path / "labels.jsonl"
    if content is not None:
        path.write_text(content)
    code, out, err = check(capsys, path, "--report", tmp_path / "missing.json")
    assert code == 2 and out == "" and err.startswith("evalsuite judge-check: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_help_lists_judge_check_with_its_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["judge-check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1 kappa's lower bound is under --min-kappa" in text and "2 unusable input" in text
