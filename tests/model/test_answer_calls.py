"""The record-mode policy: the cassette answers what it holds from its index, the rest is sent live and recorded.

``answer`` is ``answer_calls``, which composes the public parts as the session scheduler does: ``recorded_answers``,
then the engine with the cassette's ``record`` on each live response; ``finish_cassette`` then keeps the previous
recordings of transient failures and saves.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import asdict

import orjson
import pytest

from evalsuite.cases.schema import ModelSettings
from evalsuite.cassettes import CassetteHandle, open_cassette, use_cassette
from evalsuite.model import (
    TRANSIENT_ERRORS,
    EngineSettings,
    answer_calls,
    finish_cassette,
    get_provider,
    recorded_answers,
    run_calls_sync,
)
from evalsuite.records import Answer, Call
from tests._support.chat_server import ChatServer, echo_responder

FAST = EngineSettings(concurrency=8, backoff_base=0.01, backoff_cap=0.05)
LATENCY_HEADER = "x-evalsuite-latency-ms"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for name in ("OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def chat(example_id: str, sample: int = 0, text: str | None = None, **params: object) -> Call:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text or f"say {example_id}"}], **params}
    return Call(example_id, sample, "chat", body)


def answer(calls: list[Call], model: ModelSettings, handle: CassetteHandle,
           settings: EngineSettings = FAST) -> list[Answer]:
    """One batch's answers as the scheduler gets an item's (the cassette saved by the caller)."""
    return answer_calls(calls, model, handle, get_provider(model.provider).endpoint(model), settings=settings)


def opened(path, mode: str) -> CassetteHandle:
    return open_cassette(path, mode, metadata={})


def test_recorded_answers_replay_the_same_from_the_index_as_through_the_sdk_and_vcrpy(tmp_path) -> None:
    served = itertools.count()

    def different_every_call(body: dict) -> str:  # repeats of one request get different answers
        return f"{echo_responder(body)} n{next(served)}"

    calls = [
        chat("a"),
        chat("b", logprobs=True),
        Call("c", 0, "completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "one two", "logprobs": 1}),
        *[chat("r", s, temperature=1) for s in range(3)],
    ]
    cassette = tmp_path / "c.json"
    with ChatServer(different_every_call) as server:
        model = ModelSettings(base_url=server.base_url)
        handle = opened(cassette, "once")
        live = answer(calls, model, handle)
        handle.save()
    assert all(a.ok for a in live) and len({a.text for a in live}) == len(calls)

    with use_cassette(cassette, "none", metadata={}) as handle:  # server stopped: SDK + vcrpy's transport stubs
        via_sdk = run_calls_sync(calls, model, settings=FAST)
    assert handle.n_played == len(calls) and handle.n_recorded == 0

    by_api: dict[str, list[int]] = {}
    for index, call in enumerate(calls):
        by_api.setdefault(call.api, []).append(index)
    direct: list[Answer | None] = [None] * len(calls)
    handle = opened(cassette, "none")
    for api, indices in by_api.items():
        answers = answer([calls[i] for i in indices], ModelSettings(api=api), handle)
        for i, one in zip(indices, answers):
            direct[i] = one

    assert [asdict(a) for a in direct] == [asdict(a) for a in via_sdk]  # every field, latency included
    recorded_ms = {i["request"]["headers"]["x-evalsuite-example"][0]: float(i["response"]["headers"][LATENCY_HEADER][0])
                   for i in orjson.loads(cassette.read_bytes())["interactions"]}
    for one in direct:
        assert one.latency_s == pytest.approx(recorded_ms[f"{one.example_id}#{one.sample}"] / 1000)
    live_fields = [{**asdict(a), "latency_s": None} for a in live]
    assert [{**asdict(a), "latency_s": None} for a in direct] == live_fields  # text, logprobs, usage, sample order
    b, c = direct[1], direct[2]
    assert b.token_logprobs and c.token_logprobs and b.system_fingerprint == "fp_test" and c.finish_reason == "stop"
    assert [a.text for a in direct[3:]] == [a.text for a in live[3:]]  # sample k replays sample k's answer

    changed = [chat("a", text="say a, differently"), *[chat("r", s, temperature=1) for s in range(4)]]
    handle = opened(cassette, "none")  # a changed prompt; one sample more than recorded
    replayed = answer(changed, ModelSettings(), handle)
    assert [a.error_kind for a in replayed] == ["not_recorded", None, None, None, "not_recorded"]
    assert [a.text for a in replayed[1:4]] == [a.text for a in live[3:]] and handle.n_played == 3


def test_a_rewrite_keeps_the_old_recordings_of_calls_that_failed_transiently(tmp_path) -> None:
    calls = [chat("a"), chat("b")]
    cassette = tmp_path / "c.json"
    with ChatServer() as server:
        model = ModelSettings(base_url=server.base_url)
        handle = opened(cassette, "once")
        recorded = answer(calls, model, handle)
        handle.save()
    handle = opened(cassette, "rewrite")  # server gone: connection errors only
    failed = answer(calls, model, handle, EngineSettings(max_retries=0))
    finish_cassette(handle, calls, failed)
    assert Counter(a.error_kind for a in failed) == Counter({"connection": 2})
    with ChatServer(fault="401") as refusing:
        # A wrong key says nothing about the prompts either: what it answered must not erase what was recorded.
        handle = opened(cassette, "rewrite")
        denied = answer(calls, ModelSettings(base_url=refusing.base_url), handle)
        finish_cassette(handle, calls, denied)
    assert {a.error_kind for a in denied} == {"endpoint"}
    replayed = answer(calls, ModelSettings(), opened(cassette, "none"))
    assert [a.text for a in replayed] == [a.text for a in recorded] == ["say a", "say b"]


def test_replay_uses_the_provider_endpoint_and_needs_no_credentials(tmp_path, monkeypatch) -> None:
    cassette = tmp_path / "c.json"
    calls = [chat("a")]
    with ChatServer() as server:
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-secret")
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
        azure = ModelSettings(provider="azure_openai", name="dep1")
        handle = opened(cassette, "once")
        [live] = answer(calls, azure, handle)
        handle.save()
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY"):
        monkeypatch.delenv(name)
    handle = opened(cassette, "none")
    [replayed] = answer(calls, azure, handle)
    [other_deployment] = answer(calls, azure.model_copy(update={"name": "dep2"}), handle)
    [plain_openai] = answer(calls, ModelSettings(), handle)
    assert live.ok and replayed.text == live.text == "say a"
    assert other_deployment.error_kind == plain_openai.error_kind == "not_recorded"


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def responses_call(example_id: str, text: str, **params: object) -> Call:
    body = {"model": "dep1", "input": [{"role": "user", "content": text}], "store": False, **params}
    return Call(example_id, 0, "responses", body)


@pytest.mark.parametrize("provider", ["openai", "azure_openai"])
def test_tool_calls_and_responses_replay_identically_from_the_index_and_through_the_sdk(
    tmp_path, monkeypatch, provider: str
) -> None:
    """The wire reader turns a recorded body into the same Answer as the live one, on both replay paths."""
    responses_tool = {"type": "function", **WEATHER["function"]}
    calls = [responses_call("r1", "Paris", include=["message.output_text.logprobs"]),
             responses_call("r2", "Oslo", tools=[responses_tool], tool_choice="required"),
             responses_call("r3", "one two three four", max_output_tokens=2)]
    chats = [chat("c1", text="Lima", tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}})]
    cassette = tmp_path / "c.json"
    with ChatServer() as server:
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-secret")
        base = {"base_url": server.azure_endpoint} if provider == "azure_openai" else {"base_url": server.base_url}
        model = ModelSettings(provider=provider, name="dep1", api="responses", **base)
        handle = opened(cassette, "once")
        live = answer(calls, model, handle)
        if provider == "openai":
            live += answer(chats, model.model_copy(update={"api": "chat"}), handle)
        handle.save()
        assert all(body["store"] is False for body in server.requests if "input" in body)
    assert all(a.ok for a in live)
    assert [a.text for a in live[:3]] == ["Paris", None, "one two"]
    assert live[0].token_logprobs and live[2].finish_reason == "length" and live[0].finish_reason == "stop"
    assert live[1].tool_calls == [{"name": "get_weather", "arguments": '{"city": "Oslo"}'}]
    if provider == "openai":
        assert live[3].tool_calls == [{"name": "get_weather", "arguments": '{"city": "Lima"}'}]

    monkeypatch.delenv("AZURE_OPENAI_API_KEY")  # replay needs no credentials
    chat_model = model.model_copy(update={"api": "chat"})
    def replay_client(settings: ModelSettings):  # the provider's replay client: no key needed
        return lambda: get_provider(provider).client(settings, replay=True)

    with use_cassette(cassette, "none", metadata={}) as handle:  # through the SDK and vcrpy's transport stubs
        via_sdk = run_calls_sync(calls, replay_client(model), settings=FAST)
        if provider == "openai":
            via_sdk += run_calls_sync(chats, replay_client(chat_model), settings=FAST)
    handle = opened(cassette, "none")  # straight from the index
    direct = answer(calls, model, handle) + (answer(chats, chat_model, handle) if provider == "openai" else [])
    assert [asdict(a) for a in direct] == [asdict(a) for a in via_sdk]
    assert [{**asdict(a), "latency_s": None} for a in direct] == [{**asdict(a), "latency_s": None} for a in live]
