"""The cassette file and its journal: readable, never silently replaced, and kept through a kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from evalsuite.cassettes import CassetteError, use_cassette
from evalsuite.records import Call
from tests._support.chat_server import ChatServer
from tests._support.cassette_calls import META, OFFLINE, ask, call, interactions, openai_client

REPO = Path(__file__).resolve().parents[2]


def test_file_layout_is_readable_json_with_metadata(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        ask(openai_client(server.base_url), call("e1", "hi"))
    text = path.read_text()
    assert text.startswith('{\n  "interactions": [')  # indented, keys sorted
    stored = interactions(path)[0]
    assert stored["request"]["body_json"]["messages"] == [{"role": "user", "content": "hi"}]
    assert stored["response"]["body"]["json"]["choices"][0]["message"]["content"] == "hi"
    metadata = json.loads(text)["metadata"]
    assert {**META}.items() <= metadata.items() and {"evalsuite_version", "recorded_at"} <= metadata.keys()


def test_corrupt_cassette_is_a_clear_error_and_never_rerecorded(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    path.write_text('{"interactions": [ {"request": ')
    with ChatServer() as server:
        for mode in ("none", "once", "new_episodes"):
            with pytest.raises(CassetteError, match="item.json: cassette cannot be loaded"):
                with use_cassette(path, mode, metadata=META):
                    ask(openai_client(server.base_url), call("e1", "hi"))
        assert not server.requests
    assert path.read_text() == '{"interactions": [ {"request": '


def test_rewrite_replaces_a_corrupt_cassette(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    path.write_text("not json")
    with ChatServer() as server, use_cassette(path, "rewrite", metadata=META):
        ask(openai_client(server.base_url), call("e1", "hi"))
    assert len(interactions(path)) == 1


# -- crash safety and concurrency (real processes) --------------------------------------------------

RECORDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    import openai
    from evalsuite.cassettes import use_cassette
    base_url, path, n, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

    async def main():
        limit = asyncio.Semaphore(int(sys.argv[5]))
        async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as client:
            async def one(i):
                async with limit:
                    await client.chat.completions.create(
                        model="test-model", temperature=0, messages=[{"role": "user", "content": f"{prefix} {i}"}],
                        extra_headers={"x-evalsuite-example": f"{prefix}{i}#0", "x-evalsuite-sent-at": repr(time.time())})
            await asyncio.gather(*(one(i) for i in range(n)))

    with use_cassette(Path(path), "once", metadata={"dataset_fingerprint": "fp", "item_id": prefix}):
        asyncio.run(main())
    """
)


def recorder(base_url: str, path: Path, n: int, prefix: str, concurrency: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", RECORDER, base_url, str(path), str(n), prefix, str(concurrency)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_during_recording_keeps_what_was_recorded(tmp_path: Path) -> None:
    path = tmp_path / "suite" / "item.json"
    journal = path.with_name(path.name + ".journal.jsonl")
    with ChatServer(latency_s=0.05) as server:
        proc = recorder(server.base_url, path, 50, "row", 1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not journal.exists() or journal.read_bytes().count(b"\n") < 21):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not path.exists()  # killed before the normal save: only the journal holds the recordings
    kept = journal.read_bytes().count(b"\n") - 1
    assert 20 <= kept < 50

    with use_cassette(path, "none", metadata=META) as handle:
        assert handle.n_recovered == handle.n_interactions == kept
        client = openai_client(OFFLINE)
        for i in range(kept):  # recorded in order (concurrency 1): rows 0..kept-1 replay offline
            c = Call(f"row{i}", 0, "chat", {"model": "test-model", "temperature": 0,
                                             "messages": [{"role": "user", "content": f"row {i}"}]})
            assert ask(client, c) == f"row {i}"
    assert not journal.exists()
    assert len(interactions(path)) == kept


def test_two_processes_recording_cassettes_in_one_new_directory_lose_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "cassettes" / "suite"
    with ChatServer() as server:
        procs = [recorder(server.base_url, directory / f"{name}.json", 40, name, 8) for name in ("left", "right")]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err.decode()
    for name in ("left", "right"):
        stored = interactions(directory / f"{name}.json")
        assert sorted(i["request"]["headers"]["x-evalsuite-example"][0] for i in stored) == sorted(
            f"{name}{i}#0" for i in range(40)
        )
    assert sorted(p.name for p in directory.iterdir()) == ["left.json", "right.json"]


def test_interrupted_new_episodes_run_saves_what_it_recorded(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server:
        with use_cassette(path, "once", metadata=META):
            ask(openai_client(server.base_url), call("e1", "one"))
        with pytest.raises(KeyboardInterrupt):
            with use_cassette(path, "new_episodes", metadata=META):
                client = openai_client(server.base_url)
                ask(client, call("e1", "one"))  # replayed
                ask(client, call("e2", "two"))  # recorded
                raise KeyboardInterrupt
    assert [i["request"]["headers"]["x-evalsuite-example"] for i in interactions(path)] == [["e1#0"], ["e2#0"]]
    assert not path.with_name(path.name + ".journal.jsonl").exists()


def test_interrupted_all_run_replaces_only_what_it_rerecorded(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server:
        with use_cassette(path, "once", metadata=META):
            for c in (call("e1", "one"), call("e2", "two")):
                ask(openai_client(server.base_url), c)
        with pytest.raises(KeyboardInterrupt):
            with use_cassette(path, "all", metadata=META):
                ask(openai_client(server.base_url), call("e2", "two"))
                raise KeyboardInterrupt
    assert [i["request"]["headers"]["x-evalsuite-example"] for i in interactions(path)] == [["e1#0"], ["e2#0"]]
