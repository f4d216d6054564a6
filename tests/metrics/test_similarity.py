"""``semantic_similarity`` against the 127.0.0.1 server's /v1/embeddings: values, its cassette, replay, threshold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalsuite import runner
from evalsuite.cases import load_suite
from evalsuite.errors import CaseFileError, NotRecorded
from evalsuite.records import ItemResult
from tests._support.chat_server import ChatServer, echo_responder, embed
from tests._support.metric_calls import SIMILARITY_ROWS, similarity_project as project

KEY = "sk-similarity-secret-0123456789"
ROWS = SIMILARITY_ROWS


def run(root: Path, mode: str = "none") -> ItemResult:
    [case_run] = load_suite(root / "cases" / "similar.yaml", root)
    return runner.run_item(case_run, runner.RunSettings.from_options({"rootdir": root, "record_mode": mode}))


def record(root: Path, monkeypatch: pytest.MonkeyPatch, **server: Any) -> tuple[ItemResult, ChatServer]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ChatServer(echo_responder, **server) as chat:
        monkeypatch.setenv("OPENAI_BASE_URL", chat.base_url)
        result = run(root, "once")
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    return result, chat


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def values(result: ItemResult) -> dict[str, Any]:
    return {r.example_id: r.scores["semantic_similarity"] for r in result.records}


def test_cosine_of_the_answer_and_reference_embeddings_recorded_and_replayed(tmp_path: Path, monkeypatch) -> None:
    project(tmp_path)
    live, server = record(tmp_path, monkeypatch)
    expected = {i: cosine(embed(t), embed(e)) for i, t, e in ROWS}  # the model under test echoes the text
    assert values(live) == pytest.approx(expected)
    assert expected["s1"] > 0.5 > expected["s3"]
    [metric] = live.metrics
    assert metric.kind == "mean" and metric.interval == "bootstrap" and metric.value == pytest.approx(np.mean(list(expected.values())))
    embedded = [body for body, path in zip(server.requests, server.paths) if path == "/v1/embeddings"]
    assert sorted(b["input"][0] for b in embedded) == sorted(t for _, t, _ in ROWS)
    assert all(b == {"model": "embedder", "input": b["input"], "encoding_format": "float"} for b in embedded)
    folder = tmp_path / "cassettes" / "similar"
    assert sorted(p.name for p in folder.iterdir()) == ["summaries.json", "summaries@semantic_similarity.json"]
    stored = (folder / "summaries@semantic_similarity.json").read_text()
    assert KEY not in stored and json.loads(stored)["interactions"][0]["request"]["uri"].endswith("/v1/embeddings")
    assert live.meta["model_calls"]["semantic_similarity"]["cassette"] == "cassettes/similar/summaries@semantic_similarity.json"

    replayed = run(tmp_path)  # offline: no server, no key
    assert values(replayed) == values(live) and replayed.metrics[0].value == metric.value


def test_a_similarity_under_min_fails_the_item(tmp_path: Path, monkeypatch) -> None:
    project(tmp_path, "{model: {name: embedder}, min: 0.9}")
    live, _ = record(tmp_path, monkeypatch)
    assert not live.passed and live.metrics[0].verdict == "fail"
    assert live.message.splitlines()[1].startswith("  semantic_similarity: ")


def test_per_token_vectors_are_mean_pooled(tmp_path: Path, monkeypatch) -> None:
    """llama.cpp's server answers one vector per token for a model without pooling."""
    project(tmp_path)
    live, _ = record(tmp_path, monkeypatch, per_token_embeddings=True)

    def pooled(text: str) -> list[float]:
        return list(np.mean([embed(word) for word in text.split()], axis=0))

    assert values(live) == pytest.approx({i: cosine(pooled(t), pooled(e)) for i, t, e in ROWS})


def test_a_changed_embedding_model_is_not_recorded_and_the_item_still_replays(tmp_path: Path, monkeypatch) -> None:
    path = project(tmp_path)
    record(tmp_path, monkeypatch)
    path.write_text(path.read_text().replace("name: embedder", "name: embedder-v2"))
    with pytest.raises(NotRecorded) as missed:
        run(tmp_path)
    message = str(missed.value)
    assert message.startswith("summaries: semantic_similarity: 3 embeddings call(s) not recorded in "
                              "cassettes/similar/summaries@semantic_similarity.json")
    assert "model embedder -> embedder-v2" in message and "--eval-rejudge" in message


def test_an_empty_answer_scores_zero_without_a_call(tmp_path: Path, monkeypatch) -> None:
    project(tmp_path, rows=[("e1", "", "some reference"), ("e2", "same words", "same words")])
    live, server = record(tmp_path, monkeypatch)
    assert values(live) == pytest.approx({"e1": 0.0, "e2": 1.0})
    assert server.paths.count("/v1/embeddings") == 1


@pytest.mark.parametrize(("metric", "message"), [
    ("{min: 0.5}", "semantic_similarity: parameter 'model' is required"),
    ("{model: {nme: x}}", "semantic_similarity: model.nme: Extra inputs are not permitted"),
    ("{model: {name: x}, min: 2}", "metrics.semantic_similarity.min: 2 is outside -1..1"),
])
def test_bad_settings_fail_at_load_time(tmp_path: Path, metric: str, message: str) -> None:
    project(tmp_path, metric)
    with pytest.raises(CaseFileError, match=message.replace(".", r"\.")):
        load_suite(tmp_path / "cases" / "similar.yaml", tmp_path)
