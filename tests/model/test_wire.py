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


RESPONSES = Call("r1", 0, "responses", {"model": "m", "instructions": "Be brief.", "store": False,
                                        "input": [{"role": "user", "content": "12345678"}], "max_output_tokens": 4})
RESPONSE_BODY = {
    "object": "response", "status": "completed", "incomplete_details": None,
    "usage": {"input_tokens": 9, "output_tokens": 3, "total_tokens": 12},
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "hi ", "logprobs": [{"token": "hi", "logprob": -0.5}]},
            {"type": "refusal", "refusal": "no"},
            {"type": "output_text", "text": "there", "logprobs": [{"token": "there", "logprob": -0.25}]}]},
    ],
}


def test_chat_tool_calls_are_read_in_order_with_their_argument_text() -> None:
    message = {"content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "b", "type": "function", "function": {"name": "get_time", "arguments": "{not json"}}]}
    answer = answer_from_body(CHAT, {"choices": [{"message": message, "finish_reason": "tool_calls"}]}, None, 0)
    assert answer.text is None and answer.finish_reason == "tool_calls"
    assert answer.tool_calls == [{"name": "get_weather", "arguments": '{"city": "Paris"}'},
                                 {"name": "get_time", "arguments": "{not json"}]
    legacy = {"choices": [{"message": {"content": None, "function_call": {"name": "f", "arguments": "{}"}}}]}
    assert answer_from_body(CHAT, legacy, None, 0).tool_calls == [{"name": "f", "arguments": "{}"}]
    assert answer_from_body(CHAT, CHAT_BODY, None, 0).tool_calls is None


def test_a_responses_body_gives_the_joined_output_text_usage_logprobs_and_a_chat_finish_reason() -> None:
    answer = answer_from_body(RESPONSES, RESPONSE_BODY, 0.5, 1)
    assert (answer.text, answer.token_logprobs, answer.tool_calls) == ("hi there", [-0.5, -0.25], None)
    assert (answer.prompt_tokens, answer.completion_tokens, answer.finish_reason) == (9, 3, "stop")
    assert answer.latency_s == 0.5 and answer.retries == 1 and answer.ok
    cut = {**RESPONSE_BODY, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert answer_from_body(RESPONSES, cut, None, 0).finish_reason == "length"
    called = {"status": "completed", "output": [
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}]}
    tool = answer_from_body(RESPONSES, called, None, 0)
    assert tool.text is None and tool.finish_reason == "tool_calls"
    assert tool.tool_calls == [{"name": "get_weather", "arguments": '{"city": "Oslo"}'}]
    assert completion_body(orjson.dumps(RESPONSE_BODY)) == RESPONSE_BODY
    assert recorded_answer(RESPONSES, response(200, RESPONSE_BODY)) == answer_from_body(RESPONSES, RESPONSE_BODY, None, 0)


@pytest.mark.parametrize(("body", "problem"), [
    ({"choices": [{"message": {"content": None, "tool_calls": [{"type": "function", "function": {"name": "f",
                                                                                                  "arguments": {}}}]}}]},
     "body.choices[0].message.tool_calls[0].function.arguments: expected the arguments as JSON text, got dict {}"),
    ({"choices": [{"message": {"content": None, "tool_calls": "f"}}]},
     "body.choices[0].message.tool_calls: expected a list of tool calls or null, got str 'f'"),
    ({"output": [{"type": "message", "content": [{"type": "output_text", "text": 5}]}]},
     "body.output[0].content[0].text: expected a string, got int 5"),
    ({"output": [{"type": "function_call", "name": None, "arguments": "{}"}]},
     "body.output[0].name: expected the function's name, got NoneType None"),
    ({"output": [], "usage": {"output_tokens": "3"}},
     "body.usage.output_tokens: expected an integer token count or null, got str '3'"),
])
def test_tool_calls_and_responses_of_the_wrong_shape_are_errors_naming_the_field(body: dict, problem: str) -> None:
    with pytest.raises(NotACompletion) as error:
        completion_body(orjson.dumps(body))
    assert str(error.value) == f"the endpoint answered HTTP 200 with a completion evalsuite cannot read: {problem}"


def test_token_estimate_of_a_responses_call_counts_instructions_input_and_the_output_cap() -> None:
    assert estimate_tokens(RESPONSES) == (8 + len("Be brief.")) / 4 + 4
    text_input = Call("r2", 0, "responses", {"model": "m", "input": "1234"})
    assert estimate_tokens(text_input) == 4 / 4
