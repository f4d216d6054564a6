"""CassetteOptions, the seam user code gets through ``pytest_evalsuite_cassette``: extra redaction,
filters and custom matching, recorded through the real SDK and replayed offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vcr.request import Request

from evalsuite.cassettes import CassetteOptions, is_not_recorded, use_cassette
from tests._support.chat_server import ChatServer
from tests._support.cassette_calls import META, OFFLINE, answer_text, ask, call, interactions, openai_client


def test_request_filters_run_after_the_built_in_redaction_and_may_drop_an_interaction(tmp_path: Path) -> None:
    seen: list[str] = []

    def drop_tenant_header(request: Request) -> Request:
        seen.append(request.headers["authorization"])
        del request.headers["x-tenant"]
        return request

    def skip_health_checks(request: Request) -> Request | None:
        return None if b"health check" in request.body else request

    options = CassetteOptions(before_record_request=[drop_tenant_header, skip_health_checks])
    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META, options=options):
        client = openai_client(server.base_url, default_headers={"x-tenant": "acme"})
        assert ask(client, call("e1", "hello")) == "hello"
        assert ask(client, call("e2", "health check")) == "health check"
    assert seen[0] == "[REDACTED]"  # the user's filter never sees the credential
    stored = interactions(path)
    assert [i["request"]["body_json"]["messages"][0]["content"] for i in stored] == ["hello"]
    assert "x-tenant" not in stored[0]["request"]["headers"]
    with use_cassette(path, "none", metadata=META, options=options):
        assert ask(openai_client(OFFLINE), call("e1", "hello")) == "hello"


def test_response_filters_change_what_is_stored_and_replayed_and_may_drop_it(tmp_path: Path) -> None:
    def mask_emails(response: dict[str, Any]) -> dict[str, Any]:
        body = response["body"]["string"].replace(b"ana@example.com", b"<email>")
        return {**response, "body": {"string": body}}

    def skip_refusals(response: dict[str, Any]) -> dict[str, Any] | None:
        return None if b"cannot help" in response["body"]["string"] else response

    options = CassetteOptions(before_record_response=[mask_emails, skip_refusals])
    path = tmp_path / "item.json"
    with ChatServer() as server, use_cassette(path, "once", metadata=META, options=options):
        client = openai_client(server.base_url)
        assert ask(client, call("e1", "write to ana@example.com")) == "write to ana@example.com"  # live: untouched
        ask(client, call("e2", "I cannot help"))
    assert len(interactions(path)) == 1
    assert b"ana@example.com" not in json.dumps(interactions(path)[0]["response"]).encode()
    with use_cassette(path, "none", metadata=META):
        assert ask(openai_client(OFFLINE), call("e1", "write to ana@example.com")) == "write to <email>"


def without_seed(body: dict[str, Any]) -> dict[str, Any]:
    body.pop("seed", None)
    return body


def test_match_body_normalizers_apply_to_recorded_live_and_direct_replay_alike(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    recorded = [call("e1", "one", seed=1), call("e2", "two", seed=1)]
    with ChatServer() as server, use_cassette(path, "once", metadata=META):
        for c in recorded:
            ask(openai_client(server.base_url), c)
    assert interactions(path)[0]["request"]["body_json"]["seed"] == 1  # stored as sent
    reseeded = [call("e1", "one", seed=2), call("e2", "two", seed=2)]
    options = CassetteOptions(match_body=[without_seed])
    with use_cassette(path, "none", metadata=META, options=options) as handle:
        assert handle.stale(reseeded) == []
        assert ask(openai_client(OFFLINE), reseeded[0]) == "one"  # through the SDK and vcrpy's transport
        assert answer_text(handle.play(reseeded[1], "/v1/chat/completions")) == "two"  # the engine's fast path
    assert recorded[0].body["seed"] == 1  # the normalizer got a copy

    with use_cassette(path, "none", metadata=META) as handle:  # without it, the seed is part of the request
        assert handle.play(reseeded[1], "chat/completions") is None
        with pytest.raises(Exception) as caught:
            ask(openai_client(OFFLINE), reseeded[0])
        assert is_not_recorded(caught.value)


def test_match_body_decides_what_new_episodes_still_has_to_record(tmp_path: Path) -> None:
    path = tmp_path / "item.json"
    options = CassetteOptions(match_body=[without_seed])
    with ChatServer() as server:
        with use_cassette(path, "once", metadata=META, options=options):
            ask(openai_client(server.base_url), call("e1", "one", seed=1))
        with use_cassette(path, "new_episodes", metadata=META, options=options) as handle:
            ask(openai_client(server.base_url), call("e1", "one", seed=7))  # replayed
            ask(openai_client(server.base_url), call("e2", "two", seed=7))  # recorded
        assert len(server.requests) == 2
    assert (handle.n_played, handle.n_recorded, len(interactions(path))) == (1, 1, 2)
