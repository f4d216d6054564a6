"""The plugin end to end: case files become items that call a real 127.0.0.1 server through the openai SDK,
record cassettes, replay them offline, report, and gate on thresholds and on a baseline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from xml.etree import ElementTree

import pytest

from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, REVIEWS, SENTIMENT_CASE, SENTIMENT_ITEMS, make_project, report_json, run, scores, write_case


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

    # A green run whose report cannot be written is not green: a CI gate reads the report.
    (project.path / "in-the-way").write_text("a file where the report folder should be")
    unwritable = run(project, "cases", "--eval-report", "in-the-way/reports")
    assert unwritable.returncode == 1, unwritable.stdout + unwritable.stderr
    assert "in-the-way/reports/report.json: cannot write the file" in unwritable.stdout
    assert "Traceback" not in unwritable.stdout + unwritable.stderr


def test_k_markers_and_strict_markers_select_items(project: pytest.Pytester) -> None:
    result = run(project, "cases", "--collect-only", "-q", "-k", "terse and t0.7", "--strict-markers")
    assert "cases/reviews.yaml::sentiment[terse-t0.7]" in result.stdout
    assert "plain" not in result.stdout
    result = run(project, "cases", "--collect-only", "-q", "-m", "smoke", "--strict-markers")
    assert result.stdout.count("sentiment[") == 4, result.stdout
    # Collecting runs nothing: no score report, and no report file replaced by an empty one.
    assert "evalsuite score report" not in result.stdout and not (project.path / "reports").exists()


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


def test_a_bad_option_value_stops_an_xdist_run_with_the_same_message(project: pytest.Pytester) -> None:
    """Options are read once items are collected, which under xdist happens in the workers."""
    project.makeini("[pytest]\neval_record_mode = replay\n")
    result = run(project, "cases", "-n", "2")
    assert result.returncode == 2  # interrupted: the workers stop the run
    assert "eval_record_mode) is not valid: choose one of none" in result.stdout
    assert "INTERNALERROR" not in result.stdout + result.stderr and "Traceback" not in result.stdout


def test_threshold_failure_names_metric_value_threshold_and_worst_examples(project: pytest.Pytester) -> None:
    write_case(project, min_accuracy=0.75)
    with ChatServer(lambda body: "positive") as server:  # right on half of the reviews
        result = run(project, "cases", "-k", "plain and t0 and not t0.7", "--record-mode=once",
                     env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert result.returncode == 1
    assert "accuracy 0.5 < min 0.75" in result.stdout


def test_baseline_gate_detects_a_regression(project: pytest.Pytester) -> None:
    env_live = {"OPENAI_API_KEY": CANARY}
    with ChatServer(sentiment_responder) as server:
        env_live["OPENAI_BASE_URL"] = server.base_url
        first = run(project, "cases", "-k", "plain and t0 and not t0.7", "--record-mode=once",
                    "--eval-baseline", "baseline.json", "--eval-update-baseline", env=env_live)
    assert first.returncode == 0, first.stdout
    baseline = json.loads((project.path / "baseline.json").read_text())
    # A case renamed or removed since: its entry stays in the baseline but no item runs it.
    baseline["items"]["reviews::sentiment[gone]"] = {**baseline["items"]["reviews::sentiment[plain-t0]"],
                                                      "item_id": "sentiment[gone]"}
    (project.path / "baseline.json").write_text(json.dumps(baseline))
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
    assert "did not run (renamed or removed?): reviews::sentiment[gone]" in second.stdout
    assert report_json(project)["run"]["coverage"]["missing"] == ["reviews::sentiment[gone]"]
    # The examples that flipped are listed with both answers.
    assert "flipped against the baseline" in second.stdout and "'positive'" in second.stdout
    strict = run(project, "cases", "-k", "plain and t0 and not t0.7", "--eval-baseline", "baseline.json",
                 "--eval-fail-on-missing")
    assert strict.returncode == 1, strict.stdout
    assert "failing the session (--eval-fail-on-missing): 1 baseline item(s) did not run: reviews::sentiment[gone]" \
        in strict.stdout.replace("\n", " ")


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


@pytest.mark.parametrize("family", ["xunit1", "legacy", "xunit2"])
def test_junit_shows_metrics_in_system_out_and_properties_only_where_the_family_allows(
        project: pytest.Pytester, family: str) -> None:
    with ChatServer(sentiment_responder) as server:
        result = run(project, "cases", "-k", "plain and t0 and not t0.7", "--record-mode=once", "--junitxml=junit.xml",
                     "-o", f"junit_family={family}", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PytestWarning" not in result.stdout
    [case] = ElementTree.parse(project.path / "junit.xml").getroot().iter("testcase")
    system_out = "".join(e.text or "" for e in case.iter("system-out"))
    assert "sentiment[plain-t0]" in system_out and "accuracy = 1," in system_out and "min 0.75: pass" in system_out
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    if family == "xunit2":  # its schema has no testcase properties (GitLab ignores them anyway)
        assert properties == {}
    else:
        assert properties["evalsuite.accuracy"] == "1.0" and properties["evalsuite.verdict"] == "pass"


def test_a_failing_item_gives_its_metric_and_value_in_one_line_everywhere_ci_looks(project: pytest.Pytester) -> None:
    env = {"OPENAI_API_KEY": CANARY, "GITHUB_ACTIONS": "true", "COLUMNS": "200"}
    reason = "sentiment[plain-t0]: accuracy 0.5 < min 0.75 (n=8)"
    with ChatServer(lambda body: "positive") as server:  # right on half of the reviews
        result = run(project, "cases", "-k", "plain and t0 and not t0.7", "--record-mode=once", "--junitxml=junit.xml",
                     env={**env, "OPENAI_BASE_URL": server.base_url})
    assert result.returncode == 1
    assert f"FAILED cases/reviews.yaml::sentiment[plain-t0] - {reason}" in result.stdout
    assert f"::error file=cases/reviews.yaml,line=4::{reason}" in result.stdout
    [failure] = ElementTree.parse(project.path / "junit.xml").getroot().iter("failure")
    assert failure.get("message", "").startswith(reason)
    verbose = run(project, "cases", "-k", "plain and t0 and not t0.7", "-vv", env=env)  # -vv prints a traceback
    assert verbose.returncode == 1 and f"::error file=cases/reviews.yaml,line=4::{reason}" in verbose.stdout
    outside_actions = run(project, "cases", "-k", "plain and t0 and not t0.7", env={**env, "GITHUB_ACTIONS": "false"})
    assert outside_actions.returncode == 1 and "::error" not in outside_actions.stdout


def test_a_stray_yaml_file_in_cases_is_ignored_silently(project: pytest.Pytester) -> None:
    (project.path / "cases" / "deployment.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: evals\ndata:\n  cases: '3'\n")
    (project.path / "cases" / "ci").mkdir()
    (project.path / "cases" / "ci" / "matrix.yml").write_text("- cases: [a, b]\n")
    result = run(project, "cases", "--collect-only", "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("cases/reviews.yaml::sentiment[") == 4
    assert "deployment" not in result.stdout and "matrix" not in result.stdout


def test_eval_cases_set_in_the_ini_collects_every_match_and_reports_its_errors(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\neval_cases = suites/*.yaml\n")
    (project.path / "suites").mkdir()
    shutil.move(project.path / "cases" / "reviews.yaml", project.path / "suites" / "reviews.yaml")
    (project.path / "suites" / "data").symlink_to(project.path / "cases" / "data")
    (project.path / "suites" / "typo.yaml").write_text("suite: typo\ncase:\n  - id: x\n")
    result = run(project, "--collect-only", "-q")
    assert result.stdout.count("suites/reviews.yaml::sentiment[") == 4, result.stdout
    assert result.returncode == 2 and "suites/typo.yaml" in result.stdout


def test_a_case_file_named_on_the_command_line_is_collected_from_any_directory(pytester: pytest.Pytester) -> None:
    """No pytest.ini anywhere: pytest's rootdir is then the common ancestor of the current directory and the file."""
    make_project(pytester)
    (pytester.path / "tox.ini").unlink()  # what make_project (pytester.makeini) wrote
    evals = pytester.path / "project" / "evals"
    evals.parent.mkdir()
    shutil.move(pytester.path / "cases", evals)
    elsewhere = pytester.path / "elsewhere"
    elsewhere.mkdir()
    case_file = evals / "reviews.yaml"
    for cwd, arg in [(elsewhere, str(case_file)), (evals, "reviews.yaml"), (evals.parent, "evals/reviews.yaml")]:
        result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", arg, "--collect-only", "-q"],
                                cwd=cwd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (cwd, result.stdout + result.stderr)
        assert result.stdout.count("reviews.yaml::sentiment[") == 4, (cwd, result.stdout)
    with ChatServer(sentiment_responder) as server:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(case_file), "-k", "plain and t0 and not t0.7",
             "--record-mode=once"], cwd=elsewhere, capture_output=True, text=True, timeout=300,
            env={**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


NO_CASES_CONFTEST = """
import json, sys

HEAVY = ("openai", "vcr", "numpy", "datasets", "pydantic", "evalsuite.runner", "evalsuite._pytest_items")

def pytest_evalsuite_configure(config, settings):
    raise AssertionError("no evalsuite item: the settings are never read")

def pytest_sessionfinish(session):
    loaded = [m for m in HEAVY if m in sys.modules]
    session.config.rootpath.joinpath("loaded.json").write_text(json.dumps(loaded))
"""


def test_a_project_without_case_files_never_imports_the_pipeline(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(NO_CASES_CONFTEST)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "service.yaml").write_text("kind: Service\nspec:\n  ports: [80]\n")
    result = run(pytester, "-p", "no:recording")  # pytest-recording is measured by itself, not here
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((pytester.path / "loaded.json").read_text()) == []


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


EXTRA_CASES = """
suite: extra
defaults:
  model: {{name: test-model, temperature: 0, max_tokens: 3}}
  dataset: {{path: data/reviews.jsonl, label_names: [negative, positive], expected: label}}
  prompt: {{system: Classify the sentiment of the review as positive or negative., user: "Review: {{{{ text }}}}"}}
  parse: {{kind: label, labels: {{positive: [positive], negative: [negative]}}}}
cases:
  - id: strict
    metrics: {{accuracy: {{max: {limit}}}}}
  - id: flaky
    metrics: {{accuracy: {{max: {limit}}}}}
  - id: steady
    metrics: {{accuracy: {{min: 0.5}}}}
  - id: broken
    prompt: {{user: "Review: {{{{ (text if id != 'r8' else none).upper() }}}}"}}  # fails on the last row only
    metrics: {{accuracy: {{min: 0.5}}}}
"""
HUB_CASE = """
suite: extra
cases:
  - id: hub
    model: {name: test-model, temperature: 0, max_tokens: 3}
    dataset: {hf: imdb, split: test, limit: 4, expected: label, label_names: [negative, positive]}
    prompt: {user: "Review: {{ text }}"}
    parse: {kind: label, labels: {positive: [positive], negative: [negative]}}
    metrics: {accuracy: {min: 0.5}}
"""
QUARANTINE = """\
- item: extra::flaky
  reason: flips between runs
  owner: alice
  expires: 2999-12-31
- item: "cases/extra.yaml::stead*"
  reason: was flaky last month
  owner: bob
  expires: 2999-12-31
- item: reviews::sentiment[terse-t0.7]
  reason: excuses a flaky verdict, never a missing recording
  owner: carol
  expires: 2999-12-31
"""


def _pytest_counts(stdout: str) -> dict[str, int]:
    """pytest's final line, ``3 failed, 1 passed, 2 skipped, ...``, as counts."""
    final = [line for line in stdout.splitlines() if line.strip() and " in " in line][-1]
    counts: dict[str, int] = {}
    for number, word in re.findall(r"(\d+) (\w+)", final.split(" in ")[0]):
        counts[word.rstrip("s") if word != "passed" else word] = int(number)
    return counts


def test_every_selected_item_is_in_every_report_with_its_outcome_and_pytests_counts(project: pytest.Pytester) -> None:
    (project.path / "cases" / "extra.yaml").write_text(EXTRA_CASES.format(limit=1.0))
    (project.path / "cases" / "hub.yaml").write_text(HUB_CASE)
    with ChatServer(sentiment_responder) as server:
        recorded = run(project, "cases", "--record-mode=once", "-k", "not broken and not hub",
                       env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    # One prompt changed without re-recording, thresholds tightened, a skip marker, a quarantine, a deselection.
    (project.path / "cassettes" / "reviews" / "sentiment[terse-t0.7].json").unlink()
    (project.path / "cases" / "extra.yaml").write_text(EXTRA_CASES.format(limit=0.5))
    (project.path / "quarantine.yaml").write_text(QUARANTINE)
    project.makeconftest("""
import pytest
def pytest_collection_modifyitems(items):
    for item in items:
        if item.name == "sentiment[plain-t0.7]":
            item.add_marker(pytest.mark.skip(reason="skipped by conftest"))
""")
    (project.path / "reports").mkdir(exist_ok=True)
    # And a case file that does not load (pytest: a collection error).
    (project.path / "cases" / "unloadable.yaml").write_text(SENTIMENT_CASE.format(min_accuracy=80, min_f1=0.5,
                                                                                   provider=""))
    result = run(project, "cases", "-rA", "--junitxml=junit.xml", "--deselect", "cases/reviews.yaml::sentiment[terse-t0]",
                 "--continue-on-collection-errors")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout
    pytest_counts = _pytest_counts(result.stdout)
    assert pytest_counts == {"failed": 3, "passed": 1, "skipped": 2, "xfailed": 1, "xpassed": 1, "error": 1,
                             "deselected": 1}

    doc = report_json(project)
    outcomes = {item["identity"]: item["outcome"] for item in doc["items"]}
    assert outcomes == {
        "reviews::sentiment[plain-t0]": "passed", "reviews::sentiment[plain-t0.7]": "skipped",
        "reviews::sentiment[terse-t0.7]": "not_recorded", "extra::strict": "failed", "extra::broken": "error",
        "extra::hub": "skipped", "extra::flaky": "xfailed", "extra::steady": "xpassed", "unloadable::unloadable.yaml": "error",
    }
    assert doc["summary"]["outcomes"] == {"passed": 1, "failed": 1, "not_recorded": 1, "error": 2, "skipped": 2,
                                          "xfailed": 1, "xpassed": 1}
    assert sum(doc["summary"]["outcomes"].values()) == sum(pytest_counts.values()) - pytest_counts["deselected"]
    assert (doc["summary"]["passed"], doc["summary"]["failed"]) == (
        pytest_counts["passed"], pytest_counts["failed"] + pytest_counts["error"])
    by_id = {item["item_id"]: item for item in doc["items"]}
    assert "has no attribute 'upper'" in by_id["broken"]["message"] and by_id["broken"]["records"] == []
    assert by_id["sentiment[plain-t0.7]"]["message"] == "skipped by conftest"
    assert "imdb" in by_id["hub"]["message"]
    assert by_id["flaky"]["quarantine"]["owner"] == "alice" and by_id["steady"]["quarantine"]["owner"] == "bob"
    assert "evalsuite: 9 items: 1 passed, 1 failed, 1 not recorded, 2 errors, 2 skipped, 1 xfailed (quarantined), " \
           "1 xpassed" in result.stdout.replace("\n  ", " ")
    assert "80 is outside 0..1" in by_id["unloadable.yaml"]["message"]

    markdown = (project.path / "reports" / "report.md").read_text()
    html = (project.path / "reports" / "report.html").read_text()
    for item_id in by_id:
        assert item_id in markdown and item_id in html
    # report.html's overview: one row per item with pytest's outcome, and the totals pytest printed
    rows = dict(re.findall(r'<td data-label="item"><a [^>]*>([^<]+)</a></td><td data-label="verdict">.*?</td>'
                           r'<td data-label="pytest">([^<]+)</td>', html))
    assert rows == {item_id: item["outcome"].replace("_", " ") for item_id, item in by_id.items()}
    assert ("<tfoot><tr><td colspan=6>9 items: 1 passed, 1 failed, 1 not recorded, 2 errors, 2 skipped, "
            "1 xfailed (quarantined), 1 xpassed ·") in html
    assert "not recorded" in markdown and "flips between runs" in markdown and "flips between runs" in html
    system_out = {case.get("name"): "".join(out.text or "" for out in case.iter("system-out"))
                  for case in ElementTree.parse(project.path / "junit.xml").getroot().iter("testcase")}
    system_out.pop("cases.unloadable.yaml")  # the collection error: pytest's own <error> says why
    assert len(system_out) == 8 and all("evalsuite " in text for text in system_out.values()), system_out
    assert "not recorded" in system_out["sentiment[terse-t0.7]"] and "skipped by conftest" in system_out["sentiment[plain-t0.7]"]


def test_a_report_is_written_even_when_every_item_fails_replacing_the_previous_one(project: pytest.Pytester) -> None:
    stale = project.path / "reports" / "report.json"
    stale.parent.mkdir()
    stale.write_text('{"stale": true}')
    result = run(project, "cases")  # nothing recorded: every item fails
    assert result.returncode == 1
    doc = report_json(project)
    assert [item["outcome"] for item in doc["items"]] == ["not_recorded"] * 4
    assert doc["summary"]["failed"] == 4
    assert "evalsuite: 4 items: 0 passed, 0 failed, 4 not recorded" in result.stdout
