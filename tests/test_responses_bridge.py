"""serve-local's Responses bridge, in front of the 127.0.0.1 chat server, driven by the openai SDK's responses.create."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import openai
import pytest

from evalsuite._responses_bridge import serve
from tests._support.chat_server import ChatServer


@pytest.fixture
def bridged() -> Iterator[tuple[openai.OpenAI, ChatServer]]:
    with ChatServer() as server:
        bridge = serve(0, f"http://127.0.0.1:{server.port}")
        thread = threading.Thread(target=bridge.serve_forever, daemon=True)
        thread.start()
        try:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{bridge.server_address[1]}/v1", api_key="sk-local",
                                   max_retries=0)
            yield client, server
        finally:
            bridge.shutdown()
            thread.join(5)


def test_a_responses_request_is_answered_by_the_chat_endpoint_of_the_same_server(bridged) -> None:
    client, server = bridged
    response = client.responses.create(model="gemma", instructions="Be brief.", max_output_tokens=5, temperature=0,
                                       store=False, input=[{"role": "user", "content": "hello"},
                                                           {"role": "assistant", "content": "hi"},
                                                           {"role": "user", "content": [{"type": "input_text",
                                                                                         "text": "how are you"}]}])
    assert response.output_text == "how are you" and response.status == "completed"
    assert response.usage is not None and response.usage.output_tokens == 3
    assert server.requests[-1] == {"model": "gemma", "temperature": 0, "max_tokens": 5, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"}, {"role": "user", "content": "how are you"}]}


def test_tools_and_json_schemas_are_translated_both_ways(bridged) -> None:
    client, server = bridged
    weather = {"type": "function", "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    called = client.responses.create(model="gemma", input="Paris", tools=[weather],
                                     tool_choice={"type": "function", "name": "get_weather"})
    [call] = called.output
    assert (call.type, call.name, call.arguments) == ("function_call", "get_weather", '{"city": "Paris"}')
    assert server.requests[-1]["tools"] == [{"type": "function", "function": {k: v for k, v in weather.items()
                                                                              if k != "type"}}]
    assert server.requests[-1]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    client.responses.create(model="gemma", input="x", text={"format": {"type": "json_schema", "name": "a",
                                                                       "schema": schema, "strict": True}})
    assert server.requests[-1]["response_format"] == {"type": "json_object", "schema": schema}  # llama.cpp's form


def test_what_it_cannot_translate_is_a_400_naming_it_and_other_paths_are_forwarded(bridged) -> None:
    client, server = bridged
    with pytest.raises(openai.BadRequestError, match="does not translate previous_response_id"):
        client.responses.create(model="gemma", input="x", previous_response_id="resp_1")
    with pytest.raises(openai.BadRequestError, match="role/content messages only, not 'function_call_output'"):
        client.responses.create(model="gemma", input=[{"type": "function_call_output", "call_id": "c", "output": "x"}])
    chat = client.chat.completions.create(model="gemma", messages=[{"role": "user", "content": "direct"}])
    assert chat.choices[0].message.content == "direct" and len(server.requests) == 1
