"""evalsuite beside pytest-recording, the most used vcrpy plugin: both load, in either order, and share --record-mode."""

from __future__ import annotations

import pytest
import pytest_recording  # noqa: F401  # the test extra installs it: these tests must not skip silently

from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, make_project, report_json, run

VCR_TEST = '''
import json
import os
import urllib.request

import pytest


@pytest.mark.vcr
def test_pytest_recording_records_and_replays(vcr, record_mode):
    assert record_mode == vcr.record_mode == os.environ["EXPECTED_RECORD_MODE"]
    request = urllib.request.Request(
        os.environ["CHAT_URL"] + "/chat/completions", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"model": "m", "messages": [{"role": "user", "content": "A great film"}]}).encode())
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["choices"][0]["message"]["content"] == "Positive"
'''

# -p loads plugins in the order given, before the entry points; the last one relies on entry-point order alone.
ORDERS = {
    "recording-first": ["-p", "recording", "-p", "evalsuite"],
    "evalsuite-first": ["-p", "evalsuite", "-p", "recording"],
    "entry-points": [],
}


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_both_plugins_record_and_replay_in_one_run_whatever_the_load_order(
        pytester: pytest.Pytester, order: list[str]) -> None:
    project = make_project(pytester)
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_vcr.py").write_text(VCR_TEST)
    only = ["cases", "tests", "-k", "plain and t0 and not t0.7 or test_pytest_recording"]
    with ChatServer(sentiment_responder) as server:
        recorded = run(project, *order, *only, "--record-mode=once",
                       env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY,
                            "CHAT_URL": server.base_url, "EXPECTED_RECORD_MODE": "once"})
        assert recorded.returncode == 0, recorded.stdout + recorded.stderr
        sent, url = len(server.requests), server.base_url
    assert sent == 8 + 1  # one evalsuite item (8 reviews) and the pytest-recording test
    assert "2 passed" in recorded.stdout
    assert report_json(project)["run"]["record_mode"] == "once"
    assert (project.path / "tests" / "cassettes" / "test_vcr" / "test_pytest_recording_records_and_replays.yaml").exists()

    # The server is gone (the recorded URL matches no live one): both replay from their cassettes, told so by the one --record-mode=none.
    replayed = run(project, *order, *only, "--record-mode=none",
                   env={"CHAT_URL": url, "EXPECTED_RECORD_MODE": "none"})
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "2 passed" in replayed.stdout
    assert report_json(project)["run"]["record_mode"] == "none"


def test_with_pytest_recording_disabled_evalsuite_still_defines_record_mode(pytester: pytest.Pytester) -> None:
    project = make_project(pytester)
    result = run(project, "-p", "no:recording", "cases", "--record-mode=none", "--collect-only", "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("sentiment[") == 4
    assert run(project, "-p", "no:recording", "--help").stdout.count("--record-mode") == 1


def test_loaded_from_a_conftest_with_autoload_off_evalsuite_defines_record_mode(pytester: pytest.Pytester) -> None:
    """pytest-recording is installed but never loaded here, so nobody else will define --record-mode."""
    project = make_project(pytester)
    (project.path / "conftest.py").write_text('pytest_plugins = ["evalsuite.plugin"]\n')
    result = run(project, "cases", "--record-mode=none", "--collect-only", "-q",
                 env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("sentiment[") == 4
