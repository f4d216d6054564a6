"""The OpenAI wire format -> Answer, for live bodies and for recorded responses alike."""

from __future__ import annotations

import orjson
import pytest

from evalsuite.model._wire import NotACompletion, answer_from_body, completion_body, estimate_tokens, recorded_answer
from evalsuite.records import Call

CHAT = Call("e1", 2, "chat", {"model": "m", "messages": [{"role": "user", "content": "12345678"}], "max_tokens": 5})
LEGACY = Call("c1", 0, "completions", {"model": "m", "prompt": "1234", "max_completion_tokens": 3})

CHAT_BODY = {
    "system_fingerprint": "fp_x",
    "usage": {"prompt_tokens": 7, "completion_tokens": 2},
    "choices": [{"finish_reason": "length", "message": {"content": "hi there"},
                 "logprobs": {"content": [{"logprob": -0.1}, {"logprob": -0.2}]}}],
}


def test_chat_body_gives_text_logprobs_usage_and_identity() -> None:
    answer = answer_from_body(CHAT, CHAT_BODY, 0.25, 3)
    assert (answer.example_id, answer.sample, answer.retries, answer.latency_s) == ("e1", 2, 3, 0.25)
    assert answer.text == "hi there" and answer.token_logprobs == [-0.1, -0.2]
    assert (answer.prompt_tokens, answer.completion_tokens) == (7, 2)
    assert answer.finish_reason == "length" and answer.system_fingerprint == "fp_x" and answer.ok


def test_legacy_completions_skip_the_null_first_logprob() -> None:
    body = {"choices": [{"text": "a b", "finish_reason": "stop", "logprobs": {"token_logprobs": [None, -1.0, -2.0]}}]}
    answer = answer_from_body(LEGACY, body, None, 0)
    assert answer.text == "a b" and answer.token_logprobs == [-1.0, -2.0] and answer.prompt_tokens is None


def test_no_choices_and_no_logprobs_are_absent_not_errors() -> None:
    assert answer_from_body(CHAT, {"choices": []}, None, 0).text is None
    plain = answer_from_body(CHAT, {"choices": [{"message": {"content": "x"}, "logprobs": None}]}, None, 0)
    assert plain.text == "x" and plain.token_logprobs is None


def response(status: int, body: object, headers: dict[str, list[str]] | None = None) -> dict:
    return {"status": {"code": status}, "headers": headers or {}, "body": {"string": orjson.dumps(body)}}


def test_recorded_response_reads_like_a_live_one_with_the_recorded_latency() -> None:
    answer = recorded_answer(CHAT, response(200, CHAT_BODY, {"x-evalsuite-latency-ms": ["1234.5"]}))
    assert answer == answer_from_body(CHAT, CHAT_BODY, 1.2345, 0)
    assert recorded_answer(CHAT, response(200, CHAT_BODY)).latency_s is None


def test_recorded_error_responses_become_api_error_answers() -> None:
    answer = recorded_answer(CHAT, response(400, {"error": {"message": "bad temperature"}}))
    assert answer.error_kind == "api" and answer.error == "HTTP 400: bad temperature"
    assert recorded_answer(CHAT, response(500, "boom")).error == "HTTP 500: boom"


def test_token_estimate_is_chars_over_four_plus_the_completion_cap() -> None:
    assert estimate_tokens(CHAT) == 8 / 4 + 5
    assert estimate_tokens(LEGACY) == 4 / 4 + 3
    parts = Call("p", 0, "chat", {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]})
    assert estimate_tokens(parts) == len(str([{"type": "text", "text": "x"}])) / 4


def test_a_body_that_is_not_a_completion_says_what_came_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXY_TOKEN", "tok-proxy-5c1e9a77")
    page = b"<!DOCTYPE html>\n<html><body>Sign in, session tok-proxy-5c1e9a77" + b" padding" * 100 + b"</body></html>"
    with pytest.raises(NotACompletion) as html:
        completion_body(page)
    message = str(html.value)
    assert message.startswith("the endpoint answered HTTP 200 with HTML, not the API's JSON: '<!DOCTYPE html> <html>")
    assert "[REDACTED:PROXY_TOKEN]" in message and "5c1e9a77" not in message
    assert len(message) < 300 and message.endswith("...'")
    with pytest.raises(NotACompletion, match="JSON that is not a completion"):
        completion_body(b'{"detail": "Not Found"}')
    assert completion_body(orjson.dumps(CHAT_BODY)) == CHAT_BODY


def test_recorded_non_json_responses_become_api_errors_not_crashes() -> None:
    html = {"status": {"code": 200}, "headers": {}, "body": {"string": b"<html>Sign in</html>"}}
    answer = recorded_answer(CHAT, html)
    assert answer.error_kind == "api" and "with HTML" in answer.error
    bad_gateway = {"status": {"code": 502}, "headers": {}, "body": {"string": b"<html>502 Bad Gateway</html>"}}
    assert recorded_answer(CHAT, bad_gateway).error == "HTTP 502: '<html>502 Bad Gateway</html>'"


def test_a_completion_with_a_wrong_type_value_is_an_error_naming_the_field() -> None:
    body = {"choices": [{"text": 5}]}
    with pytest.raises(NotACompletion) as error:
        completion_body(orjson.dumps(body))
    assert str(error.value) == ("the endpoint answered HTTP 200 with a completion evalsuite cannot read: "
                                "body.choices[0].text: expected a string or null, got int 5")
    tokens = recorded_answer(LEGACY, response(200, {"choices": [], "usage": {"prompt_tokens": "a"}}))
    assert tokens.error_kind == "api" and "body.usage.prompt_tokens: expected an integer token count" in tokens.error


def test_a_recorded_latency_that_is_not_a_number_is_an_api_error_not_a_crash() -> None:
    answer = recorded_answer(CHAT, response(200, CHAT_BODY, {"x-evalsuite-latency-ms": ["fast"]}))
    assert answer.error_kind == "api" and answer.error == (
        "the recorded response's headers.x-evalsuite-latency-ms: expected milliseconds as a number, "
        "e.g. [\"352.7\"], got ['fast']")
