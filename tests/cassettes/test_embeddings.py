"""Embeddings responses in a cassette: kept by the recording filter, checked field by field when loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsuite import runner
from evalsuite.cases import load_suite
from evalsuite.cassettes import CassetteError
from tests._support.chat_server import ChatServer, echo_responder
from tests._support.metric_calls import similarity_project


def record(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    similarity_project(root)
    [case_run] = load_suite(root / "cases" / "similar.yaml", root)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    with ChatServer(echo_responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        runner.run_item(case_run, runner.RunSettings(rootdir=root, record_mode="once"))
    return root / "cassettes" / "similar" / "summaries@semantic_similarity.json"


def test_an_embeddings_response_is_recorded_readable(tmp_path: Path, monkeypatch) -> None:
    stored = json.loads(record(tmp_path, monkeypatch).read_text())["interactions"]
    assert len(stored) == 3
    body = stored[0]["response"]["body"]["json"]
    assert [item["index"] for item in body["data"]] == [0, 1] and len(body["data"][0]["embedding"]) == 32
    assert body["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize(("edit", "field", "problem"), [
    (lambda body: body["data"][0].update(embedding=[0.1, "x"]), "data[0].embedding", "found str 'x'"),
    (lambda body: body["data"][1].update(embedding=[]), "data[1].embedding", "a non-empty list of numbers"),
    (lambda body: body["data"][0].update(index="0"), "data[0].index", "expected an integer"),
    (lambda body: body["usage"].update(prompt_tokens=1.5), "usage.prompt_tokens", "expected an integer token count"),
])
def test_a_hand_edited_embedding_names_the_interaction_and_field(tmp_path: Path, monkeypatch, edit, field: str,
                                                                 problem: str) -> None:
    path = record(tmp_path, monkeypatch)
    data = json.loads(path.read_text())
    edit(data["interactions"][2]["response"]["body"]["json"])
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    [case_run] = load_suite(tmp_path / "cases" / "similar.yaml", tmp_path)
    with pytest.raises(CassetteError) as raised:
        runner.run_item(case_run, runner.RunSettings(rootdir=tmp_path))
    message = str(raised.value)
    assert f"interaction 2: response.body.json.{field}: " in message and problem in message
    assert "--record-mode=rewrite" in message and path.read_bytes() == before
