"""Hand-written tests using the fixtures: record against a real 127.0.0.1 server through the openai SDK, replay offline."""

from __future__ import annotations

import json

import pytest

from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, REVIEWS, report_json, run, scores

TESTS = '''
import asyncio

import pytest

REVIEWS = %r
SYSTEM = "Classify the sentiment of the review as positive or negative."
PARSE = {"kind": "label", "labels": {"positive": ["positive"], "negative": ["negative"]}}
EXPECTED = ["positive" if label else "negative" for _, _, label in REVIEWS]


def ask(client, model, text):
    response = client.chat.completions.create(
        model=model.name, temperature=0, max_tokens=3,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Review: " + text}],
    )
    return response.choices[0].message.content


@pytest.mark.evalsuite_model(name="test-model")
def test_sentiment(evalsuite_client, evalsuite_model, evalsuite_score):
    answers = [ask(evalsuite_client, evalsuite_model, text) for _, text, _ in REVIEWS]
    result = evalsuite_score(answers, EXPECTED, ids=[i for i, _, _ in REVIEWS], inputs=[t for _, t, _ in REVIEWS],
                             metrics={"accuracy": {"min": 0.75}, "f1": {"average": "macro"}}, parse=PARSE)
    assert result.passed, result.message


def test_async_client(evalsuite_async_client):
    async def main():
        async with evalsuite_async_client as client:
            response = await client.chat.completions.create(
                model="test-model", messages=[{"role": "user", "content": "A great film"}])
        return response.choices[0].message.content

    assert asyncio.run(main()) == "Positive"


def test_a_missed_threshold_is_a_result_not_an_exception(evalsuite_score):
    result = evalsuite_score(["positive", "positive"], ["positive", "negative"], metrics={"accuracy": {"min": 0.9}},
                             parse=PARSE, name="always-positive")
    assert not result.passed and "accuracy" in result.message and "0.9" in result.message


@pytest.mark.parametrize("label", ["positive"])
def test_parametrized(evalsuite_score, label):
    assert evalsuite_score([label], [label], metrics={"accuracy": {"min": 1}}, parse=PARSE).passed
'''

NEW_TEST = '''
def test_not_recorded_yet(evalsuite_client):
    evalsuite_client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "new"}])
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\n")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_reviews.py").write_text(TESTS % (REVIEWS,))
    return pytester


def test_hand_written_tests_record_then_replay_offline(project: pytest.Pytester) -> None:
    with ChatServer(sentiment_responder) as server:
        live = run(project, "tests", "--record-mode=once", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
        assert live.returncode == 0, live.stdout + live.stderr
        assert len(server.requests) == len(REVIEWS) + 1
    folder = project.path / "cassettes" / "test_reviews"
    assert sorted(p.name for p in folder.iterdir()) == ["test_async_client.json", "test_sentiment.json"]
    assert all(CANARY not in p.read_text() for p in folder.iterdir())
    recorded = json.loads((folder / "test_sentiment.json").read_text())
    assert len(recorded["interactions"]) == len(REVIEWS)
    live_report = report_json(project)
    assert scores(live_report) == {"test_sentiment": {"accuracy": 1.0, "f1": 1.0}, "always-positive": {"accuracy": 0.5},
                                   "test_parametrized[positive]": {"accuracy": 1.0}}
    assert "evalsuite score report" in live.stdout

    # Server stopped, no key, no base URL: the same tests replay from their cassettes, and the baseline gate works.
    replay = run(project, "tests", "--eval-baseline", "baseline.json", "--eval-update-baseline")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert [i["records"] for i in report_json(project)["items"]] == [i["records"] for i in live_report["items"]]
    gated = run(project, "tests", "--eval-baseline", "baseline.json")
    assert gated.returncode == 0, gated.stdout + gated.stderr
    item = next(i for i in report_json(project)["items"] if i["item_id"] == "test_sentiment")
    accuracy = next(m for m in item["metrics"] if m["name"] == "accuracy")
    assert accuracy["baseline"] == 1.0 and accuracy["n_paired"] == len(REVIEWS) and accuracy["verdict"] == "unchanged"
    assert item["cassette"] == "cassettes/test_reviews/test_sentiment.json"


def test_a_call_without_recording_fails_with_the_command_to_record(project: pytest.Pytester) -> None:
    (project.path / "tests" / "test_new.py").write_text(NEW_TEST)
    with ChatServer(sentiment_responder) as server:
        result = run(project, "tests/test_new.py", env={"OPENAI_BASE_URL": server.base_url})
        assert server.requests == []
    assert result.returncode == 1
    assert "not recorded in cassettes/test_new/test_not_recorded_yet.json" in result.stdout
    assert "--record-mode=new_episodes" in result.stdout
    assert "Traceback" not in result.stdout



ASYNC_TESTS = '''
import asyncio

import pytest

CLIENTS = []
MESSAGES = [{"role": "user", "content": "A great film"}]


@pytest.fixture
def remember(evalsuite_async_client):
    CLIENTS.append(evalsuite_async_client)


def test_closed_by_async_with(evalsuite_async_client, remember):
    async def main():
        async with evalsuite_async_client as client:
            return await client.chat.completions.create(model="test-model", messages=MESSAGES)

    assert asyncio.run(main()).choices[0].message.content == "Positive"


def test_left_open(evalsuite_async_client, remember):
    async def main():
        return await evalsuite_async_client.chat.completions.create(model="test-model", messages=MESSAGES)

    assert asyncio.run(main()).choices[0].message.content == "Positive"


def test_every_client_was_closed_by_its_fixture():
    assert [client.is_closed() for client in CLIENTS] == [True, True]
'''
STRICT = ("-W", "error::ResourceWarning", "-W", "error::pytest.PytestUnraisableExceptionWarning")


def test_the_async_client_fixture_closes_the_client(project: pytest.Pytester) -> None:
    (project.path / "tests" / "test_async.py").write_text(ASYNC_TESTS)
    with ChatServer(sentiment_responder) as server:
        live = run(project, "tests/test_async.py", "--record-mode=once", "-k", "not every_client",
                   env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
    assert live.returncode == 0, live.stdout + live.stderr
    # live, a client left open in the test's finished loop cannot be closed: the warning names the fix
    assert "test_left_open: evalsuite_async_client outlived the event loop" in live.stdout
    assert "test_closed_by_async_with: evalsuite_async_client" not in live.stdout

    replay = run(project, "tests/test_async.py", *STRICT, env={"PYTHONDEVMODE": "1"})
    output = replay.stdout + replay.stderr
    assert replay.returncode == 0 and "3 passed" in replay.stdout, output
    assert "ResourceWarning" not in output and "Event loop is closed" not in output and "outlived" not in output


JUDGED_TEST = '''
JUDGE = {"model": {"name": "%s", "temperature": 0}, "input": "input"}


def test_judged(evalsuite_score):
    result = evalsuite_score(["the cat sat on the mat", "a dog"], ["the cat sat on the mat", "the dog ran far away"],
                             inputs=["Where did the cat sit?", "What did the dog do?"], ids=["cat", "dog"],
                             metrics={"correct": {"judge": JUDGE, "min": 0.5}})
    assert result.passed, result.message
'''


def test_a_hand_written_test_can_score_with_a_judge_recorded_beside_its_cassette(pytester: pytest.Pytester) -> None:
    from tests._support.metric_calls import JUDGE_MODEL, judge_responder

    pytester.makeini("[pytest]\n")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_judged.py").write_text(JUDGED_TEST % JUDGE_MODEL)
    with ChatServer(judge_responder) as server:
        live = run(pytester, "tests", "--record-mode=once", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": CANARY})
        assert live.returncode == 0, live.stdout + live.stderr
    prompts = [body["messages"][0]["content"] for body in server.requests]
    assert len(prompts) == 2 and all("Task:\nWhere did the cat sit?" in p or "Task:\nWhat did the dog do?" in p
                                     for p in prompts)
    cassette = pytester.path / "cassettes" / "test_judged" / "test_judged@correct.json"
    assert CANARY not in cassette.read_text()
    live_report = report_json(pytester)
    assert scores(live_report) == {"test_judged": {"correct": 0.5}}
    replay = run(pytester, "tests")  # no server, no key
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert report_json(pytester)["items"][0]["records"] == live_report["items"][0]["records"]
