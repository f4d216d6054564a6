"""The engine against a real 127.0.0.1 server through the unmodified openai SDK."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import vcr

from evalsuite.cases.schema import ModelSettings
from evalsuite.model import Engine, EngineSettings, Job, SpendGuard, make_client, run_calls, run_calls_sync
from evalsuite.model._engine import retry_delay
from evalsuite.model._progress import Progress
from evalsuite.records import Answer, Call
from tests._support.chat_server import ChatServer

FAST = EngineSettings(concurrency=8, backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def chat(example_id: str, sample: int = 0, text: str | None = None, **params: object) -> Call:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text or f"say {example_id}"}], **params}
    return Call(example_id, sample, "chat", body)


def tags_served(server: ChatServer) -> list[str]:
    """The x-evalsuite-example header of every request the server answered with 200, in order."""
    return [{k.lower(): v for k, v in h.items()}["x-evalsuite-example"] for h in server.headers]


def run(server: ChatServer, calls: list[Call], settings: EngineSettings = FAST, **kwargs: object) -> list[Answer]:
    return run_calls_sync(calls, ModelSettings(base_url=server.base_url), settings=settings, **kwargs)


def test_answers_carry_text_logprobs_usage_and_latency_in_call_order() -> None:
    calls = [chat(f"e{i}", text=f"word{i} two", logprobs=True) for i in range(20)]
    calls.append(Call("c0", 0, "completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "one two three",
                                               "logprobs": 1}))
    with ChatServer(latency_s=0.02) as server:
        answers = run(server, calls)
    assert [(a.example_id, a.sample) for a in answers] == [(c.example_id, c.sample) for c in calls]
    first, last = answers[0], answers[-1]
    assert first.text == "word0 two" and first.finish_reason == "stop" and first.system_fingerprint == "fp_test"
    assert len(first.token_logprobs) == 2 and all(lp < 0 for lp in first.token_logprobs)
    assert first.prompt_tokens > 0 and first.completion_tokens == 2
    assert first.latency_s >= 0.02 and first.retries == 0 and first.ok
    assert last.text == "one two three" and len(last.token_logprobs) == 3
    assert sorted(tags_served(server)) == sorted(f"{c.example_id}#0" for c in calls)


def test_under_429_and_500_injection_every_call_is_answered_and_served_exactly_once() -> None:
    calls = [chat(f"e{i}") for i in range(150)] + [chat("rep", s) for s in range(3)]
    delivered: list[Answer] = []
    settings = EngineSettings(concurrency=8, max_retries=30, backoff_base=0.01, backoff_cap=0.05)
    with ChatServer(rate_limit_fraction=0.3, server_error_fraction=0.05, retry_after_s=0.05, seed=1) as server:
        answers = run(server, calls, settings, on_answer=delivered.append)
    assert server.statuses[429] > 20 and server.statuses[500] > 0
    expected = Counter(f"{c.example_id}#{c.sample}" for c in calls)
    assert Counter(tags_served(server)) == expected  # each example reached a 200 exactly once
    assert Counter(f"{a.example_id}#{a.sample}" for a in answers) == expected
    assert Counter(f"{a.example_id}#{a.sample}" for a in delivered) == expected
    assert all(a.ok for a in answers)
    assert sum(a.retries for a in answers) == server.statuses[429] + server.statuses[500]


def test_retry_after_is_honoured() -> None:
    with ChatServer(rate_limit_first=1, retry_after_s=0.3) as server:
        [answer] = run(server, [chat("a")])
    assert answer.ok and answer.retries == 1 and server.statuses == Counter({429: 1, 200: 1})


def test_the_retry_delay_is_never_shorter_than_retry_after_and_backoff_is_capped() -> None:
    settings = EngineSettings(backoff_base=0.5, backoff_cap=4.0)
    for _ in range(50):
        assert 0.3 <= (retry_delay(settings, 0, 0.3) or 0) <= 0.33
        assert 0.25 <= (retry_delay(settings, 0, None) or 0) <= 0.5
        assert 2.0 <= (retry_delay(settings, 10, None) or 0) <= 4.0
    assert retry_delay(settings, 0, 121.0) is None  # beyond max_retry_after: give up instead of waiting


def test_retry_after_beyond_the_limit_gives_a_rate_limited_answer_without_waiting() -> None:
    settings = EngineSettings(max_retry_after=0.1)
    with ChatServer(rate_limit_fraction=1.0, retry_after_s=30) as server:
        [answer] = run(server, [chat("a")], settings)
    assert server.statuses == Counter({429: 1}) and answer.retries == 0  # no second attempt
    assert answer.error_kind == "rate_limited" and "Retry-After 30 s" in answer.error


class RecordingProgress(Progress):
    def __init__(self, total: int) -> None:
        super().__init__("case", total)
        self.limits: list[int] = []

    def set_concurrency(self, limit: int) -> None:
        super().set_concurrency(limit)
        self.limits.append(limit)


def test_concurrency_halves_on_429_and_recovers_when_throttling_stops() -> None:
    calls = [chat(f"e{i}") for i in range(300)]
    progress = RecordingProgress(len(calls))
    with ChatServer(latency_s=0.005, rate_limit_fraction=0.5, retry_after_s=0.02) as server:

        def stop_throttling(answer: Answer) -> None:
            if progress.done >= 40:
                server.rate_limit_fraction = 0.0

        answers = run(server, calls, EngineSettings(concurrency=8, max_retries=30, backoff_base=0.01),
                      on_answer=stop_throttling, progress=progress)
    assert all(a.ok for a in answers)
    assert progress.limits[0] == 8
    assert min(progress.limits) <= 4  # cut by half on a 429
    assert progress.limits[-1] == 8  # grew back to the maximum, never above
    assert max(progress.limits) == 8


def test_non_adaptive_keeps_the_configured_concurrency() -> None:
    progress = RecordingProgress(30)
    with ChatServer(rate_limit_fraction=0.5, retry_after_s=0.01) as server:
        run(server, [chat(f"e{i}") for i in range(30)],
            EngineSettings(concurrency=4, max_retries=30, adaptive=False), progress=progress)
    assert progress.limits == [4]


def test_server_errors_become_visible_error_answers_after_the_retry_budget() -> None:
    settings = EngineSettings(concurrency=4, max_retries=2, backoff_base=0.01)
    with ChatServer(server_error_fraction=1.0) as server:
        answers = run(server, [chat(f"e{i}") for i in range(3)], settings)
    assert server.statuses[500] == 9  # 1 try + 2 retries each (fewer than a run that opens the breaker)
    for answer in answers:
        assert answer.error_kind == "endpoint" and answer.retries == 2
        assert answer.error == "HTTP 500: boom (gave up after 2 retries)"


def test_client_errors_are_not_retried() -> None:
    with ChatServer() as server:
        [answer] = run_calls_sync([chat("a")], ModelSettings(base_url=server.base_url.replace("/v1", "/nope")),
                                  settings=EngineSettings(backoff_base=1.0))
    assert answer.error_kind == "endpoint" and answer.retries == 0 and answer.error.startswith("HTTP 404")


def test_connection_errors_are_retried_then_reported() -> None:
    with ChatServer() as server:
        base_url = server.base_url
    [answer] = run_calls_sync([chat("a")], ModelSettings(base_url=base_url),
                              settings=EngineSettings(max_retries=1, backoff_base=0.01))
    assert answer.error_kind == "connection" and answer.retries == 1 and "Connection error" in answer.error


def test_a_server_trickling_bytes_is_given_up_on_at_the_deadline() -> None:
    # a byte every 0.2 s never trips the 0.5 s per-read timeout; the body would take a minute
    with ChatServer(fault="trickle", trickle_delay_s=0.2) as server:
        [answer] = run_calls_sync([chat("a")], ModelSettings(base_url=server.base_url, timeout=0.5),
                                  settings=EngineSettings(max_retries=0))
    assert answer.error_kind == "timeout"
    assert "within the 1.5 s deadline" in answer.error and "0.5 s model.timeout" in answer.error
    assert server.base_url in answer.error


def test_an_explicit_deadline_is_named_and_a_hanging_server_times_out_naming_the_url() -> None:
    with ChatServer(fault="trickle", trickle_delay_s=0.1) as server:
        [answer] = run(server, [chat("a")], EngineSettings(max_retries=0, deadline=0.4))
    assert answer.error_kind == "timeout" and "within the 0.4 s deadline" in answer.error
    with ChatServer(fault="hang") as server:
        [answer] = run_calls_sync([chat("a")], ModelSettings(base_url=server.base_url, timeout=0.3),
                                  settings=EngineSettings(max_retries=0))
    assert answer.error_kind == "timeout" and f"POST {server.base_url}/chat/completions" in answer.error


def test_request_missing_from_the_cassette_is_not_recorded_and_not_retried(tmp_path) -> None:
    with ChatServer() as server, vcr.VCR(record_mode="none").use_cassette(str(tmp_path / "c.yaml")):
        answers = run(server, [chat("a"), chat("b")], EngineSettings(max_retries=5, backoff_base=1.0))
    assert server.statuses == Counter()
    for answer in answers:
        assert answer.error_kind == "not_recorded" and answer.retries == 0
        assert "not in the cassette" in answer.error and "'none'" in answer.error  # vcrpy 8 and 9 word it differently


def test_repeats_are_sent_in_sample_order_while_examples_run_concurrently() -> None:
    calls = [chat(f"e{i}", s) for s in (3, 1, 0, 2) for i in range(10)]  # samples deliberately shuffled
    with ChatServer(latency_s=0.01) as server:
        answers = run(server, calls)
    served = tags_served(server)
    for i in range(10):
        assert [t for t in served if t.startswith(f"e{i}#")] == [f"e{i}#{s}" for s in range(4)]
    assert [(a.example_id, a.sample) for a in answers] == [(c.example_id, c.sample) for c in calls]
    assert set(served[:8]) != {f"e0#{s}" for s in range(4)}  # not one example at a time


def test_cancellation_keeps_completed_answers_and_marks_the_rest_interrupted() -> None:
    calls = [chat(f"e{i}") for i in range(200)]
    delivered: list[Answer] = []

    async def main() -> None:
        task = asyncio.current_task()

        def on_answer(answer: Answer) -> None:
            delivered.append(answer)
            if len(delivered) == 20:
                task.cancel()

        async with make_client(ModelSettings(base_url=server.base_url), replay=False) as client:
            await run_calls(calls, client, settings=FAST, on_answer=on_answer)

    with ChatServer(latency_s=0.02) as server:
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(main())
    assert Counter(f"{a.example_id}#{a.sample}" for a in delivered) == Counter(f"e{i}#0" for i in range(200))
    done = [a for a in delivered if a.ok]
    assert len(done) >= 20 and {f"{a.example_id}#0" for a in done} <= set(tags_served(server))
    assert all(a.error_kind == "interrupted" for a in delivered if not a.ok)


def test_keyboard_interrupt_flushes_every_call_then_propagates() -> None:
    calls = [chat(f"e{i}") for i in range(100)]
    delivered: list[Answer] = []

    def on_answer(answer: Answer) -> None:
        delivered.append(answer)
        if len(delivered) == 10:
            raise KeyboardInterrupt

    with ChatServer(latency_s=0.02) as server, pytest.raises(KeyboardInterrupt):
        run(server, calls, on_answer=on_answer)
    assert len(delivered) == 100 and len({a.example_id for a in delivered}) == 100
    assert sum(a.ok for a in delivered) >= 10
    assert all(a.error_kind == "interrupted" for a in delivered if not a.ok)


def test_sync_wrapper_works_inside_a_running_event_loop() -> None:
    async def notebook_cell() -> list[Answer]:
        return run(server, [chat("a")])

    with ChatServer() as server:
        [answer] = asyncio.run(notebook_cell())
    assert answer.text == "say a"


def test_a_requests_per_minute_budget_still_answers_every_call() -> None:
    # the pacing itself: tests/model/test_admission.py (and benchmarks/throughput.py for the wall time)
    with ChatServer() as server:
        answers = run(server, [chat(f"e{i}") for i in range(30)], EngineSettings(requests_per_minute=1200))
    assert all(a.ok for a in answers) and server.statuses == Counter({200: 30})


def test_replay_latency_comes_from_the_recorded_header() -> None:
    # recording.py stores latency in this response header; a server sending it stands in for a cassette
    server = ChatServer()
    original = server._handle

    async def with_latency_header(request):  # type: ignore[no-untyped-def]
        response = await original(request)
        response.headers["x-evalsuite-latency-ms"] = "1234"
        return response

    server._handle = with_latency_header  # type: ignore[method-assign]  # routes bind it at start
    with server:
        [answer] = run(server, [chat("a")])
    assert answer.latency_s == pytest.approx(1.234)


def engine_run(server: ChatServer, batches: list[list[Call]], settings: EngineSettings = FAST,
               **job_options: object) -> tuple[list[list[Answer]], list[Job]]:
    """Each batch a Job submitted in order to one Engine, every answer awaited; the engine closed after."""
    async def main() -> tuple[list[list[Answer]], list[Job]]:
        engine = Engine(settings, guard=job_options.pop("guard", None))  # type: ignore[arg-type]
        try:
            sender = engine.sender_for(ModelSettings(base_url=server.base_url))
            jobs = [engine.submit(Job(calls, sender, **job_options)) for calls in batches]  # type: ignore[arg-type]
            return [await job.wait() for job in jobs], jobs
        finally:
            await engine.aclose()

    return asyncio.run(main())


def test_jobs_on_one_endpoint_share_its_concurrency() -> None:
    # The server holds each request until 4 have arrived: the two jobs' calls were in flight together, never more.
    with ChatServer(barrier=4, latency_s=0.02) as server:
        [first, second], _ = engine_run(server, [[chat(f"a{i}") for i in range(3)], [chat(f"b{i}") for i in range(3)]],
                                        EngineSettings(concurrency=4))
    assert all(a.ok for a in first + second)
    assert server.max_in_flight == 4


def test_the_job_submitted_first_is_answered_first() -> None:
    with ChatServer() as server:
        engine_run(server, [[chat(f"a{i}") for i in range(3)], [chat(f"b{i}") for i in range(3)]],
                   EngineSettings(concurrency=1))
    assert tags_served(server) == ["a0#0", "a1#0", "a2#0", "b0#0", "b1#0", "b2#0"]


def test_stop_sends_nothing_more_and_answers_the_rest_interrupted() -> None:
    with ChatServer() as server:
        async def main() -> list[Answer]:
            engine = Engine(EngineSettings(concurrency=1))
            try:
                def on_answer(index: int, answer: Answer) -> None:
                    if index == 1:
                        engine.stop()

                job = engine.submit(Job([chat(f"e{i}") for i in range(10)],
                                        engine.sender_for(ModelSettings(base_url=server.base_url)), on_answer=on_answer))
                return await job.wait()
            finally:
                await engine.aclose()

        answers = asyncio.run(main())
    assert [a.ok for a in answers] == [True, True] + [False] * 8
    assert {a.error_kind for a in answers[2:]} == {"interrupted"}
    assert tags_served(server) == ["e0#0", "e1#0"]  # the calls waiting for the one slot were not sent either


def test_a_held_engine_sends_nothing_until_released() -> None:
    with ChatServer() as server:
        async def main() -> tuple[int, list[Answer]]:
            engine = Engine(EngineSettings(concurrency=2))
            try:
                await engine.hold()
                job = engine.submit(Job([chat(f"e{i}") for i in range(4)],
                                        engine.sender_for(ModelSettings(base_url=server.base_url))))
                await asyncio.sleep(0.2)
                received_while_held = server.received
                engine.release()
                return received_while_held, await job.wait()
            finally:
                await engine.aclose()

        received_while_held, answers = asyncio.run(main())
    assert received_while_held == 0 and all(a.ok for a in answers) and server.received == 4


def test_the_spend_guard_refuses_calls_past_its_limit_as_not_run() -> None:
    # prices of $1 per 1k input tokens: each call's prompt is ~3 tokens (estimated) and a little more (reported)
    guard = SpendGuard(0.011)
    with ChatServer() as server:
        [answers], _ = engine_run(server, [[chat(f"e{i}", text="say it now") for i in range(10)]],
                                  EngineSettings(concurrency=1), guard=guard, price=(1.0, 0.0))
    sent = [a for a in answers if a.ok]
    assert 0 < len(sent) < 10 and server.received == len(sent)
    assert answers[:len(sent)] == sent  # in order: once refused, nothing after is sent
    assert {a.error_kind for a in answers[len(sent):]} == {"not_run"}
    assert guard.spent == pytest.approx(sum(a.prompt_tokens for a in sent) / 1000)
    assert guard.reached_at == pytest.approx(guard.spent) and guard.reached_at <= 0.011 and guard.held == 0


def test_items_on_one_azure_deployment_with_another_api_or_auth_get_clients_of_their_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Azure's default API version depends on the API (responses needs a preview), and Entra and key auth build
    different clients: a session-wide engine must not hand one item's client to the other."""
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-test-key-0000")

    async def senders() -> list[object]:
        engine = Engine(EngineSettings())
        chat = ModelSettings(provider="azure_openai", name="dep1", base_url="http://127.0.0.1:9", api="chat")
        try:
            return [engine.sender_for(chat), engine.sender_for(chat.model_copy(update={"api": "responses"})),
                    engine.sender_for(chat.model_copy()), engine.sender_for(chat.model_copy(update={"auth": "entra"}))]
        finally:
            await engine.aclose()

    try:
        import azure.identity  # noqa: F401  # auth: entra needs it
    except ImportError:
        pytest.skip("azure-identity is not installed (evalsuite[azure])")
    chat, responses, chat_again, entra = asyncio.run(senders())
    assert chat is chat_again and responses is not chat and entra is not chat
