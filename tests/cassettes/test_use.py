"""What a replay miss says, and what a cassette folder that cannot be written does."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.cassettes import use_cassette
from evalsuite.errors import WriteError
from evalsuite.records import Call
from tests._support.cassette_calls import META, ask, azure_client, call, headers, openai_client
from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.project import CANARY, make_project, run


def test_a_recording_for_another_endpoint_names_what_differs_and_the_recording_flags(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        ask(azure_client(server.azure_endpoint, "dep1"), call("e1", "hi"))
    now = [Call("e1", 0, "completions", {"model": "test-model", "prompt": "hi", "temperature": 0})]
    with use_cassette(path, "none", metadata=META) as handle:
        misses = handle.explain_misses(now, provider="openai", endpoint="completions")
    assert misses.lines == [
        "example e1: recorded for another endpoint (provider azure_openai -> openai, model dep1 -> test-model, "
        "api chat -> completions)"
    ]
    assert misses.recorded_with == ["--eval-model azure_openai:dep1 --eval-api chat"]


def test_a_changed_parameter_or_prompt_is_named(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        ask(client, call("e1", "hi"))
        ask(client, call("e2", "there"))
    now = [call("e1", "hi", temperature=0.7, seed=1), call("e2", "there, reworded")]
    with use_cassette(path, "none", metadata=META) as handle:
        misses = handle.explain_misses(now, provider="openai", endpoint="chat/completions")
    assert misses.lines == [
        "example e1: parameters changed since recording (seed unset -> 1, temperature 0 -> 0.7)",
        "example e2: prompt changed since recording",
    ]
    assert misses.recorded_with == []  # same endpoint: recording the missing calls mixes nothing


def test_a_switch_to_the_responses_api_and_a_changed_tool_list_are_named(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        ask(client, call("e1", "hi"))
        client.chat.completions.create(**call("e2", "Paris", tools=tools).body, extra_headers=headers(call("e2", "")))
    renamed = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    now = [Call("e1", 0, "responses", {"model": "test-model", "input": [{"role": "user", "content": "hi"}],
                                       "temperature": 0, "store": False}),
           call("e2", "Paris", tools=renamed)]
    with use_cassette(path, "none", metadata=META) as handle:
        responses = handle.explain_misses(now[:1], provider="openai", endpoint="responses")
        tool_list = handle.explain_misses(now[1:], provider="openai", endpoint="chat/completions")
    assert responses.lines == ["example e1: recorded for another endpoint (api chat -> responses)"]
    assert responses.recorded_with == ["--eval-api chat"]
    assert tool_list.lines == ["example e2: parameters changed since recording (tools)"]  # too long to print


def test_a_cassette_folder_that_cannot_be_written_fails_before_anything_is_sent(tmp_path: Path) -> None:
    """A path under a file fails for root too (chmod does not stop root)."""
    (tmp_path / "cassettes").write_text("a file where the folder should be")
    with ChatServer() as server:
        with pytest.raises(WriteError, match=r"cassettes/suite: cannot write the cassette folder \(nothing was sent\): "
                                             r".*\[(ENOTDIR|EEXIST)\]; a parent of this path is a file"):
            with use_cassette(tmp_path / "cassettes" / "suite" / "item.json", "once", metadata=META):
                ask(openai_client(server.base_url), call("e1", "hi"))
        assert not server.requests


def test_replaying_an_azure_recording_without_its_flags_says_how_to_replay_it(pytester: pytest.Pytester) -> None:
    """Issue 16 item 7: recorded with --eval-model azure_openai:<deployment>, replayed without it."""
    project = make_project(pytester)
    selected = ["cases", "-k", "plain and t0 and not t0.7"]
    with ChatServer(sentiment_responder) as server:
        env = {"AZURE_OPENAI_ENDPOINT": server.azure_endpoint, "AZURE_OPENAI_API_KEY": CANARY}
        live = run(project, *selected, "--record-mode=once", "--eval-model", "azure_openai:dep1", env=env)
        assert live.returncode == 0, live.stdout + live.stderr
    replay = run(project, *selected)
    assert replay.returncode == 1
    out = replay.stdout
    assert "recorded for another endpoint (provider azure_openai -> openai, model dep1 -> test-model)" in out, out
    assert "The cassette was recorded with --eval-model azure_openai:dep1" in out
    assert "--eval-model azure_openai:dep1\n" in out and "--record-mode=rewrite" in out
    assert "it would mix two endpoints in one cassette" in out
    assert "--record-mode=new_episodes\n" not in out and "Traceback" not in out


def test_a_cassette_holds_no_interactions_once_its_block_ends(tmp_path: Path) -> None:
    """vcrpy's patches keep the cassette object in reference cycles until a full garbage collection: the recording it
    held (180 MB for 25k interactions) is dropped when the block ends, so a session of many items or its reports
    never hold every cassette at once. Its counts stay readable."""
    import gc
    import weakref

    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        ask(openai_client(server.base_url), call("e1", "hi"))
    with use_cassette(path, "none", metadata=META) as handle:
        assert handle.play(call("e1", "hi"), "chat/completions") is not None
        [(request, _)] = handle._cassette.data
        recorded = weakref.ref(request)
        del request
    gc.collect()
    assert recorded() is None
    assert (handle.n_interactions, handle.n_played) == (1, 1)


def test_garbage_that_dies_while_a_cassette_is_in_use_is_still_collected(tmp_path: Path) -> None:
    """Loading freezes what is alive (collections during a 25k replay re-scanned it for a third of the time); the end
    of the block unfreezes it, so a reference cycle that died meanwhile is collected, not kept for the session."""
    import gc
    import weakref

    class Node:
        pass

    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        ask(openai_client(server.base_url), call("e1", "hi"))
    cycle = Node()
    cycle.itself = cycle  # type: ignore[attr-defined]
    alive = weakref.ref(cycle)
    with use_cassette(path, "none", metadata=META):
        assert gc.get_freeze_count() > 0
        del cycle
    gc.collect()
    assert alive() is None and gc.get_freeze_count() == 0
