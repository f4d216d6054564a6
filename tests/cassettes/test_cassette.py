"""Cassettes as a user meets them: the real openai SDK against the 127.0.0.1 chat server, real files."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from evalsuite.cassettes import _cassette as recording
from evalsuite.records import Call
from tests._support.chat_server import ChatServer

REPO = Path(__file__).resolve().parents[1]
META = {"dataset_fingerprint": "fp-1", "item_id": "sentiment"}


def call(example: str, text: str, sample: int = 0, **params: Any) -> Call:
    body = {"model": "test-model", "messages": [{"role": "user", "content": text}], "temperature": 0, **params}
    return Call(example, sample, "chat", body)


def headers(c: Call) -> dict[str, str]:
    return {"x-evalsuite-example": f"{c.example_id}#{c.sample}", "x-evalsuite-sent-at": repr(time.time())}


def ask(client: openai.OpenAI, c: Call) -> str:
    return client.chat.completions.create(**c.body, extra_headers=headers(c)).choices[0].message.content


def openai_client(base_url: str, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, **kw)


def interactions(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["interactions"]


class Counting:
    """A responder whose answer changes on every call, so replay order is visible."""

    def __init__(self) -> None:
        self.counter = itertools.count()

    def __call__(self, body: dict[str, Any]) -> str:
        return f"answer {next(self.counter)}"


# -- vcrpy still intercepts every client ----------------------------------------------------------


def test_guard_each_client_records_exactly_one_interaction(tmp_path: Path) -> None:
    with ChatServer() as server:
        with recording.use_cassette(tmp_path / "sync.json", "once", metadata=META) as handle:
            assert ask(openai_client(server.base_url), call("e1", "sync")) == "sync"
        assert handle.n_recorded == 1

        async def async_call() -> str:
            async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
                c = call("e1", "async")
                response = await client.chat.completions.create(**c.body, extra_headers=headers(c))
                return response.choices[0].message.content

        with recording.use_cassette(tmp_path / "async.json", "once", metadata=META):
            assert asyncio.run(async_call()) == "async"

        azure = openai.AzureOpenAI(
            azure_endpoint=server.azure_endpoint, api_key="azure-test", api_version="2024-10-21",
            azure_deployment="dep1", max_retries=0,
        )
        with recording.use_cassette(tmp_path / "azure.json", "once", metadata=META):
            assert ask(azure, call("e1", "azure")) == "azure"
        assert len(server.requests) == 3
    for name in ("sync", "async", "azure"):
        assert len(interactions(tmp_path / f"{name}.json")) == 1


# -- record, then replay offline --------------------------------------------------------------


def test_replay_after_server_stopped_gives_identical_responses_and_recorded_latency(tmp_path: Path) -> None:
    path = tmp_path / "suite" / "item.json"
    calls = [call(f"e{i}", f"review {i}", logprobs=True) for i in range(5)]
    with ChatServer(latency_s=0.2) as server, recording.use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        recorded = [client.chat.completions.create(**c.body, extra_headers=headers(c)).model_dump() for c in calls]
        completion = client.completions.create(model="instruct", prompt="say hi", logprobs=1).model_dump()

    with recording.use_cassette(path, "none", metadata=META) as handle:
        client = openai_client("http://127.0.0.1:9/v1")  # nothing listens there
        started = time.perf_counter()
        raw = [client.chat.completions.with_raw_response.create(**c.body, extra_headers=headers(c)) for c in calls]
        elapsed = time.perf_counter() - started
        assert [r.parse().model_dump() for r in raw] == recorded
        assert client.completions.create(model="instruct", prompt="say hi", logprobs=1).model_dump() == completion
    assert all(float(r.headers["x-evalsuite-latency-ms"]) >= 200 for r in raw)
    assert elapsed < 0.5  # replay never waits for the recorded latency
    assert (handle.n_interactions, handle.n_played, handle.n_recorded) == (6, 6, 0)


def test_changed_prompt_in_none_mode_is_not_recorded_and_opens_no_connection(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server:
        with recording.use_cassette(path, "once", metadata=META):
            ask(openai_client(server.base_url), call("e1", "original prompt"))
        served = sum(server.statuses.values())
        with recording.use_cassette(path, "none", metadata=META):
            with pytest.raises(Exception) as caught:
                ask(openai_client(server.base_url), call("e1", "edited prompt"))
        assert recording.is_not_recorded(caught.value)
        assert sum(server.statuses.values()) == served  # the server saw nothing

    listener = socket.socket()  # and not even a TCP connection is attempted
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    with recording.use_cassette(path, "none", metadata=META):
        client = openai_client(f"http://127.0.0.1:{listener.getsockname()[1]}/v1")
        with pytest.raises(Exception) as caught:
            ask(client, call("e1", "edited prompt"))
    assert recording.is_not_recorded(caught.value)
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()


def test_ignored_fields_and_number_formats_still_match(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer() as server, recording.use_cassette(path, "once", metadata=META):
        ask(openai_client(server.base_url), call("e1", "hello", max_tokens=5))
    with recording.use_cassette(path, "none", metadata=META):
        client = openai_client("http://127.0.0.1:9/v1")
        c = call("e1", "hello", max_tokens=5, temperature=0.0, user="someone", metadata={"run": "ci"}, n=1, store=False)
        assert ask(client, c) == "hello"


def test_azure_cassette_replays_against_another_host_and_api_version(tmp_path: Path) -> None:
    path = tmp_path / "azure.json"
    with ChatServer() as server, recording.use_cassette(path, "once", metadata=META):
        azure = openai.AzureOpenAI(
            azure_endpoint=server.azure_endpoint, api_key="azure-test", api_version="2024-10-21",
            azure_deployment="gpt4o-eu", max_retries=0,
        )
        assert ask(azure, call("e1", "bonjour")) == "bonjour"
    with recording.use_cassette(path, "none", metadata=META):
        elsewhere = openai.AzureOpenAI(
            azure_endpoint="https://other-resource.openai.azure.com", api_key="different", api_version="2025-01-01",
            azure_deployment="gpt4o-eu", max_retries=0,
        )
        assert ask(elsewhere, call("e1", "bonjour")) == "bonjour"
        other_deployment = openai.AzureOpenAI(
            azure_endpoint="https://other-resource.openai.azure.com", api_key="different", api_version="2025-01-01",
            azure_deployment="gpt35", max_retries=0,
        )
        with pytest.raises(Exception) as caught:
            ask(other_deployment, call("e1", "bonjour"))
        assert recording.is_not_recorded(caught.value)


def test_repeats_replay_in_recorded_order_one_each(tmp_path: Path) -> None:
    path = tmp_path / "repeats.json"
    samples = [call("e1", "same prompt", sample=s, temperature=0.7) for s in range(3)]
    with ChatServer(Counting()) as server, recording.use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        assert [ask(client, c) for c in samples] == ["answer 0", "answer 1", "answer 2"]
    with recording.use_cassette(path, "none", metadata=META):
        client = openai_client("http://127.0.0.1:9/v1")
        assert [ask(client, c) for c in samples] == ["answer 0", "answer 1", "answer 2"]
        with pytest.raises(Exception) as caught:  # a 4th sample was never recorded
            ask(client, call("e1", "same prompt", sample=3, temperature=0.7))
        assert recording.is_not_recorded(caught.value)
    with recording.use_cassette(path, "none", metadata=META):  # sample k gets sample k's answer, any order
        client = openai_client("http://127.0.0.1:9/v1")
        assert [ask(client, c) for c in reversed(samples)] == ["answer 2", "answer 1", "answer 0"]


def test_rate_limited_attempts_retried_by_the_caller_are_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "throttled.json"
    calls = [call(f"e{i}", f"text {i}") for i in range(8)]
    with ChatServer(rate_limit_fraction=0.5, retry_after_s=0, seed=3) as server:
        with recording.use_cassette(path, "once", metadata=META):
            client = openai_client(server.base_url)
            for c in calls:
                while True:
                    try:
                        ask(client, c)
                        break
                    except openai.RateLimitError:
                        continue
        assert server.statuses[429] > 0
    stored = interactions(path)
    assert len(stored) == len(calls)
    assert {i["response"]["status"]["code"] for i in stored} == {200}
    started = time.perf_counter()
    with recording.use_cassette(path, "none", metadata=META):
        client = openai_client("http://127.0.0.1:9/v1")
        assert [ask(client, c) for c in calls] == [f"text {i}" for i in range(8)]
    assert time.perf_counter() - started < 1


def test_secrets_are_found_nowhere_in_the_cassette_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "sk-canary-7f3a9c2e51"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-canary-88d1e0")
    with ChatServer() as server:
        with recording.use_cassette(tmp_path / "openai.json", "once", metadata=META):
            client = openai.OpenAI(
                base_url=server.base_url, api_key=os.environ["OPENAI_API_KEY"], max_retries=0, organization="org-canary-4411", project="proj-canary-9932",
                default_query={"key": "query-canary-1234"},
                default_headers={"x-trace": "Bearer tok-canary-88d1e0", "Cookie": "session=cookie-canary-55"},
            )
            ask(client, call("e1", "hi"))
        with recording.use_cassette(tmp_path / "azure.json", "once", metadata=META):
            azure = openai.AzureOpenAI(
                azure_endpoint=server.azure_endpoint, api_key="azure-canary-6622", api_version="2024-10-21",
                azure_deployment="dep1", max_retries=0, default_query={"api_key": "query-canary-1234"},
            )
            ask(azure, call("e1", "hi"))
    for path in (tmp_path / "openai.json", tmp_path / "azure.json"):
        data = path.read_bytes()
        for secret in (canary, "tok-canary", "org-canary", "proj-canary", "query-canary", "azure-canary",
                       "cookie-canary", "secret-cookie"):
            assert secret.encode() not in data, f"{secret} leaked into {path.name}"
        assert interactions(path)[0]["request"]["headers"]["x-evalsuite-example"] == ["e1#0"]
    with recording.use_cassette(tmp_path / "openai.json", "none", metadata=META):  # redaction keeps matching
        assert ask(openai_client("http://127.0.0.1:9/v1"), call("e1", "hi")) == "hi"


def test_rewrite_drops_unused_interactions_and_keeps_old_file_until_done(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    with ChatServer(Counting()) as server:
        with recording.use_cassette(path, "once", metadata=META):
            client = openai_client(server.base_url)
            ask(client, call("a", "kept"))
            ask(client, call("b", "removed from the case"))
        old = path.read_bytes()
        with recording.use_cassette(path, "rewrite", metadata=META) as handle:
            assert ask(openai_client(server.base_url), call("a", "kept")) == "answer 2"  # re-recorded, not replayed
            assert path.read_bytes() == old
        assert handle.n_interactions == 1
    stored = interactions(path)
    assert [i["request"]["body_json"]["messages"][0]["content"] for i in stored] == ["kept"]
    assert stored[0]["response"]["body"]["json"]["choices"][0]["message"]["content"] == "answer 2"
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.jsonl"))


def test_stale_explains_changed_prompts_new_rows_and_dataset_changes(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    recorded = [call("e1", "first"), call("e2", "second")]
    with ChatServer() as server, recording.use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        for c in recorded:
            ask(client, c)
    now = [call("e1", "first"), call("e2", "second, reworded"), call("e3", "third")]
    with recording.use_cassette(path, "none", metadata={**META, "dataset_fingerprint": "fp-2"}) as handle:
        assert handle.recorded_metadata["dataset_fingerprint"] == "fp-1"
        assert handle.stale(now) == [
            "dataset changed: recorded fingerprint fp-1, now fp-2",
            "example e2: prompt or parameters changed since recording",
            "example e3: not in the cassette (new row)",
        ]
        assert handle.stale(recorded) == ["dataset changed: recorded fingerprint fp-1, now fp-2"]


def test_corrupt_cassette_is_a_clear_error_and_never_rerecorded(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    path.write_text('{"interactions": [ {"request": ')
    with ChatServer() as server:
        for mode in ("none", "once", "new_episodes"):
            with pytest.raises(recording.CassetteError, match="item.json: cassette cannot be loaded"):
                with recording.use_cassette(path, mode, metadata=META):
                    ask(openai_client(server.base_url), call("e1", "hi"))
        assert not server.requests
    assert path.read_text() == '{"interactions": [ {"request": '


# -- crash safety and concurrency (real processes) --------------------------------------------------

RECORDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    import openai
    from evalsuite.cassettes import _cassette as recording
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

    with recording.use_cassette(Path(path), "once", metadata={"dataset_fingerprint": "fp", "item_id": prefix}):
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

    with recording.use_cassette(path, "none", metadata=META) as handle:
        assert handle.n_recovered == handle.n_interactions == kept
        client = openai_client("http://127.0.0.1:9/v1")
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
        with recording.use_cassette(path, "once", metadata=META):
            ask(openai_client(server.base_url), call("e1", "one"))
        with pytest.raises(KeyboardInterrupt):
            with recording.use_cassette(path, "new_episodes", metadata=META):
                client = openai_client(server.base_url)
                ask(client, call("e1", "one"))  # replayed
                ask(client, call("e2", "two"))  # recorded
                raise KeyboardInterrupt
    assert [i["request"]["headers"]["x-evalsuite-example"] for i in interactions(path)] == [["e1#0"], ["e2#0"]]
    assert not path.with_name(path.name + ".journal.jsonl").exists()


def test_invalid_mode_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="none, once, new_episodes, all, rewrite"):
        with recording.use_cassette(tmp_path / "x.json", "replay", metadata=META):
            pass
