"""The hookspecs end to end: a conftest.py implements every evalsuite hook, as an MLflow logger would."""

from __future__ import annotations

import json

import pytest

from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, SENTIMENT_ITEMS, make_project, report_json, run

CONFTEST = '''
import json, os

def _log(config, event, **data):
    worker = getattr(config, "workerinput", {}).get("workerid")
    with open(os.path.join(str(config.rootpath), "hooks.jsonl"), "a") as f:
        f.write(json.dumps({"event": event, "worker": worker, **data}) + "\\n")

def pytest_evalsuite_configure(config, settings):
    settings.alpha = 0.01  # a live RunSettings: the change reaches every item and the report
    _log(config, "configure", record_mode=settings.record_mode)

def pytest_evalsuite_cassette(config, item, cassette):
    def mark(response):
        response["headers"]["x-recorded-by"] = ["conftest"]
        return response
    cassette.before_record_response.append(mark)
    _log(config, "cassette", nodeid=item.nodeid)

def pytest_evalsuite_item_result(config, item, result):
    _log(config, "item", nodeid=item.nodeid, item_id=result.item_id, accuracy=result.metrics[0].value)

def pytest_evalsuite_session_result(config, items):
    for result in items:
        result.meta["logged"] = "yes"  # copies rebuilt from to_dict, but the reports are written from them
    _log(config, "session", item_ids=[r.item_id for r in items])
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    make_project(pytester)
    (pytester.path / "conftest.py").write_text(CONFTEST)
    return pytester


def events(project: pytest.Pytester) -> list[dict]:
    lines = (project.path / "hooks.jsonl").read_text().splitlines()
    (project.path / "hooks.jsonl").unlink()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_conftest_sees_every_hook_with_live_objects(project: pytest.Pytester, workers: list[str]) -> None:
    with ChatServer(sentiment_responder) as server:
        result = run(project, "cases", "--record-mode=once", *workers,
                     env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert result.returncode == 0, result.stdout + result.stderr
    seen = events(project)
    by_event: dict[str, list[dict]] = {}
    for event in seen:
        by_event.setdefault(event["event"], []).append(event)

    # configure: once per process (the controller, and each xdist worker)
    assert len(by_event["configure"]) == (3 if workers else 1)
    # cassette and item result: once per item, in the process that ran it
    assert {e["nodeid"].split("::")[-1] for e in by_event["cassette"]} == SENTIMENT_ITEMS
    assert {e["item_id"] for e in by_event["item"]} == SENTIMENT_ITEMS
    assert all((e["worker"] is not None) == bool(workers) for e in by_event["item"])
    # session result: once, on the controller, with every item, xdist included
    [session] = by_event["session"]
    assert session["worker"] is None and sorted(session["item_ids"]) == sorted(SENTIMENT_ITEMS)

    report = report_json(project)
    assert report["run"]["alpha"] == 0.01
    assert all(item["meta"]["logged"] == "yes" for item in report["items"])
    recorded = [json.loads(p.read_text()) for p in (project.path / "cassettes" / "reviews").glob("*.json")]
    assert len(recorded) == 4
    assert all(i["response"]["headers"]["x-recorded-by"] == ["conftest"] for c in recorded for i in c["interactions"])


REDIRECT = '''
from pathlib import Path

def pytest_evalsuite_configure(config, settings):
    settings.report_dir = Path("out") / "evals"
    settings.baseline_path = Path("baselines") / "moved.json"
'''


def test_the_configure_hook_moves_the_reports_and_the_baseline(pytester: pytest.Pytester) -> None:
    project = make_project(pytester)
    (project.path / "conftest.py").write_text(REDIRECT)
    (project.path / "baselines").mkdir()
    with ChatServer(sentiment_responder) as server:
        result = run(project, "cases", "--record-mode=once", "--eval-report", "given", "--eval-baseline", "given.json",
                     "--eval-update-baseline", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (project.path / "given").exists() and not (project.path / "given.json").exists()
    written = json.loads((project.path / "out" / "evals" / "report.json").read_text())
    assert written["run"]["baseline"] == "baselines/moved.json"
    assert "baseline written: baselines/moved.json (4 items)" in result.stdout
    assert set(json.loads((project.path / "baselines" / "moved.json").read_text())["items"]) == {
        f"reviews::{item}" for item in SENTIMENT_ITEMS}


def test_a_cassette_hook_that_raises_fails_only_the_item_it_raised_for(pytester: pytest.Pytester) -> None:
    """The scheduler asks the hook for every item ahead of the first test: an error there belongs to its item."""
    project = make_project(pytester)
    (project.path / "conftest.py").write_text(
        "def pytest_evalsuite_cassette(config, item, cassette):\n"
        "    if item.name == 'sentiment[terse-t0]':\n"
        "        raise RuntimeError('no cassette options for ' + item.name)\n")
    with ChatServer(sentiment_responder) as server:
        result = run(project, "cases", "--record-mode=once", "-p", "no:randomly",  # the file's order: terse-t0 is third
                     env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert "INTERNALERROR" not in result.stdout + result.stderr
    assert "no cassette options for sentiment[terse-t0]" in result.stdout
    outcomes = {item["item_id"]: item["outcome"] for item in report_json(project)["items"]}
    assert outcomes.pop("sentiment[terse-t0]") in ("failed", "error")
    assert set(outcomes.values()) == {"passed"} and len(outcomes) == 3
