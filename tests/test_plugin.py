"""The plugin end to end: case files become items that call a real 127.0.0.1 server through the openai SDK,
record cassettes, replay them offline, report, and gate on thresholds and on a baseline."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, REVIEWS, SENTIMENT_ITEMS, make_project, report_json, run, scores, write_case


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_project(pytester)


def test_record_then_replay_offline_gives_the_same_scores(project: pytest.Pytester) -> None:
    with ChatServer(sentiment_responder) as server:
        live = run(project, "cases", "--record-mode=once", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
        assert live.returncode == 0, live.stdout + live.stderr
        sent = len(server.requests)
    assert sent == 4 * len(REVIEWS)  # 2 prompt variants x 2 temperatures
    live_scores = scores(report_json(project))
    assert set(live_scores) == SENTIMENT_ITEMS
    assert live_scores["sentiment[plain-t0]"]["accuracy"] == 1.0
    assert "evalsuite score report" in live.stdout

    cassettes = sorted((project.path / "cassettes" / "reviews").glob("*.json"))
    assert [c.name for c in cassettes] == [f"{i}.json" for i in sorted(live_scores)]
    for cassette in project.path.joinpath("cassettes").rglob("*"):
        if cassette.is_file():
            assert CANARY not in cassette.read_text(), cassette

    # Server stopped, no key, no base URL: replay only.
    replay = run(project, "cases")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    replayed = report_json(project)
    assert scores(replayed) == live_scores
    for out in (project.path / "reports").iterdir():
        assert CANARY not in out.read_text(errors="replace")

    # new_episodes replays through the SDK and vcrpy's transport (mode none reads the index directly):
    # both paths give the same per-example records. A dead endpoint proves nothing went live.
    through_sdk = run(project, "cases", "--record-mode=new_episodes",
                      env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-unused-dummy"})
    assert through_sdk.returncode == 0, through_sdk.stdout + through_sdk.stderr
    assert [i["records"] for i in report_json(project)["items"]] == [i["records"] for i in replayed["items"]]


def test_k_markers_and_strict_markers_select_items(project: pytest.Pytester) -> None:
    result = run(project, "cases", "--collect-only", "-q", "-k", "terse and t0.7", "--strict-markers")
    assert "cases/reviews.yaml::sentiment[terse-t0.7]" in result.stdout
    assert "plain" not in result.stdout
    result = run(project, "cases", "--collect-only", "-q", "-m", "smoke", "--strict-markers")
    assert result.stdout.count("sentiment[") == 4, result.stdout


def test_missing_recording_fails_with_the_command_to_record_and_sends_nothing(project: pytest.Pytester) -> None:
    with ChatServer(sentiment_responder) as server:
        result = run(project, "cases", "-k", "plain and t0 and not t0.7", env={"OPENAI_BASE_URL": server.base_url})
        assert server.requests == []
    assert result.returncode == 1
    assert "not recorded" in result.stdout
    assert "--record-mode=new_episodes" in result.stdout
    assert "Traceback" not in result.stdout


def test_malformed_case_file_gives_one_clear_error(project: pytest.Pytester) -> None:
    (project.path / "cases" / "broken.yaml").write_text(
        "cases:\n  - id: broken\n    dataset: {examples: [{text: a, expected: b}]}\n"
        "    prompt: {user: '{{ text }}'}\n    metrics: {acuracy: {min: 0.5}}\n"
    )
    result = run(project, "cases", "--collect-only")
    assert result.returncode != 0
    assert "cases/broken.yaml:5" in result.stdout
    assert "acuracy" in result.stdout and "accuracy" in result.stdout
    assert "Traceback" not in result.stdout


def test_a_bug_in_user_code_at_collection_shows_its_traceback_not_an_internal_error(project: pytest.Pytester) -> None:
    (project.path / "conftest.py").write_text(
        "import evalsuite\n"
        "def broken_check(spec):\n    raise RuntimeError('bug in my check')\n"
        "@evalsuite.parser('mine', check=broken_check)\n"
        "def mine(text):\n    return text\n"
    )
    (project.path / "cases" / "mine.yaml").write_text(
        "cases:\n  - id: mine\n    dataset: {examples: [{text: a, expected: a}]}\n"
        "    prompt: {user: '{{ text }}'}\n    parse: {kind: mine}\n    metrics: {exact_match: {}}\n"
    )
    result = run(project, "cases/mine.yaml", "--collect-only")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "RuntimeError: bug in my check" in result.stdout
    assert "INTERNALERROR" not in result.stdout + result.stderr


def test_a_bad_option_value_is_a_usage_error_naming_the_fix(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\neval_record_mode = replay\n")
    result = run(project, "cases")
    assert result.returncode == 4
    assert "eval_record_mode) is not valid: choose one of none, once, new_episodes, all, rewrite" in result.stderr
    assert "Traceback" not in result.stderr


def test_threshold_failure_names_metric_value_threshold_and_worst_examples(project: pytest.Pytester) -> None:
    write_case(project, min_accuracy=1.01)
    with ChatServer(sentiment_responder) as server:
        result = run(project, "cases", "-k", "plain and t0 and not t0.7", "--record-mode=once",
                     env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert result.returncode == 1
    assert "accuracy" in result.stdout and "1.01" in result.stdout


def test_baseline_gate_detects_a_regression(project: pytest.Pytester) -> None:
    env_live = {"OPENAI_API_KEY": CANARY}
    with ChatServer(sentiment_responder) as server:
        env_live["OPENAI_BASE_URL"] = server.base_url
        first = run(project, "cases", "-k", "plain and t0 and not t0.7", "--record-mode=once",
                    "--eval-baseline", "baseline.json", "--eval-update-baseline", env=env_live)
    assert first.returncode == 0, first.stdout
    assert (project.path / "baseline.json").exists()
    # The model changes: it now calls everything positive. 4 of 8 examples flip to wrong.
    with ChatServer(lambda body: "positive") as server:
        env_live["OPENAI_BASE_URL"] = server.base_url
        write_case(project, min_accuracy=0.0, min_f1=0.0)
        second = run(project, "cases", "-k", "plain and t0 and not t0.7", "--record-mode=rewrite",
                     "--eval-baseline", "baseline.json", env=env_live)
    assert "accuracy" in second.stdout
    item = report_json(project)["items"][0]
    accuracy = next(m for m in item["metrics"] if m["name"] == "accuracy")
    assert accuracy["baseline"] == 1.0 and accuracy["value"] == 0.5
    assert accuracy["n_paired"] == len(REVIEWS)
    # 4 of 8 examples got worse and none better: McNemar's exact one-sided p = 0.5**4 = 0.0625.
    # Not significant at alpha 0.05 with only 8 examples, so the gate does not cry wolf.
    assert accuracy["p_value"] == pytest.approx(0.0625)
    assert accuracy["verdict"] == "unchanged"
    assert second.returncode == 0, second.stdout


def test_azure_provider_records_and_replays(project: pytest.Pytester) -> None:
    write_case(project, provider=", provider: azure_openai, api_version: '2024-10-21'")
    with ChatServer(sentiment_responder) as server:
        env = {"AZURE_OPENAI_ENDPOINT": server.azure_endpoint, "AZURE_OPENAI_API_KEY": CANARY}
        live = run(project, "cases", "-k", "plain and t0 and not t0.7", "--record-mode=once", env=env)
        assert live.returncode == 0, live.stdout + live.stderr
        assert server.headers and all(h.get("api-key") == CANARY for h in server.headers)
    replay = run(project, "cases", "-k", "plain and t0 and not t0.7")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert CANARY not in "".join(p.read_text() for p in project.path.joinpath("cassettes").rglob("*.json"))


def test_xdist_workers_record_and_merge_one_report(project: pytest.Pytester) -> None:
    with ChatServer(sentiment_responder) as server:
        result = run(project, "cases", "-n", "2", "--record-mode=once",
                     env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(report_json(project)["items"]) == 4
    assert len(list((project.path / "cassettes" / "reviews").glob("*.json"))) == 4
    replay = run(project, "cases", "-n", "2")
    assert replay.returncode == 0, replay.stdout


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) to drop the network")
def test_replay_works_with_networking_disabled(project: pytest.Pytester) -> None:
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -rn is not permitted here: {probe.stderr.decode().strip()}")
    with ChatServer(sentiment_responder) as server:
        live = run(project, "cases", "--record-mode=once", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert live.returncode == 0
    result = subprocess.run(["unshare", "-rn", sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "cases"],
                            cwd=project.path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_junit_xml_carries_scores(project: pytest.Pytester) -> None:
    with ChatServer(sentiment_responder) as server:
        run(project, "cases", "-k", "plain and t0 and not t0.7", "--record-mode=once", "--junitxml=junit.xml",
            env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    xml = (project.path / "junit.xml").read_text()
    assert 'name="evalsuite.accuracy" value="1.0"' in xml


def test_pytest_main_twice_in_one_process_writes_only_reports_and_cassettes(project: pytest.Pytester) -> None:
    """The Databricks notebook setting: pytest.main() from a Repo checkout, run twice in one kernel."""
    with ChatServer(sentiment_responder) as server:
        live = run(project, "cases", "--record-mode=once", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert live.returncode == 0, live.stdout
    shutil.rmtree(project.path / "reports")
    before = {p for p in project.path.rglob("*") if "__pycache__" not in p.parts}
    script = (
        "import pytest\n"
        "args = ['cases', '-p', 'no:cacheprovider', '-q', '-k', 'terse']\n"
        "codes = [int(pytest.main(args)), int(pytest.main(args))]\n"
        "print('EXIT CODES', codes)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=project.path, capture_output=True, text=True, timeout=300)
    assert "EXIT CODES [0, 0]" in result.stdout, result.stdout + result.stderr
    assert result.stdout.count("evalsuite score report") == 2
    created = {p for p in project.path.rglob("*") if "__pycache__" not in p.parts} - before
    assert created and all(p.relative_to(project.path).parts[0] == "reports" for p in created), created
