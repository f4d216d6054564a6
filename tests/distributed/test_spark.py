"""``engine: spark`` against the 127.0.0.1 chat server, on a local[2] SparkSession: the same answers, cassette and
report as the local engine; a task killed mid-way still gives a complete cassette without re-sending what it had
recorded; the global rpm budget holds at the server; no secret travels in what Spark pickles."""

from __future__ import annotations

import bisect
import importlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalsuite import runner
from evalsuite.cases import CaseRun, load_suite
from evalsuite.cassettes._format import load
from evalsuite.cassettes._keys import BUILT_IN_KEYS
from evalsuite.errors import EvalsuiteError
from evalsuite.model import EngineSettings
from evalsuite.records import ItemResult
from evalsuite.report.json import report_document
from tests._support.chat_server import ChatServer, sentiment_responder
from tests.distributed.conftest import SPARK_MARKS

pytestmark = SPARK_MARKS
REPO = Path(__file__).resolve().parents[2]
API_KEY = "sk-spark-test-key-0123456789"
REDACTED_WORD = "internal-codename-zeta"  # an eval_redact line: a secret of the user's

CASE = """\
cases:
  - id: reviews
    model: {{name: test-model, temperature: {temperature}}}
    dataset: {{path: reviews.jsonl, id: id, expected: label}}
    prompt:
      system: Classify the review as positive or negative.
      user: "Review: {{{{ text }}}}"
    repeats: {repeats}
    parse: {{kind: label, labels: {{positive: [positive], negative: [negative]}}}}
    metrics: {{accuracy: {{min: 0.1}}, f1: {{min: 0.1}}}}
    engine: {engine}
"""
WORDS = ("good", "great", "love", "bad", "awful", "boring", "plot", "actor", "scene", "music")


def make_case(root: Path, rows: int, *, repeats: int = 1, temperature: float = 0, engine: str = "local",
              texts: list[str] | None = None) -> CaseRun:
    rng = random.Random(7)
    (root / "cases").mkdir(parents=True, exist_ok=True)
    with (root / "cases" / "reviews.jsonl").open("w") as handle:
        for i in range(rows):
            text = texts[i] if texts else " ".join(rng.choice(WORDS) for _ in range(8))
            handle.write(json.dumps({"id": f"r{i}", "text": text, "label": rng.choice(["positive", "negative"])}) + "\n")
    (root / "cases" / "reviews.yaml").write_text(CASE.format(temperature=temperature, repeats=repeats, engine=engine))
    [run] = load_suite(root / "cases" / "reviews.yaml", root)
    return run


def run_item(run: CaseRun, root: Path, mode: str, engine: str | None = None, **engine_settings: Any) -> ItemResult:
    # Every run redacts the same eval_redact line: the executors' environment (which carries it) stays the same from
    # test to test, so Spark reuses its Python workers instead of starting new ones.
    settings = runner.RunSettings(rootdir=root, record_mode=mode, engine_kind=engine, redact=(REDACTED_WORD,),
                                  engine=EngineSettings(**engine_settings))
    return runner.run_item(run, settings)


def recorded(root: Path) -> list[tuple[str, str, str]]:
    """(match key, sample tag, response body without its creation time) of every interaction in the cassette."""
    requests, responses, _ = load(root / "cassettes" / "reviews" / "reviews.json")
    found = []
    for request, response in zip(requests, responses):
        info = BUILT_IN_KEYS.of_request(request)
        body = json.loads(response["body"]["string"])
        body.pop("created")
        found.append((info.key, info.tag, json.dumps(body, sort_keys=True)))
    return found


def comparable(result: ItemResult) -> dict[str, Any]:
    """The item's report.json entry, without what measures the machine: latency and wall time."""
    document = report_document([result], {})
    document.pop("created_at")
    for item in document["items"]:
        item.pop("wall_s")
        for record in item["records"]:
            record.pop("latency_s")
    return document


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    """One server for the module: the executors' environment (its URL) stays the same, so Spark reuses its
    Python workers from test to test."""
    with ChatServer(sentiment_responder) as running:
        yield running


@pytest.fixture
def live(server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> ChatServer:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    yield server
    server.responder, server.latency_s = sentiment_responder, 0.0


def test_a_case_recorded_through_spark_gives_the_local_engines_cassette_and_report(
        spark: Any, live: ChatServer, tmp_path: Path) -> None:
    local_root, spark_root = tmp_path / "local", tmp_path / "spark"
    local_run = make_case(local_root, 2000)
    local = run_item(local_run, local_root, "once")
    sent_before = live.received
    spread = run_item(make_case(spark_root, 2000), spark_root, "once", engine="spark")

    assert live.received - sent_before == 2000  # every call sent once
    assert sorted(recorded(spark_root)) == sorted(recorded(local_root))
    assert len(set(recorded(spark_root))) == 2000  # no duplicate
    assert comparable(spread) == comparable(local)

    # Replay needs no Spark: a process where pyspark cannot even be imported replays it like the local cassette.
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["pyspark"] = None
        from pathlib import Path
        from evalsuite import runner
        from evalsuite.cases import load_suite
        from tests.distributed.test_spark import comparable
        root = Path({str(spark_root)!r})
        [run] = load_suite(root / "cases" / "reviews.yaml", root)
        settings = runner.RunSettings(rootdir=root, record_mode="none", engine_kind="spark")
        print(json.dumps(comparable(runner.run_item(run, settings))))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    replayed = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=120)
    assert replayed.returncode == 0, replayed.stderr
    local_replay = run_item(local_run, local_root, "none")
    assert json.loads(replayed.stdout) == json.loads(json.dumps(comparable(local_replay)))


def _kill_spark_workers(base_url: str) -> int:
    """SIGKILL the PySpark worker processes of the running job: the daemon's children whose environment holds the
    test server's URL (Spark passed it to them), as an executor lost mid-task would leave them."""
    marker = f"OPENAI_BASE_URL={base_url}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"pyspark.daemon" not in (entry / "cmdline").read_bytes():
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
            parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            forked_by_daemon = b"pyspark.daemon" in (Path("/proc") / parent / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in environ and forked_by_daemon:
            os.kill(int(entry.name), signal.SIGKILL)
            killed += 1
    return killed


def test_a_task_killed_on_its_first_attempt_still_yields_a_complete_duplicate_free_cassette(
        spark: Any, live: ChatServer, tmp_path: Path) -> None:
    if not Path("/proc/self/environ").exists():
        pytest.skip("finds the Spark worker processes through /proc (Linux)")
    run = make_case(tmp_path, 300, repeats=2, temperature=0.7)  # 600 calls: two samples of each example
    calls, sent_before, killed, answered = 600, live.received, [], itertools.count(1)

    def kill_at_the_200th_answer(body: dict[str, Any]) -> str:
        if next(answered) == 200:
            killed.append(_kill_spark_workers(live.base_url))
        return sentiment_responder(body)

    live.responder, live.latency_s = kill_at_the_200th_answer, 0.02
    result = run_item(run, tmp_path, "once", engine="spark")

    assert killed and killed[0] >= 1  # the first attempt really died mid-way; the retry finished the job
    assert not result.errors and len(result.records) == calls
    interactions = recorded(tmp_path)
    tags = sorted(tag for _, tag, _ in interactions)
    assert tags == sorted(f"r{i}#{s}" for i in range(300) for s in range(2))  # complete, one per call
    # What the killed attempt had recorded was replayed by the retry, not sent again: only the requests in flight
    # when the workers died (at most the 2 tasks' concurrency, 8 each) were sent twice.
    assert calls <= live.received - sent_before <= calls + 16
    assert not list((tmp_path / "cassettes").rglob("*.shards"))  # the shards are merged and gone
    replayed = run_item(run, tmp_path, "none", engine="spark")
    assert [r.answer for r in replayed.records] == [r.answer for r in result.records]


def test_a_failed_job_keeps_what_its_tasks_recorded_and_new_episodes_sends_only_the_rest(
        spark: Any, live: ChatServer, tmp_path: Path) -> None:
    if not Path("/proc/self/environ").exists():
        pytest.skip("finds the Spark worker processes through /proc (Linux)")
    run = make_case(tmp_path, 400)
    answered = itertools.count(1)

    def kill_twice(body: dict[str, Any]) -> str:  # local[2,2] allows each task one retry: the second kill fails the job
        if next(answered) in (100, 200):
            _kill_spark_workers(live.base_url)
        return sentiment_responder(body)

    live.responder, live.latency_s = kill_twice, 0.02
    with pytest.raises(EvalsuiteError) as failed:
        run_item(run, tmp_path, "once", engine="spark")
    kept = len(recorded(tmp_path))
    assert str(failed.value).startswith("engine: spark: the Spark job failed: ")
    assert f"; {kept} recording(s) the tasks made are kept in the cassette: re-run with --record-mode=new_episodes" \
        in str(failed.value)
    assert 150 <= kept < 400
    live.responder, sent_before = sentiment_responder, live.received
    resumed = run_item(run, tmp_path, "new_episodes", engine="spark")
    assert live.received - sent_before == 400 - kept
    assert not resumed.errors and sorted(tag for _, tag, _ in recorded(tmp_path)) == sorted(f"r{i}#0" for i in range(400))


def test_the_servers_request_rate_stays_within_the_global_rpm_budget(
        spark: Any, live: ChatServer, tmp_path: Path) -> None:
    rpm, calls, window = 1800.0, 300, 3.0  # 30 requests/s for the case: two tasks at 15/s each, for ~10 s
    run = make_case(tmp_path, calls)
    first = len(live.arrivals)
    run_item(run, tmp_path, "once", engine="spark", requests_per_minute=rpm)
    arrivals = sorted(live.arrivals[first:])
    assert len(arrivals) == calls
    # The server's own clock: the busiest 3-second window. A token bucket lets through its rate plus the burst it
    # holds: one second's worth of the case's budget (each task starts with a second of its share, as the local
    # engine does). Both tasks run together for seconds, whenever each one started: then the case's whole budget
    # is used, not half of it.
    busiest = max(bisect.bisect_right(arrivals, t + window) - i for i, t in enumerate(arrivals))
    per_minute = busiest / window * 60
    assert 0.9 * rpm <= per_minute, f"{per_minute:.0f} requests/minute at most, for a budget of {rpm:.0f}"
    assert per_minute - rpm / window <= 1.1 * rpm, f"{per_minute:.0f} requests/minute for a budget of {rpm:.0f}"


def test_no_secret_is_in_what_spark_pickles_and_the_executors_redact_with_the_drivers_secrets(
        spark: Any, live: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyspark.sql.udf

    # Where Spark's UDF wrapper looks the function up: imported into pyspark.sql.udf (3.5), or from pyspark.core.rdd (4)
    rdd = pyspark.sql.udf if hasattr(pyspark.sql.udf, "_prepare_for_python_RDD") else importlib.import_module(
        "pyspark.core.rdd")
    run = make_case(tmp_path, 6, texts=[f"good, key {API_KEY}", f"bad {REDACTED_WORD}", "good", "bad", "good", "bad"])
    pickled: list[bytes] = []
    environments: list[dict[str, str]] = []
    prepare = rdd._prepare_for_python_RDD

    def spy(sc: Any, command: Any) -> Any:
        prepared = prepare(sc, command)
        pickled.append(bytes(prepared[0]))
        environments.append(dict(prepared[2]))
        return prepared

    monkeypatch.setattr(rdd, "_prepare_for_python_RDD", spy)
    result = run_item(run, tmp_path, "once", engine="spark")

    assert not result.errors and pickled
    for blob in pickled:  # the task Spark ships to the executors, as Spark pickled it
        assert API_KEY.encode() not in blob and REDACTED_WORD.encode() not in blob
    assert environments[-1]["OPENAI_API_KEY"] == API_KEY  # the key went through the executors' environment
    assert "OPENAI_API_KEY" not in spark.sparkContext.environment  # for that job only
    text = (tmp_path / "cassettes" / "reviews" / "reviews.json").read_text()
    assert API_KEY not in text and REDACTED_WORD not in text  # redacted on the executors, with the driver's secrets
    assert "[REDACTED:OPENAI_API_KEY]" in text and "[REDACTED:eval_redact]" in text


def test_closing_the_session_cancels_a_running_spark_job_and_keeps_what_its_tasks_recorded(
        spark: Any, live: ChatServer, tmp_path: Path) -> None:
    from evalsuite.scheduler import Scheduler

    run = make_case(tmp_path, 1000)
    settings = runner.RunSettings(rootdir=tmp_path, record_mode="once", engine_kind="spark", redact=(REDACTED_WORD,))
    answered, started = itertools.count(1), threading.Event()

    def note_the_50th(body: dict[str, Any]) -> str:
        if next(answered) == 50:
            started.set()
        return sentiment_responder(body)

    live.responder, live.latency_s = note_the_50th, 0.2  # 1,000 calls at 16 in flight: over 12 s of work
    sent_before = live.received
    scheduler = Scheduler(settings)
    ticket = scheduler.add(run, settings)
    assert started.wait(120), "the Spark job never started sending"
    scheduler.close()  # the session's end (Ctrl-C): the job is cancelled, not waited for
    with pytest.raises(EvalsuiteError) as stopped:
        scheduler.wait(ticket)

    kept = len(recorded(tmp_path))
    assert str(stopped.value).startswith("engine: spark: the Spark job failed: ")
    assert f"; {kept} recording(s) the tasks made are kept in the cassette" in str(stopped.value)
    assert 50 <= kept < 1000 and live.received - sent_before < 1000  # cancelled mid-way, what was paid for kept
    assert not list((tmp_path / "cassettes").rglob("*.shards"))


def test_a_failed_rewrite_on_spark_keeps_the_earlier_recordings_of_the_examples_it_did_not_reach(
        spark: Any, live: ChatServer, tmp_path: Path) -> None:
    if not Path("/proc/self/environ").exists():
        pytest.skip("finds the Spark worker processes through /proc (Linux)")
    run = make_case(tmp_path, 400)
    run_item(run, tmp_path, "once")  # the local engine records every example
    answered = itertools.count(1)

    def kill_twice(body: dict[str, Any]) -> str:  # each task's one retry dies too: the job fails part-way
        if next(answered) in (100, 200):
            _kill_spark_workers(live.base_url)
        return sentiment_responder(body)

    live.responder, live.latency_s = kill_twice, 0.02
    with pytest.raises(EvalsuiteError, match="the Spark job failed"):
        run_item(run, tmp_path, "rewrite", engine="spark")
    assert {tag for _, tag, _ in recorded(tmp_path)} == {f"r{i}#0" for i in range(400)}  # nothing lost
    live.responder = sentiment_responder
    assert not run_item(run, tmp_path, "none").errors  # and every example still replays
