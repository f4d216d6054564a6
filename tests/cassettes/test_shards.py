"""Cassette shards (``engine: spark``): a retried task starts from what earlier attempts recorded, each request and
sample once; the driver merges shards through its cassette's redaction and filters, in the calls' order."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openai

from evalsuite.cassettes import (
    CassetteOptions,
    all_recorded,
    in_order,
    read_shard,
    seed_from_earlier_attempts,
    shard_path,
    use_cassette,
)
from evalsuite.cassettes._journal import journal_path
from evalsuite.cassettes._keys import BUILT_IN_KEYS
from tests._support.cassette_calls import META, Counting, ask, call, interactions, openai_client
from tests._support.chat_server import ChatServer


def tags(pairs: list) -> list[str]:
    return [BUILT_IN_KEYS.of_request(request).tag for request, _ in pairs]


def record(server: ChatServer, path: Path, *examples: str, killed: bool = False) -> None:
    """One task attempt recording ``examples`` into ``path``; ``killed``: the worker died before the save, so only
    its journal is left (what a SIGKILL leaves, written by the real journal)."""
    journal = journal_path(path)
    with use_cassette(path, "new_episodes", metadata=META):
        for example in examples:
            ask(openai_client(server.base_url), call(example, f"text of {example}"))
        if killed:
            shutil.copy(journal, journal.with_name("kept"))
    if killed:
        path.unlink()
        journal.with_name("kept").rename(journal)


def test_a_retry_replays_what_earlier_attempts_recorded_and_sends_only_the_rest(tmp_path: Path) -> None:
    with ChatServer(Counting()) as server:
        record(server, shard_path(tmp_path, 3, 7), "e1", "e2")
        record(server, shard_path(tmp_path, 3, 9), "e2", "e3", killed=True)  # e2 again: a speculative copy's
        record(server, shard_path(tmp_path, 4, 8), "e9")  # another partition: not this task's
        assert server.received == 5
        retry = shard_path(tmp_path, 3, 12)
        assert seed_from_earlier_attempts(retry, META) == 3
        record(server, retry, "e1", "e2", "e3", "e4")
        assert server.received == 6  # only e4 was sent
    shard = read_shard(retry)
    assert sorted(tags(shard)) == ["e1#0", "e2#0", "e3#0", "e4#0"]
    answers = {tag: json.loads(r["body"]["string"])["choices"][0]["message"]["content"]
               for tag, (_, r) in zip(tags(shard), shard)}
    assert answers["e2#0"] == "answer 2"  # the latest attempt's recording of e2 (attempt 7 got answer 1)
    assert sorted(tags(all_recorded(tmp_path))) == ["e1#0", "e2#0", "e3#0", "e4#0", "e9#0"]


def test_a_shard_saved_with_its_journal_still_there_is_read_once(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 0, 1)
    with ChatServer() as server:
        record(server, path, "e1", "e2")
    journal_path(path).write_text(json.dumps({"journal": 1, "mode": "new_episodes"}) + "\n"
                                  + "".join(json.dumps(i) + "\n" for i in interactions(path)))  # died before removing it
    assert sorted(tags(read_shard(path))) == ["e1#0", "e2#0"]


def test_merged_interactions_go_through_the_cassettes_filters_in_the_calls_order(tmp_path: Path) -> None:
    shard = shard_path(tmp_path / "run", 0, 1)
    with ChatServer() as server:
        record(server, shard, "e2", "e1", "e3")

    def mask(response: dict) -> dict:
        return {**response, "body": {"string": response["body"]["string"].replace(b"text of", b"masked")}}

    def drop_e3(request):
        return None if request.headers.get("x-evalsuite-example") == "e3#0" else request

    cassette_path = tmp_path / "item.json"
    options = CassetteOptions(before_record_response=[mask], before_record_request=[drop_e3])
    with use_cassette(cassette_path, "once", metadata=META, options=options) as cassette:
        cassette.adopt(in_order(read_shard(shard), ["e1#0", "e2#0", "e3#0"]))
        assert cassette.n_recorded == 2
    stored = interactions(cassette_path)
    assert [i["request"]["headers"]["x-evalsuite-example"] for i in stored] == [["e1#0"], ["e2#0"]]
    assert [i["response"]["body"]["json"]["choices"][0]["message"]["content"] for i in stored] == ["masked e1",
                                                                                                   "masked e2"]


def test_merging_a_shard_stores_exactly_what_the_task_stored(tmp_path: Path, monkeypatch) -> None:
    """Redaction runs again on the driver and changes nothing already redacted (the "[REDACTED]" credential
    headers are not learned as secrets), while the task's redaction of the environment's key stays."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-shard-key-42")
    shard = shard_path(tmp_path / "run", 0, 1)
    with ChatServer() as server, use_cassette(shard, "new_episodes", metadata=META):
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-shard-key-42", max_retries=0)
        ask(client, call("e1", "a [REDACTED] word and the key sk-test-shard-key-42"))
    with use_cassette(tmp_path / "item.json", "once", metadata=META) as cassette:
        cassette.adopt(read_shard(shard))
    merged, recorded = interactions(tmp_path / "item.json"), interactions(shard)
    assert merged == recorded
    assert merged[0]["request"]["body_json"]["messages"][0]["content"] == \
        "a [REDACTED] word and the key [REDACTED:OPENAI_API_KEY]"
