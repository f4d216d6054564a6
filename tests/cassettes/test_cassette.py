"""Cassette policy as a user meets it: the real openai SDK against the 127.0.0.1 chat server, real files."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import openai
import pytest

from evalsuite.cassettes import LATENCY_HEADER, is_not_recorded, not_recorded_reason, use_cassette
from evalsuite.records import Call
from tests._support.chat_server import ChatServer
from tests._support.cassette_calls import META, OFFLINE, Counting, ask, azure_client, call, headers, interactions, openai_client

# -- vcrpy still intercepts every client ----------------------------------------------------------


def test_guard_each_client_records_exactly_one_interaction(tmp_path: Path) -> None:
    with ChatServer() as server:
        with use_cassette(tmp_path / "sync.json", "once", metadata=META) as handle:
            assert ask(openai_client(server.base_url), call("e1", "sync")) == "sync"
        assert handle.n_recorded == 1

        async def async_call() -> str:
            async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
                c = call("e1", "async")
                response = await client.chat.completions.create(**c.body, extra_headers=headers(c))
                return response.choices[0].message.content

        with use_cassette(tmp_path / "async.json", "once", metadata=META):
            assert asyncio.run(async_call()) == "async"

        with use_cassette(tmp_path / "azure.json", "once", metadata=META):
            assert ask(azure_client(server.azure_endpoint, "dep1"), call("e1", "azure")) == "azure"
        assert len(server.requests) == 3
    for name in ("sync", "async", "azure"):
        assert len(interactions(tmp_path / f"{name}.json")) == 1


# -- record, then replay offline --------------------------------------------------------------


def test_replay_after_server_stopped_gives_identical_responses_and_recorded_latency(tmp_path: Path) -> None:
    path = tmp_path / "suite" / "item.json"
    calls = [call(f"e{i}", f"review {i}", logprobs=True) for i in range(5)]
    with ChatServer(latency_s=0.2) as server, use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        recorded = [client.chat.completions.create(**c.body, extra_headers=headers(c)).model_dump() for c in calls]
        completion = client.completions.create(model="instruct", prompt="say hi", logprobs=1).model_dump()

    with use_cassette(path, "none", metadata=META) as handle:
        client = openai_client(OFFLINE)
        raw = [client.chat.completions.with_raw_response.create(**c.body, extra_headers=headers(c)) for c in calls]
        assert [r.parse().model_dump() for r in raw] == recorded
        assert client.completions.create(model="instruct", prompt="say hi", logprobs=1).model_dump() == completion
    assert all(float(r.headers[LATENCY_HEADER]) >= 200 for r in raw)  # the recorded latency, not replay's
    assert (handle.n_interactions, handle.n_played, handle.n_recorded) == (6, 6, 0)


def test_changed_prompt_in_none_mode_is_not_recorded_and_opens_no_connection(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server:
        with use_cassette(path, "once", metadata=META):
            ask(openai_client(server.base_url), call("e1", "original prompt"))
        served = sum(server.statuses.values())
        with use_cassette(path, "none", metadata=META):
            with pytest.raises(Exception) as caught:
                ask(openai_client(server.base_url), call("e1", "edited prompt"))
        assert is_not_recorded(caught.value)
        assert sum(server.statuses.values()) == served  # the server saw nothing

    listener = socket.socket()  # and not even a TCP connection is attempted
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    with use_cassette(path, "none", metadata=META):
        client = openai_client(f"http://127.0.0.1:{listener.getsockname()[1]}/v1")
        with pytest.raises(Exception) as caught:
            ask(client, call("e1", "edited prompt"))
    assert is_not_recorded(caught.value)
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()


def test_not_recorded_reason_is_the_first_line_of_vcrpys_message_through_any_wrapper(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        ask(openai_client(server.base_url), call("e1", "original prompt"))
    with use_cassette(path, "none", metadata=META):
        with pytest.raises(Exception) as caught:
            ask(openai_client(OFFLINE), call("e1", "edited prompt"))
    reason = not_recorded_reason(caught.value)
    # vcrpy 9 starts "Can't play back this request", 8.x (Python 3.10) "Can't overwrite existing cassette"
    assert reason.startswith("Can't") and "\n" not in reason
    try:  # what an SDK or wrapper that wraps transport errors raises instead
        raise RuntimeError("connection error") from caught.value
    except RuntimeError as wrapped:
        assert is_not_recorded(wrapped) and not_recorded_reason(wrapped) == reason
    assert not is_not_recorded(ValueError("other")) and not_recorded_reason(ValueError("other")) == "other"


def test_repeats_replay_in_recorded_order_one_each(tmp_path: Path) -> None:
    path = tmp_path / "repeats.json"
    samples = [call("e1", "same prompt", sample=s, temperature=0.7) for s in range(3)]
    with ChatServer(Counting()) as server, use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        assert [ask(client, c) for c in samples] == ["answer 0", "answer 1", "answer 2"]
    with use_cassette(path, "none", metadata=META):
        client = openai_client(OFFLINE)
        assert [ask(client, c) for c in samples] == ["answer 0", "answer 1", "answer 2"]
        with pytest.raises(Exception) as caught:  # a 4th sample was never recorded
            ask(client, call("e1", "same prompt", sample=3, temperature=0.7))
        assert is_not_recorded(caught.value)
    with use_cassette(path, "none", metadata=META):  # sample k gets sample k's answer, any order
        client = openai_client(OFFLINE)
        assert [ask(client, c) for c in reversed(samples)] == ["answer 2", "answer 1", "answer 0"]



def record(path: Path, server: ChatServer, *calls: Call) -> None:
    """Record ``calls`` into a new cassette at ``path`` (mode once)."""
    with use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        for c in calls:
            ask(client, c)

# -- record modes -------------------------------------------------------------------------------


def test_rewrite_drops_unused_interactions_and_keeps_old_file_until_done(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer(Counting()) as server:
        record(path, server, call("a", "kept"), call("b", "removed from the case"))
        old = path.read_bytes()
        with use_cassette(path, "rewrite", metadata=META) as handle:
            assert ask(openai_client(server.base_url), call("a", "kept")) == "answer 2"  # re-recorded, not replayed
            assert path.read_bytes() == old
        assert handle.n_interactions == 1
    stored = interactions(path)
    assert [i["request"]["body_json"]["messages"][0]["content"] for i in stored] == ["kept"]
    assert stored[0]["response"]["body"]["json"]["choices"][0]["message"]["content"] == "answer 2"
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.jsonl"))


def test_rewrite_keeps_previous_recordings_of_examples_the_runner_asks_to_keep(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer(Counting()) as server:
        record(path, server, call("a#1", "first"), call("b", "second"))  # an example id holding '#' itself
        with use_cassette(path, "rewrite", metadata=META) as handle:
            ask(openai_client(server.base_url), call("b", "second"))
            handle.keep_previous({"a#1"})  # its call failed transiently this time
    assert [i["request"]["headers"]["x-evalsuite-example"] for i in interactions(path)] == [["a#1#0"], ["b#0"]]


def test_all_rerecords_what_was_sent_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer(Counting()) as server:
        record(path, server, call("a", "one"), call("b", "two"))
        with use_cassette(path, "all", metadata=META):
            assert ask(openai_client(server.base_url), call("b", "two")) == "answer 2"
    answers = [i["response"]["body"]["json"]["choices"][0]["message"]["content"] for i in interactions(path)]
    assert answers == ["answer 0", "answer 2"]


def test_stale_explains_changed_prompts_new_rows_and_dataset_changes(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    recorded = [call("e1", "first"), call("e2", "second")]
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        for c in recorded:
            ask(client, c)
    now = [call("e1", "first"), call("e2", "second, reworded"), call("e3", "third")]
    with use_cassette(path, "none", metadata={**META, "dataset_fingerprint": "fp-2"}) as handle:
        assert handle.recorded_metadata["dataset_fingerprint"] == "fp-1"
        assert handle.stale(now) == [
            "dataset changed: recorded fingerprint fp-1, now fp-2",
            "example e2: prompt changed since recording",
            "example e3: not in the cassette (new row)",
        ]
        assert handle.stale(recorded) == ["dataset changed: recorded fingerprint fp-1, now fp-2"]
        assert handle.stale([*recorded, call("e1", "first", sample=1)])[1:] == [
            "example e1: sample 1 not in the cassette (fewer repeats recorded)"
        ]


def test_invalid_mode_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="none, once, new_episodes, all, rewrite"):
        with use_cassette(tmp_path / "x.json", "replay", metadata=META):
            pass
