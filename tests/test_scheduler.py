"""The session scheduler: every item's calls on one engine, each item's answers and cassette as if it ran alone.

The budget shared across items is observed through the chat server's counters (requests it held at once,
requests it received), never through timings.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from evalsuite import runner
from evalsuite.cases import CaseRun, load_suite
from evalsuite.model import EngineSettings, Failure, Provider
from evalsuite.model._providers import _providers
from evalsuite.scheduler import Scheduler
from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import REVIEWS, SENTIMENT_CASE

ITEMS = ["sentiment[plain-t0]", "sentiment[plain-t0.7]", "sentiment[terse-t0]", "sentiment[terse-t0.7]"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sentiment case file (4 items of 8 reviews) in a project of its own."""
    data = tmp_path / "cases" / "data"
    data.mkdir(parents=True)
    (data / "reviews.jsonl").write_text("".join(json.dumps({"id": i, "text": t, "label": y}) + "\n"
                                                for i, t, y in REVIEWS))
    (tmp_path / "cases" / "reviews.yaml").write_text(SENTIMENT_CASE.format(min_accuracy=0.75, min_f1=0.5, provider=""))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return tmp_path


def runs(project: Path) -> list[CaseRun]:
    found = load_suite(project / "cases" / "reviews.yaml", project)
    assert [r.item_id for r in found] == ITEMS
    return found


def settings(project: Path, mode: str, base_url: str | None = None, concurrency: int = 4) -> runner.RunSettings:
    override = {"base_url": base_url} if base_url else {}
    return runner.RunSettings(rootdir=project, record_mode=mode, engine=EngineSettings(concurrency=concurrency),
                              model_override=override)


def recorded(project: Path) -> dict[str, int]:
    """Interactions per cassette file, journals merged as the next load would."""
    from evalsuite.cassettes import open_cassette

    return {path.stem: open_cassette(path, "none", metadata={}).n_interactions
            for path in sorted((project / "cassettes" / "reviews").glob("*.json"))}


def test_items_share_one_budget_and_each_gets_the_answers_it_would_get_alone(project: Path) -> None:
    # The server holds every request until 6 have arrived: more than one item's calls were in flight together.
    with ChatServer(sentiment_responder, barrier=6, latency_s=0.02) as server:
        live = settings(project, "once", server.base_url, concurrency=6)
        with Scheduler(live) as scheduler:
            tickets = [scheduler.add(run, live) for run in runs(project)]
            results = [runner.finish_item(scheduler.wait(ticket), live) for ticket in tickets]
    assert server.max_in_flight == 6  # the budget is the session's: never more, whatever the number of items
    assert server.statuses[200] == 32
    assert [r.item_id for r in results] == ITEMS and all(r.passed for r in results)

    replay = settings(project, "none", server.base_url)
    alone = [runner.run_item(run, replay) for run in runs(project)]  # each item by itself, from its cassette
    for together, by_itself in zip(results, alone):  # latency aside: measured live, the recorded value on replay
        assert [{**asdict(r), "latency_s": 0} for r in together.records] == [
            {**asdict(r), "latency_s": 0} for r in by_itself.records]
        assert [(m.name, m.value) for m in together.metrics] == [(m.name, m.value) for m in by_itself.metrics]


def test_closing_midway_keeps_every_recorded_answer_and_new_episodes_sends_only_the_rest(project: Path) -> None:
    with ChatServer(sentiment_responder, latency_s=0.05) as server:
        live = settings(project, "rewrite", server.base_url, concurrency=2)
        scheduler = Scheduler(live)
        for run in runs(project):
            scheduler.add(run, live)
        deadline = time.monotonic() + 60
        while server.statuses[200] < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        scheduler.close()  # what Ctrl-C does at the session's end: cancel, then save every cassette
        served = server.statuses[200]
    kept = sum(recorded(project).values())
    assert 6 <= served < 32 and served - 2 <= kept <= served  # at most the 2 answers in flight were cut off
    assert not list((project / "cassettes").rglob("*.journal.jsonl"))

    with ChatServer(sentiment_responder) as server:
        resume = settings(project, "new_episodes", server.base_url)
        results = [runner.run_item(run, resume) for run in runs(project)]
    assert server.statuses[200] == 32 - kept and all(r.passed for r in results)


def test_a_planning_error_ends_its_own_item_and_no_other(project: Path) -> None:
    (project / "cases" / "data" / "reviews.jsonl").unlink()  # every item of this file: the dataset is gone
    (project / "cases" / "ok.yaml").write_text("""
cases:
  - id: fine
    model: {name: test-model, temperature: 0}
    dataset: {examples: [{text: good, expected: Positive}]}
    prompt: {user: "{{ text }}"}
    metrics: [exact_match]
""")
    [fine] = load_suite(project / "cases" / "ok.yaml", project)
    with ChatServer(sentiment_responder) as server:
        live = settings(project, "once", server.base_url)
        with Scheduler(live) as scheduler:
            broken = scheduler.add(runs_without_preview(project), live)
            good = scheduler.add(fine, live)
            with pytest.raises(runner.EvalsuiteError, match="reviews.jsonl"):
                scheduler.wait(broken)
            assert runner.finish_item(scheduler.wait(good), live).passed


def test_the_spend_guard_refuses_an_engine_spark_item_before_anything_is_sent(project: Path) -> None:
    [first, *_] = runs(project)
    guarded = replace(settings(project, "once"), engine_kind="spark", max_cost=1.0)
    with Scheduler(guarded) as scheduler:
        ticket = scheduler.add(first, guarded)
        with pytest.raises(runner.EvalsuiteError, match="--eval-max-cost cannot hold back calls once they are handed "
                                                        "to Spark tasks: run this item with --eval-engine local"):
            scheduler.wait(ticket)
    assert not (project / "cassettes").exists() or recorded(project) == {}


def runs_without_preview(project: Path) -> CaseRun:
    """An item of the sentiment file as collected before its dataset went missing."""
    data = project / "cases" / "data" / "reviews.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": t, "label": y}) + "\n" for i, t, y in REVIEWS))
    run = runs(project)[0]
    data.unlink()
    return run


# -- through pytest -------------------------------------------------------------------------------

PRICED = ", price_per_1k_input: 1.0, price_per_1k_output: 1.0"  # in the case's model mapping


@pytest.fixture(scope="module")
def _datasets_imported() -> None:
    """Before any pytester: an in-process run drops the modules it imported, and pyarrow refuses to register
    datasets' extension types a second time in one process."""
    import datasets  # noqa: F401


@pytest.fixture
def suite(_datasets_imported: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The sentiment project, run in this process (``runpytest_inprocess``: no interpreter start-up per run)."""
    from tests._support.project import make_project

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return make_project(pytester)


def in_process(suite: pytest.Pytester, *args: str) -> pytest.RunResult:
    return suite.runpytest_inprocess("cases", "-p", "no:cacheprovider", *args)


def report(suite: pytest.Pytester) -> dict[str, dict]:
    doc = json.loads((suite.path / "reports" / "report.json").read_text())
    return {item["item_id"]: item for item in doc["items"]}


def test_items_report_in_pytests_order_whatever_order_their_answers_came_in(suite: pytest.Pytester, monkeypatch) -> None:
    from xml.etree import ElementTree

    def plain_is_slow(body: dict) -> float:  # the plain-prompt items (run first) are answered after the terse ones
        return 0.3 if "Classify the sentiment" in str(body) else 0.0

    with ChatServer(sentiment_responder, latency_for=plain_is_slow) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        live = in_process(suite, "-v", "--record-mode=once", "--junitxml=live.xml", "--eval-concurrency", "32")
        served = ["Classify the sentiment" in str(body) for body in server.requests]
    assert served == [False] * 16 + [True] * 16  # the last two items were answered first
    live.assert_outcomes(passed=4)
    assert [line.split("::")[1].split(" ")[0] for line in live.stdout.lines if " PASSED" in line] == ITEMS
    junit = [case.get("name") for case in ElementTree.parse(suite.path / "live.xml").getroot().iter("testcase")]
    assert junit == ITEMS
    scores = {item_id: [(m["name"], m["value"], m["n"]) for m in item["metrics"]] for item_id, item in report(suite).items()}

    replay = in_process(suite)  # the same answers, from the cassettes: the same results
    replay.assert_outcomes(passed=4)
    assert {item_id: [(m["name"], m["value"], m["n"]) for m in item["metrics"]]
            for item_id, item in report(suite).items()} == scores


def test_x_stops_sending_the_calls_of_the_items_that_will_not_run(suite: pytest.Pytester, monkeypatch) -> None:
    # Every answer is unparseable (the echo server), so the first item fails its threshold and -x ends the session.
    with ChatServer(latency_s=0.3) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = in_process(suite, "-x", "--record-mode=once", "--eval-concurrency", "2")
    result.assert_outcomes(failed=1)
    assert server.received < 32  # 4 items x 8 examples: the rest was never sent


def test_the_spend_guard_leaves_examples_not_run_out_of_the_metrics_and_the_session_red(
        suite: pytest.Pytester, monkeypatch) -> None:
    from tests._support.project import write_case

    write_case(suite, provider=PRICED)
    with ChatServer(sentiment_responder) as server:  # one call at a time: the guard stops at a known example
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = in_process(suite, "--record-mode=once", "--eval-concurrency", "1", "--eval-max-cost", "0.5", "-rA")
    assert result.ret == 1
    items = report(suite)
    ran = {item_id: item["n_examples"] for item_id, item in items.items()}
    assert server.statuses[200] == sum(ran.values()) and 8 < sum(ran.values()) < 16
    first, partial, *untouched = ITEMS
    assert items[first]["outcome"] == "passed" and ran[first] == 8
    part = items[partial]
    not_run = 8 - ran[partial]
    assert part["outcome"] == "error" and part["meta"]["not_run"] == not_run and 0 < not_run < 8
    assert all(m["n"] == ran[partial] for m in part["metrics"])  # examples not run are in no denominator
    assert part["message"].startswith(f"{partial}: spend guard: {not_run} of 8 examples not run (limit $0.5 "
                                      "reached at ~$0.")
    assert part["message"].splitlines()[0].endswith("); raise --eval-max-cost or resume with "
                                                    "--record-mode=new_episodes")
    for item_id in untouched:
        assert items[item_id]["outcome"] == "error" and items[item_id]["n_examples"] == 0
        assert items[item_id]["message"].startswith(f"{item_id}: spend guard: 8 of 8 examples not run (limit $0.5")
    out = result.stdout.str()
    assert f"{partial}: spend guard: {not_run} of 8 examples not run" in out  # pytest's failure section
    assert "evalsuite: 4 items: 1 passed, 0 failed, 3 errors" in out
    assert "spend guard" in (suite.path / "reports" / "report.md").read_text()

    with ChatServer(sentiment_responder) as server:  # resumed: only what the guard kept back is sent
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        resumed = in_process(suite, "--record-mode=new_episodes")
    resumed.assert_outcomes(passed=4)
    assert server.statuses[200] == 32 - sum(ran.values())


def test_a_spend_guard_that_cannot_price_the_model_stops_the_run_before_any_call(
        suite: pytest.Pytester, monkeypatch) -> None:
    with ChatServer(sentiment_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = in_process(suite, "--record-mode=once", "--eval-max-cost", "2")
        replay = in_process(suite, "--eval-max-cost", "2")  # replay costs nothing: the guard has nothing to price
    assert result.ret == pytest.ExitCode.USAGE_ERROR and server.received == 0
    assert ("--eval-max-cost: the spend guard cannot estimate what calls to model 'test-model' cost: it has no price. "
            "Add one to pyproject.toml ([tool.evalsuite.prices]") in result.stderr.str()
    assert "model.price_per_1k_input / price_per_1k_output" in result.stderr.str()
    assert replay.ret == 1 and "not recorded" in replay.stdout.str()


def test_each_xdist_worker_schedules_its_own_items_on_one_budget(suite: pytest.Pytester, monkeypatch) -> None:
    # 8 items of 2 examples on 2 workers with 4 calls at a time each. The server holds every request until 5 have
    # arrived: 2 workers running one item at a time hold at most 4, so a worker overlapped its items.
    (suite.path / "cases" / "more.yaml").write_text((suite.path / "cases" / "reviews.yaml").read_text()
                                                   .replace("suite: reviews", "suite: more"))
    with ChatServer(sentiment_responder, barrier=5, latency_s=0.02) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = in_process(suite, "-n", "2", "--record-mode=once", "--eval-concurrency", "4", "--eval-limit", "2")
    result.assert_outcomes(passed=8)
    assert server.statuses[200] == 16 == server.received  # every call sent once, by one worker
    assert 5 <= server.max_in_flight <= 8  # never past each worker's budget
    doc = json.loads((suite.path / "reports" / "report.json").read_text())
    assert len(doc["items"]) == 8 and all(item["outcome"] == "passed" for item in doc["items"])
    assert len(list((suite.path / "cassettes").rglob("*.json"))) == 8


def test_a_hand_written_test_with_its_own_cassette_never_records_the_schedulers_calls(
        suite: pytest.Pytester, monkeypatch) -> None:
    # The hand-written test runs first, its vcrpy cassette patching httpx meanwhile; the case items' calls are
    # planned by then, but held until a case item runs, so none of them lands in the test's cassette.
    suite.makepyfile(test_hand="""
        import time

        def test_hand(evalsuite_client):
            evalsuite_client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
            time.sleep(1.0)
    """)
    with ChatServer(sentiment_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = suite.runpytest_inprocess("test_hand.py", "cases", "-p", "no:cacheprovider", "--record-mode=rewrite")
    result.assert_outcomes(passed=5)
    hand = json.loads((suite.path / "cassettes" / "test_hand" / "test_hand.json").read_text())
    assert len(hand["interactions"]) == 1 and server.statuses[200] == 1 + 32


def test_ctrl_c_keeps_every_answer_recorded_so_far(suite: pytest.Pytester) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "OPENAI_API_KEY": "sk-test-key-0000"}
    env.pop("CI", None)
    with ChatServer(sentiment_responder, latency_s=0.25) as server:  # the 26 calls left would take 3 s more
        env["OPENAI_BASE_URL"] = server.base_url
        child = subprocess.Popen([sys.executable, "-m", "pytest", "cases", "-p", "no:cacheprovider",
                                  "--record-mode=rewrite", "--eval-concurrency", "2"],
                                 cwd=suite.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while server.statuses[200] < 6 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=120)
        served = server.statuses[200]
    assert child.returncode == pytest.ExitCode.INTERRUPTED, out
    kept = sum(len(json.loads(path.read_text())["interactions"]) for path in (suite.path / "cassettes").rglob("*.json"))
    assert 6 <= served < 32 and served - 2 <= kept <= served, out  # at most the 2 in flight were cut off
    assert not list((suite.path / "cassettes").rglob("*.journal.jsonl"))  # merged into the cassettes

    with ChatServer(sentiment_responder) as server:
        env["OPENAI_BASE_URL"] = server.base_url
        resumed = subprocess.run([sys.executable, "-m", "pytest", "cases", "-p", "no:cacheprovider",
                                  "--record-mode=new_episodes"], cwd=suite.path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout
    assert server.statuses[200] == 32 - kept


class _ClassifyRaises(Provider):
    """A custom provider with a bug: its failure classification raises."""

    def classify(self, exc: Exception) -> Failure:
        raise RuntimeError("a bug in the provider's classify")


def test_a_callback_that_raises_fails_its_item_instead_of_leaving_it_waiting(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "x.yaml").write_text("""
cases:
  - id: c
    model: {provider: classify-raises, name: m, base_url: "http://127.0.0.1:9/v1", temperature: 0}
    dataset: {examples: [{text: good, expected: positive}, {text: bad, expected: negative}]}
    prompt: {user: "{{ text }}"}
    metrics: [exact_match]
""")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    monkeypatch.setitem(_providers._entries, "classify-raises", _ClassifyRaises)  # for this test only
    [run] = load_suite(tmp_path / "cases" / "x.yaml", tmp_path)
    live = runner.RunSettings(rootdir=tmp_path, record_mode="once", engine=EngineSettings(max_retries=0))
    outcome: dict[str, BaseException] = {}

    def wait() -> None:
        try:
            scheduler.wait(ticket)
        except BaseException as exc:  # what pytest's item would see
            outcome["error"] = exc

    with Scheduler(live) as scheduler:
        ticket = scheduler.add(run, live)
        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        waiter.join(120)  # a guard against the hang this test is about, not a speed check
        assert not waiter.is_alive(), "the item still waits for answers its job will never give"
    assert isinstance(outcome.get("error"), RuntimeError) and "a bug in the provider's classify" in str(outcome["error"])
