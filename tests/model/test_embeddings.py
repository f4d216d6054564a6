"""The embeddings call kind through the engine: sent to the provider's embeddings endpoint, replayed from the index."""

from __future__ import annotations

from pathlib import Path

from evalsuite import runner
from evalsuite.cases import load_suite
from evalsuite.cases.schema import ModelSettings
from evalsuite.model import run_calls_sync
from evalsuite.model._embeddings import embeddings_call, embeddings_endpoint
from evalsuite.model._wire import recorded_answer
from tests._support.chat_server import ChatServer, echo_responder, embed
from tests._support.metric_calls import similarity_project


def test_embeddings_calls_go_to_the_embeddings_endpoint_and_answer_one_vector_per_input(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
    with ChatServer() as server:
        model = ModelSettings(name="embedder", base_url=server.base_url)
        calls = [embeddings_call("e1", 0, ["a cat", "a dog"], model), embeddings_call("e2", 0, ["rain"], model)]
        answers = run_calls_sync(calls, model)
    assert server.paths == ["/v1/embeddings"] * 2
    assert [a.embeddings for a in answers] == [[embed("a cat"), embed("a dog")], [embed("rain")]]
    assert [a.prompt_tokens for a in answers] == [4, 1] and all(a.ok and a.text is None for a in answers)


def test_a_body_that_is_not_an_embeddings_list_is_an_api_error_naming_what_came() -> None:
    """The one reader of live and recorded bodies: a completion where vectors were expected is no vector."""
    call = embeddings_call("e1", 0, ["x"], ModelSettings(name="embedder"))
    completion = {"status": {"code": 200, "message": "OK"}, "headers": {},
                  "body": {"string": b'{"choices": [{"text": "hi"}]}'}}
    answer = recorded_answer(call, completion)
    assert answer.error_kind == "api" and answer.embeddings is None
    assert answer.error == ("the endpoint answered HTTP 200 with JSON that is not an embeddings list (no 'data' list "
                            """of embeddings): '{"choices": [{"text": "hi"}]}'""")


def test_azure_embeddings_go_to_the_deployment_and_replay_offline(tmp_path: Path, monkeypatch) -> None:
    assert embeddings_endpoint(ModelSettings(provider="azure_openai", name="emb")) == "deployments/emb/embeddings"
    with ChatServer(echo_responder) as server:
        metric = (f"{{model: {{provider: azure_openai, name: emb-3, base_url: '{server.azure_endpoint}', "
                  "api_version: '2024-10-21'}}")
        similarity_project(tmp_path, metric)
        [case_run] = load_suite(tmp_path / "cases" / "similar.yaml", tmp_path)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0000")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-0123456789")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        live = runner.run_item(case_run, runner.RunSettings(rootdir=tmp_path, record_mode="once"))
    assert server.paths.count("/openai/deployments/emb-3/embeddings") == 3
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name)
    replayed = runner.run_item(case_run, runner.RunSettings(rootdir=tmp_path))
    assert [r.scores for r in replayed.records] == [r.scores for r in live.records]
