"""The cassette file and its journal: readable, never silently replaced, and kept through a kill -9."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evalsuite._util.atomic import WHOLE_FILE_ENV
from evalsuite.cassettes import CassetteError, use_cassette
from evalsuite.cassettes._format import ShapeError, load, validate
from evalsuite.cassettes._journal import Journal, journal_path
from evalsuite.errors import WriteError
from evalsuite.records import Call
from tests._support.chat_server import ChatServer, sentiment_responder
from tests._support.cassette_calls import META, OFFLINE, ask, call, interactions, openai_client
from tests._support.project import make_project, run
from tests._support.volume import refusing

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


def killed_while_recording(path: Path, journal: Path, lines: int) -> subprocess.Popen[bytes]:
    """A recorder of 50 calls SIGKILLed once its journal holds ``lines`` lines (its header and the recordings)."""
    with ChatServer(latency_s=0.05) as server:
        proc = recorder(server.base_url, path, 50, "row", 1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not journal.exists() or journal.read_bytes().count(b"\n") < lines):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc


def test_kill_during_recording_keeps_what_was_recorded(tmp_path: Path) -> None:
    path = tmp_path / "suite" / "item.json"
    journal = path.with_name(path.name + ".journal.jsonl")
    proc = killed_while_recording(path, journal, lines=21)
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


# -- wrong-shape cassettes and refused writes ---------------------------------------------------------


def _recorded(tmp_path: Path, name: str = "item.json") -> Path:
    path = tmp_path / name
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        client = openai_client(server.base_url)
        ask(client, call("e1", "hi"))
        ask(client, call("e2", "there"))
    return path


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> bytes:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))
    return path.read_bytes()


WRONG_SHAPES: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (lambda d: d["interactions"].__setitem__(1, "oops"), "interaction 1: expected an object with 'request' and 'response', "
                                                         "got str 'oops'"),
    (lambda d: d["interactions"][0]["response"]["status"].__setitem__("code", "200"),
     "interaction 0: response.status.code: expected an integer HTTP status, e.g. 200, got str '200'"),
    (lambda d: d["interactions"][1]["request"].pop("body_json"),
     "interaction 1: request: expected exactly one of body_json, body, body_base64, found none"),
    (lambda d: d["interactions"][0]["response"].__setitem__("headers", "content-type: json"),
     "interaction 0: response.headers: expected an object of header lists"),
    (lambda d: d.__setitem__("interactions", {"0": {}}), "interactions: expected a list of {request, response} objects"),
]


@pytest.mark.parametrize("change,where", WRONG_SHAPES)
def test_a_wrong_shape_cassette_names_file_interaction_and_field_and_sends_nothing(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], where: str
) -> None:
    path = _recorded(tmp_path)
    before = _edit(path, change)
    with ChatServer() as server:
        for mode in ("none", "once", "new_episodes", "all"):
            with pytest.raises(CassetteError) as error:
                with use_cassette(path, mode, metadata=META):
                    ask(openai_client(server.base_url), call("e1", "hi"))
            message = str(error.value)
            assert message.startswith(f"{path}: {where}"), message
            assert "--record-mode=rewrite" in message and "Nothing was sent and the file is unchanged" in message
        assert not server.requests
    assert path.read_bytes() == before


def _interaction(path: str, choice: dict[str, Any]) -> dict[str, Any]:
    return {
        "request": {"method": "POST", "uri": f"http://127.0.0.1:8080/v1/{path}", "headers": {}, "body_json": {}},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/json"], "x-evalsuite-latency-ms": ["352.7"]},
            "body": {"json": {"choices": [choice], "system_fingerprint": None,
                              "usage": {"prompt_tokens": 52, "completion_tokens": 2, "total_tokens": 54}}},
        },
    }


def _cassette() -> dict[str, Any]:
    """A legacy-completions interaction and a chat one with logprobs, as evalsuite records them."""
    return {"version": 1, "metadata": {}, "interactions": [
        _interaction("completions", {"finish_reason": "stop", "index": 0, "text": " positive",
                                     "logprobs": {"token_logprobs": [None, -0.5]}}),
        _interaction("chat/completions", {"finish_reason": "stop", "message": {"role": "assistant", "content": "hi"},
                                          "logprobs": {"content": [{"logprob": -0.1, "token": "hi"}]}}),
    ]}


def _body(d: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return d["interactions"][index]["response"]["body"]["json"]


WRONG_BODIES: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (lambda d: _body(d)["choices"][0].__setitem__("text", 5),
     "interaction 0: response.body.json.choices[0].text: expected a string or null, got int 5"),
    (lambda d: _body(d)["usage"].__setitem__("prompt_tokens", "a"),
     "interaction 0: response.body.json.usage.prompt_tokens: expected an integer token count or null, got str 'a'"),
    (lambda d: d["interactions"][1]["response"]["headers"].__setitem__("x-evalsuite-latency-ms", ["fast"]),
     "interaction 1: response.headers.x-evalsuite-latency-ms: expected milliseconds as a number, e.g. [\"352.7\"], "
     "got ['fast']"),
    (lambda d: _body(d).__setitem__("choices", "x"),
     "interaction 0: response.body.json.choices: expected a list of choice objects, got str 'x'"),
    (lambda d: d["interactions"][1]["response"]["status"].__setitem__("code", 404),
     "interaction 1: response.status.code: expected a 2xx status (evalsuite records only successful completions), "
     "got 404"),
    (lambda d: _body(d, 1)["choices"][0]["message"].__setitem__("content", ["hi"]),
     "interaction 1: response.body.json.choices[0].message.content: expected a string or null, got list ['hi']"),
    (lambda d: _body(d, 1)["choices"][0]["logprobs"]["content"][0].__setitem__("logprob", "-0.1"),
     "interaction 1: response.body.json.choices[0].logprobs.content[0].logprob: expected a number, got str '-0.1'"),
    (lambda d: _body(d)["choices"][0]["logprobs"]["token_logprobs"].__setitem__(1, True),
     "interaction 0: response.body.json.choices[0].logprobs.token_logprobs[1]: expected a number or null, got bool True"),
    (lambda d: _body(d, 1).__setitem__("system_fingerprint", 7),
     "interaction 1: response.body.json.system_fingerprint: expected a string or null, got int 7"),
    (lambda d: _body(d)["choices"][0].__setitem__("finish_reason", ["stop"]),
     "interaction 0: response.body.json.choices[0].finish_reason: expected a string or null, got list ['stop']"),
    (lambda d: d["interactions"][0]["response"].__setitem__("body", {"string": "<html>Sign in</html>"}),
     "interaction 0: response.body.string: expected a completion's JSON (evalsuite records only completions), "
     "got '<html>Sign in</html>'"),
]


def test_the_recorded_shapes_of_completions_and_chat_validate() -> None:
    validate(_cassette())
    nulls = _cassette()
    _body(nulls)["choices"][0].update(text=None, logprobs=None, finish_reason=None)
    _body(nulls, 1).update(usage=None, choices=[{"message": None}, {"message": {"content": None}}])
    del nulls["interactions"][0]["response"]["headers"]["x-evalsuite-latency-ms"]
    validate(nulls)


@pytest.mark.parametrize("change,where", WRONG_BODIES)
def test_a_hand_edited_response_body_value_names_interaction_and_field(
    change: Callable[[dict[str, Any]], None], where: str
) -> None:
    data = _cassette()
    change(data)
    with pytest.raises(ShapeError) as error:
        validate(data)
    assert str(error.value) == where


def test_a_hand_edited_body_value_is_a_cassette_error_with_the_fix_and_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    path.write_text(json.dumps(_cassette()))
    before = _edit(path, WRONG_BODIES[0][0])
    with pytest.raises(CassetteError) as error:
        load(path)
    assert str(error.value).startswith(f"{path}: {WRONG_BODIES[0][1]}. Nothing was sent and the file is unchanged.")
    assert "--record-mode=rewrite" in str(error.value) and path.read_bytes() == before


def test_a_wrong_shape_cassette_is_a_clear_pytest_failure_naming_the_file(pytester: pytest.Pytester) -> None:
    project = make_project(pytester)
    selected = ["cases", "-k", "t0"]  # the plain and terse items, at temperature 0 and 0.7
    with ChatServer(sentiment_responder) as server:
        assert run(project, *selected, "--record-mode=once", env={"OPENAI_BASE_URL": server.base_url,
                                                                     "OPENAI_API_KEY": "sk-x"}).returncode == 0
    folder = project.path / "cassettes" / "reviews"
    plain = _edit(folder / "sentiment[plain-t0].json", WRONG_SHAPES[1][0])
    terse = _edit(folder / "sentiment[terse-t0].json", WRONG_SHAPES[0][0])
    warm = _edit(folder / "sentiment[plain-t0.7].json",
                 lambda d: d["interactions"][0]["response"]["body"]["json"]["usage"].__setitem__("prompt_tokens", "a"))
    result = run(project, *selected, env={"OPENAI_BASE_URL": OFFLINE})
    assert result.returncode == 1
    out = " ".join(result.stdout.split())  # the terminal report wraps long lines
    assert "sentiment[plain-t0].json: interaction 0: response.status.code: expected an integer HTTP status" in out
    assert "sentiment[terse-t0].json: interaction 1: expected an object with 'request' and 'response'" in out
    assert ("sentiment[plain-t0.7].json: interaction 0: response.body.json.usage.prompt_tokens: expected an integer "
            "token count or null, got str 'a'") in out
    assert "Traceback" not in result.stdout and "has no attribute" not in result.stdout and "not supported" not in out
    assert (folder / "sentiment[plain-t0].json").read_bytes() == plain
    assert (folder / "sentiment[terse-t0].json").read_bytes() == terse
    assert (folder / "sentiment[plain-t0.7].json").read_bytes() == warm


def test_a_full_disk_keeps_the_previous_cassette_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _recorded(tmp_path)
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with ChatServer() as server:
        with pytest.raises(WriteError, match=r"item.json: cannot write the cassette: No space left on device \[ENOSPC\]; "
                                             "free disk space"):
            with use_cassette(path, "new_episodes", metadata=META):
                ask(openai_client(server.base_url), call("e3", "new"))
                monkeypatch.setattr(os, "fsync", full)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".item.json.*.tmp"))  # no temp file left behind
    with use_cassette(path, "none", metadata=META):  # the journal kept what was answered before the disk filled
        assert ask(openai_client(OFFLINE), call("e3", "new")) == "new"


def test_a_journal_write_refused_mid_recording_does_not_lose_the_answers(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    journal = Journal(path)
    path.with_name(path.name + ".journal.jsonl").mkdir()  # a folder where the journal file should go
    journal.append({"request": {}}, lambda: {})
    assert isinstance(journal.failure, WriteError) and "cannot write the cassette journal" in str(journal.failure)
    journal.append({"request": {}}, lambda: {})  # stays off, never raises into the HTTP transport


# -- cassettes on a Databricks Volume (no append, no rename): see tests/_support/volume.py -----------------


def _timeless(path: Path) -> list[dict[str, Any]]:
    """The interactions without the measured latency and the server's clock (what two recordings do not share)."""
    stored = interactions(path)
    for interaction in stored:
        interaction["response"]["headers"].pop("x-evalsuite-latency-ms", None)
        interaction["response"]["body"]["json"].pop("created", None)
    return stored


def test_recording_onto_a_volume_journals_locally_and_writes_the_cassette_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume, local = tmp_path / "volume", tmp_path / "local"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "localtmp"))
    monkeypatch.setenv(WHOLE_FILE_ENV, str(volume))
    path = volume / "cassettes" / "reviews" / "item.json"
    calls = [call(f"e{i}", f"review {i}") for i in range(5)]
    with ChatServer() as server:
        with refusing(volume) as ops, use_cassette(path, "once", metadata=META):
            client = openai_client(server.base_url)
            for c in calls:
                ask(client, c)
            journal = journal_path(path)
            assert journal.is_relative_to(tmp_path / "localtmp") and journal.read_bytes().count(b"\n") == 6
        with use_cassette(local / "item.json", "once", metadata=META):
            client = openai_client(server.base_url)
            for c in calls:
                ask(client, c)
    assert not ops.appends and not ops.renames and ops.written.count(str(path)) == 1  # besides the write check
    assert not journal.exists() and sorted(p.name for p in path.parent.iterdir()) == ["item.json"]
    assert _timeless(path) == _timeless(local / "item.json")
    with use_cassette(path, "none", metadata=META) as handle:  # and it replays
        assert handle.n_interactions == 5
        assert [ask(openai_client(OFFLINE), c) for c in calls] == [f"review {i}" for i in range(5)]


def test_a_recording_killed_on_a_volume_is_recovered_from_the_local_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume, localtmp = tmp_path / "volume", tmp_path / "localtmp"
    monkeypatch.setenv(WHOLE_FILE_ENV, str(volume))
    monkeypatch.setenv("TMPDIR", str(localtmp))  # the recorder's temp folder (tempfile reads it)
    monkeypatch.setattr(tempfile, "tempdir", str(localtmp))  # and this process's
    localtmp.mkdir()
    path = volume / "suite" / "item.json"
    journal = journal_path(path)
    assert journal.is_relative_to(localtmp)
    proc = killed_while_recording(path, journal, lines=11)
    assert not path.exists()  # killed before the save: only the local journal holds the recordings
    kept = journal.read_bytes().count(b"\n") - 1
    assert 10 <= kept < 50
    with refusing(volume) as ops, use_cassette(path, "none", metadata=META) as handle:
        assert handle.n_recovered == handle.n_interactions == kept
    assert not ops.appends and not ops.renames and ops.written == [str(path)]
    assert not journal.exists() and len(interactions(path)) == kept


def test_a_loaded_cassette_takes_about_the_memory_of_its_file(tmp_path: Path) -> None:
    """25k IMDB interactions (86 MB on disk) held 450 MB once loaded: each body orjson wrote back kept a 4-16 KB
    buffer. A 1.4 KB review and its answer now cost about their size."""
    import tracemalloc

    review = "A quiet, patient film about a lighthouse keeper and the storm that will not end. " * 17
    one = _interaction("chat/completions", {"finish_reason": "stop", "index": 0,
                                            "message": {"role": "assistant", "content": "Positive"}})
    data = {"version": 1, "metadata": {}, "interactions": []}
    for n in range(300):
        interaction = json.loads(json.dumps(one))
        interaction["request"]["body_json"] = {"model": "m", "messages": [{"role": "user", "content": f"{n} {review}"}]}
        data["interactions"].append(interaction)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data, indent=2))
    tracemalloc.start()
    try:
        requests, _, _ = load(path)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(requests) == 300 and requests[7].body.startswith(b'{"model":"m","messages":[{"role":"user","content":"7 A')
    assert held < 1.5 * path.stat().st_size
