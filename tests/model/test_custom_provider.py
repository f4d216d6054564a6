"""A provider from a user's conftest.py or an installed package's entry point records through pytest, replays offline,
tells how to record a missing call, and is checked at load."""

from __future__ import annotations

import pytest

from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.dist_info import install_package
from tests._support.project import CANARY, SENTIMENT_ITEMS, make_project, report_json, run, scores, write_case

MINE = '''
class Mine(Provider):
    """An OpenAI-compatible server found through variables of its own."""

    def options(self, model, *, replay):
        key = os.environ.get("MINE_KEY")
        if not key and not replay:
            raise MissingCredentials("MINE_KEY is not set: export MINE_KEY to call the model live")
        return {"base_url": os.environ.get("MINE_URL"), "api_key": key}

    def record_hint(self, model):
        return f"export MINE_URL and MINE_KEY (the server of {model.name})"
'''
IMPORTS = "import os\n\nimport evalsuite\nfrom evalsuite.errors import MissingCredentials\nfrom evalsuite.model import Provider\n\n"
CONFTEST = IMPORTS + "\n@evalsuite.provider(\"mine\")" + MINE
PLAIN_CLASS = IMPORTS + MINE  # the entry point names the class: no decorator needed

NEW_TEST = '''
import pytest


@pytest.mark.evalsuite_model(provider="mine", name="test-model")
def test_not_recorded_yet(evalsuite_client):
    evalsuite_client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "new"}])
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    make_project(pytester)
    pytester.makeconftest(CONFTEST)
    write_case(pytester, provider=", provider: mine")
    return pytester


def record_then_replay(project: pytest.Pytester, env: dict[str, str] | None = None) -> None:
    """Record the 4 sentiment items through provider ``mine``, replay them offline, and need MINE_KEY live."""
    env = env or {}
    with ChatServer(sentiment_responder) as server:
        live = run(project, "cases", "--record-mode=once", env={**env, "MINE_URL": server.base_url, "MINE_KEY": CANARY})
        sent = [{k.lower(): v for k, v in h.items()} for h in server.headers]
    assert live.returncode == 0, live.stdout + live.stderr
    assert sent and all(h["authorization"] == f"Bearer {CANARY}" for h in sent)
    recorded = report_json(project)
    assert {i["item_id"] for i in recorded["items"]} == SENTIMENT_ITEMS
    assert {i["model"]["provider"] for i in recorded["items"]} == {"mine"}
    cassettes = list((project.path / "cassettes").rglob("*.json"))
    assert len(cassettes) == 4 and not any(CANARY in c.read_text() for c in cassettes)

    replay = run(project, "cases", "--record-mode=none", env=env)  # server stopped, neither MINE_URL nor MINE_KEY
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert scores(report_json(project)) == scores(recorded)

    missing_key = run(project, "cases", "--record-mode=all", env={**env, "MINE_URL": "http://127.0.0.1:9/v1"})
    assert missing_key.returncode != 0 and "MINE_KEY is not set: export MINE_KEY" in missing_key.stdout


def test_a_conftest_provider_records_live_then_replays_offline(project: pytest.Pytester) -> None:
    record_then_replay(project)


@pytest.mark.parametrize("form", ["class", "module"])
def test_an_entry_point_provider_records_live_then_replays_offline(pytester: pytest.Pytester, form: str) -> None:
    make_project(pytester)
    write_case(pytester, provider=", provider: mine")
    if form == "class":  # the entry point names a Provider subclass
        env = install_package(pytester.path / "site", "mine-provider", {"evalsuite.providers": {"mine": "mine_provider:Mine"}},
                              {"mine_provider": PLAIN_CLASS})
    else:  # the entry point names a module whose import registers the provider
        env = install_package(pytester.path / "site", "mine-provider", {"evalsuite.providers": {"mine": "mine_provider"}},
                              {"mine_provider": CONFTEST})
    record_then_replay(pytester, env)


def test_a_missing_recording_says_what_the_provider_needs(project: pytest.Pytester) -> None:
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_new.py").write_text(NEW_TEST)
    result = run(project, "cases/reviews.yaml::sentiment[plain-t0]", "tests/test_new.py")
    assert result.returncode == 1, result.stdout + result.stderr
    hint = "To record them, export MINE_URL and MINE_KEY (the server of test-model) and run:"
    assert ("sentiment[plain-t0]: 8 call(s) not recorded in cassettes/reviews/sentiment[plain-t0].json "
            "(record mode 'none'; no request was sent)") in result.stdout, result.stdout
    assert result.stdout.count(hint) == 2
    assert "tests/test_new.py::test_not_recorded_yet: a call not recorded in" in result.stdout
    assert "OPENAI_API_KEY" not in result.stdout and "Traceback" not in result.stdout


def test_a_misspelt_provider_fails_at_collection_with_a_did_you_mean(project: pytest.Pytester) -> None:
    write_case(project, provider=", provider: mnie")
    result = run(project, "cases")
    assert result.returncode != 0
    assert ("cases/reviews.yaml:6: model.provider: unknown provider 'mnie'; did you mean 'mine'? "
            "valid: azure_openai, databricks, mine, openai") in result.stdout
    assert "Traceback" not in result.stdout

    override = run(project, "cases", "--eval-model", "mnie:local-model")
    assert override.returncode != 0
    assert "--eval-model mnie:local-model: unknown provider 'mnie'" in override.stderr + override.stdout
