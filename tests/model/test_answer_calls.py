"""The stage's door: mode none answers from the cassette's index, every other mode sends live."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import asdict

import orjson
import pytest

from evalsuite.cases.schema import ModelSettings
from evalsuite.cassettes import use_cassette
from evalsuite.model import EngineSettings, answer_calls
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


def test_direct_index_replay_gives_the_same_answers_as_replay_through_the_sdk(tmp_path) -> None:
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
        with use_cassette(cassette, "once", metadata={}) as handle:
            live = answer_calls(calls, model, handle, record_mode="once", settings=FAST)
    assert all(a.ok for a in live) and len({a.text for a in live}) == len(calls)

    with use_cassette(cassette, "new_episodes", metadata={}) as handle:  # server stopped: SDK + vcrpy transport
        via_sdk = answer_calls(calls, model, handle, record_mode="new_episodes", settings=FAST)
    assert handle.n_played == len(calls) and handle.n_recorded == 0

    by_api: dict[str, list[int]] = {}
    for index, call in enumerate(calls):
        by_api.setdefault(call.api, []).append(index)
    direct: list[Answer | None] = [None] * len(calls)
    with use_cassette(cassette, "none", metadata={}) as handle:
        for api, indices in by_api.items():
            answers = answer_calls([calls[i] for i in indices], ModelSettings(api=api), handle, record_mode="none")
            for i, answer in zip(indices, answers):
                direct[i] = answer

    assert [asdict(a) for a in direct] == [asdict(a) for a in via_sdk]  # every field, latency included
    recorded_ms = {i["request"]["headers"]["x-evalsuite-example"][0]: float(i["response"]["headers"][LATENCY_HEADER][0])
                   for i in orjson.loads(cassette.read_bytes())["interactions"]}
    for answer in direct:
        assert answer.latency_s == pytest.approx(recorded_ms[f"{answer.example_id}#{answer.sample}"] / 1000)
    live_fields = [{**asdict(a), "latency_s": None} for a in live]
    assert [{**asdict(a), "latency_s": None} for a in direct] == live_fields  # text, logprobs, usage, sample order
    b, c = direct[1], direct[2]
    assert b.token_logprobs and c.token_logprobs and b.system_fingerprint == "fp_test" and c.finish_reason == "stop"
    assert [a.text for a in direct[3:]] == [a.text for a in live[3:]]  # sample k replays sample k's answer

    changed = [chat("a", text="say a, differently"), *[chat("r", s, temperature=1) for s in range(4)]]
    with use_cassette(cassette, "none", metadata={}) as handle:  # a changed prompt; one sample more than recorded
        replayed = answer_calls(changed, ModelSettings(), handle, record_mode="none")
    assert [a.error_kind for a in replayed] == ["not_recorded", None, None, None, "not_recorded"]
    assert [a.text for a in replayed[1:4]] == [a.text for a in live[3:]] and handle.n_played == 3


def test_a_rewrite_keeps_the_old_recordings_of_calls_that_failed_transiently(tmp_path) -> None:
    calls = [chat("a"), chat("b")]
    cassette = tmp_path / "c.json"
    with ChatServer() as server:
        model = ModelSettings(base_url=server.base_url)
        with use_cassette(cassette, "once", metadata={}) as handle:
            recorded = answer_calls(calls, model, handle, record_mode="once", settings=FAST)
    with use_cassette(cassette, "rewrite", metadata={}) as handle:  # server gone: connection errors only
        failed = answer_calls(calls, model, handle, record_mode="rewrite", settings=EngineSettings(max_retries=0))
    assert Counter(a.error_kind for a in failed) == Counter({"connection": 2})
    with ChatServer(fault="401") as refusing, use_cassette(cassette, "rewrite", metadata={}) as handle:
        # A wrong key says nothing about the prompts either: what it answered must not erase what was recorded.
        denied = answer_calls(calls, ModelSettings(base_url=refusing.base_url), handle, record_mode="rewrite",
                              settings=FAST)
    assert {a.error_kind for a in denied} == {"endpoint"}
    with use_cassette(cassette, "none", metadata={}) as handle:
        replayed = answer_calls(calls, ModelSettings(), handle, record_mode="none")
    assert [a.text for a in replayed] == [a.text for a in recorded] == ["say a", "say b"]


def test_replay_uses_the_provider_endpoint_and_needs_no_credentials(tmp_path, monkeypatch) -> None:
    cassette = tmp_path / "c.json"
    calls = [chat("a")]
    with ChatServer() as server:
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-secret")
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
        azure = ModelSettings(provider="azure_openai", name="dep1")
        with use_cassette(cassette, "once", metadata={}) as handle:
            [live] = answer_calls(calls, azure, handle, record_mode="once", settings=FAST)
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY"):
        monkeypatch.delenv(name)
    with use_cassette(cassette, "none", metadata={}) as handle:
        [replayed] = answer_calls(calls, azure, handle, record_mode="none")
        [other_deployment] = answer_calls(calls, azure.model_copy(update={"name": "dep2"}), handle, record_mode="none")
        [plain_openai] = answer_calls(calls, ModelSettings(), handle, record_mode="none")
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
        with use_cassette(cassette, "once", metadata={}) as handle:
            live = answer_calls(calls, model, handle, record_mode="once", settings=FAST)
            if provider == "openai":
                live += answer_calls(chats, model.model_copy(update={"api": "chat"}), handle, record_mode="once",
                                     settings=FAST)
        assert all(body["store"] is False for body in server.requests if "input" in body)
    assert all(a.ok for a in live)
    assert [a.text for a in live[:3]] == ["Paris", None, "one two"]
    assert live[0].token_logprobs and live[2].finish_reason == "length" and live[0].finish_reason == "stop"
    assert live[1].tool_calls == [{"name": "get_weather", "arguments": '{"city": "Oslo"}'}]
    if provider == "openai":
        assert live[3].tool_calls == [{"name": "get_weather", "arguments": '{"city": "Lima"}'}]

    replayed = []
    for mode in ("new_episodes", "none"):  # through the SDK and vcrpy's transport, then straight from the index
        if mode == "none":
            monkeypatch.delenv("AZURE_OPENAI_API_KEY")  # replay needs no credentials
        with use_cassette(cassette, mode, metadata={}) as handle:
            answers = answer_calls(calls, model, handle, record_mode=mode, settings=FAST)
            if provider == "openai":
                answers += answer_calls(chats, model.model_copy(update={"api": "chat"}), handle, record_mode=mode,
                                        settings=FAST)
        replayed.append(answers)
    via_sdk, direct = replayed
    assert [asdict(a) for a in direct] == [asdict(a) for a in via_sdk]
    assert [{**asdict(a), "latency_s": None} for a in direct] == [{**asdict(a), "latency_s": None} for a in live]
