"""A provider registered in a user's conftest.py records through pytest, replays offline, and is checked at load."""

from __future__ import annotations

import pytest

from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, SENTIMENT_ITEMS, make_project, report_json, run, scores, write_case

CONFTEST = '''
import os

import evalsuite
from evalsuite.errors import MissingCredentials
from evalsuite.model import Provider


@evalsuite.provider("mine")
class Mine(Provider):
    """An OpenAI-compatible server found through variables of its own."""

    def options(self, model, *, replay):
        key = os.environ.get("MINE_KEY")
        if not key and not replay:
            raise MissingCredentials("MINE_KEY is not set: export MINE_KEY to call the model live")
        return {"base_url": os.environ.get("MINE_URL"), "api_key": key}
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    make_project(pytester)
    pytester.makeconftest(CONFTEST)
    write_case(pytester, provider=", provider: mine")
    return pytester


def test_a_conftest_provider_records_live_then_replays_offline(project: pytest.Pytester) -> None:
    with ChatServer(sentiment_responder) as server:
        live = run(project, "cases", "--record-mode=once", env={"MINE_URL": server.base_url, "MINE_KEY": CANARY})
        sent = [{k.lower(): v for k, v in h.items()} for h in server.headers]
    assert live.returncode == 0, live.stdout + live.stderr
    assert sent and all(h["authorization"] == f"Bearer {CANARY}" for h in sent)
    recorded = report_json(project)
    assert {i["item_id"] for i in recorded["items"]} == SENTIMENT_ITEMS
    assert {i["model"]["provider"] for i in recorded["items"]} == {"mine"}
    cassettes = list((project.path / "cassettes").rglob("*.json"))
    assert len(cassettes) == 4 and not any(CANARY in c.read_text() for c in cassettes)

    replay = run(project, "cases", "--record-mode=none")  # server stopped, neither MINE_URL nor MINE_KEY
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert scores(report_json(project)) == scores(recorded)

    missing_key = run(project, "cases", "--record-mode=all", env={"MINE_URL": "http://127.0.0.1:9/v1"})
    assert missing_key.returncode != 0 and "MINE_KEY is not set: export MINE_KEY" in missing_key.stdout


def test_a_misspelt_provider_fails_at_collection_with_a_did_you_mean(project: pytest.Pytester) -> None:
    write_case(project, provider=", provider: mnie")
    result = run(project, "cases")
    assert result.returncode != 0
    assert ("cases/reviews.yaml:6: model.provider: unknown provider 'mnie'; valid: azure_openai, mine, openai; "
            "did you mean 'mine'?") in result.stdout
    assert "Traceback" not in result.stdout

    override = run(project, "cases", "--eval-model", "mnie:local-model")
    assert override.returncode != 0
    assert "--eval-model mnie:local-model: unknown provider 'mnie'" in override.stderr + override.stdout
