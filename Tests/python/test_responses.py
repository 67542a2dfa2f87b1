# /v1/responses end to end with the official client: create and stream, the chat template underneath, usage,
# max_output_tokens, and the fields Valet refuses by name.
import json

import openai
import pytest
import requests

from test_openai_api import assert_error

QUESTION = "What is the capital of France?"
EVENT_ORDER = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added"]
CLOSING = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]


def post(server, body):
    return requests.post(server.base + "/v1/responses", data=json.dumps(body), headers=server.headers(), timeout=120)


def test_create_answers_through_the_chat_template(valet):
    client = valet.client()
    r = client.responses.create(model=valet.model_name, input=QUESTION, instructions="Answer in one sentence.",
                                temperature=0, max_output_tokens=48)
    assert r.object == "response" and r.id.startswith("resp_")
    assert r.status in ("completed", "incomplete")
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.output[0].content[0].type == "output_text"
    assert r.output_text == r.output[0].content[0].text and r.output_text
    # The same conversation as chat: same prompt tokens, same greedy answer.
    messages = [{"role": "system", "content": "Answer in one sentence."}, {"role": "user", "content": QUESTION}]
    chat = client.chat.completions.create(model=valet.model_name, messages=messages, temperature=0, max_tokens=48)
    assert r.usage.input_tokens == chat.usage.prompt_tokens
    assert r.usage.output_tokens == chat.usage.completion_tokens
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    # Whole 16-token blocks from the prefix cache; the chat after it re-sends the same prompt, so it hits.
    assert r.usage.input_tokens_details.cached_tokens % 16 == 0
    assert chat.usage.prompt_tokens_details.cached_tokens >= 16
    assert r.output_text == chat.choices[0].message.content
    assert (r.status == "completed") == (chat.choices[0].finish_reason == "stop")
    assert r.instructions == "Answer in one sentence." and r.max_output_tokens == 48 and r.temperature == 0


def test_input_items_with_text_parts_and_an_assistant_turn(valet):
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hi."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi!"}]},
        {"role": "user", "content": "Now say bye."},
    ]
    r = valet.client().responses.create(model=valet.model_name, input=items, max_output_tokens=8, temperature=0)
    chat = valet.client().chat.completions.create(
        model=valet.model_name, max_tokens=8, temperature=0,
        messages=[{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"},
                  {"role": "user", "content": "Now say bye."}])
    assert r.usage.input_tokens == chat.usage.prompt_tokens
    assert r.output_text == chat.choices[0].message.content


def test_max_output_tokens_makes_an_incomplete_response(valet):
    r = valet.client().responses.create(model=valet.model_name, input="Tell me a long story about a dragon.",
                                        max_output_tokens=3, temperature=0)
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 3
    assert r.output[0].status == "incomplete"


def test_stream_events_in_order_and_the_final_response(valet):
    client = valet.client()
    args = dict(model=valet.model_name, input=QUESTION, temperature=0, max_output_tokens=40)
    whole = client.responses.create(**args)
    with client.responses.stream(**args) as stream:
        events = list(stream)
        if whole.status == "completed":
            final = stream.get_final_response()
            assert final.output_text == whole.output_text
    types = [e.type for e in events]
    assert types[:4] == EVENT_ORDER
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert deltas and types[4:4 + len(deltas)] == ["response.output_text.delta"] * len(deltas)
    assert types[4 + len(deltas):-1] == CLOSING
    assert types[-1] == ("response.completed" if whole.status == "completed" else "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in deltas)
    assert text == whole.output_text
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == text
    assert events[-1].response.usage.output_tokens == whole.usage.output_tokens
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


def test_raw_stream_is_typed_server_sent_events(valet):
    r = requests.post(valet.base + "/v1/responses", headers=valet.headers(), stream=True, timeout=120,
                      data=json.dumps({"model": valet.model_name, "input": "Hi", "stream": True, "max_output_tokens": 2,
                                       "temperature": 0}))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    blocks = [b for b in r.text.split("\n\n") if b]
    for block in blocks:
        event, data = block.split("\n", 1)
        assert event.startswith("event: ") and data.startswith("data: ")
        assert json.loads(data[len("data: "):])["type"] == event[len("event: "):]
    assert blocks[-1].startswith("event: response.incomplete")


def test_refusals_name_the_field(valet):
    m = valet.model_name
    assert_error(post(valet, {"model": m, "input": "x", "store": True}), 400, param="store")
    error = post(valet, {"model": m, "input": "x", "previous_response_id": "resp_1"}).json()["error"]
    assert error["param"] == "previous_response_id" and "conversation state" in error["message"]
    assert_error(post(valet, {"model": m, "input": "x", "text": {"format": {
        "type": "json_schema", "name": "a", "schema": {"type": "object", "not": {}}}}}), 400, param="text.format.schema.not")
    assert_error(post(valet, {"model": m, "input": "x", "text": {"format": {"type": "json_schema", "name": "a"}}}),
                 400, param="text.format.schema")
    assert_error(post(valet, {"model": m, "input": "x", "text": {"format": {"type": "yaml"}}}), 400,
                 param="text.format.type")
    assert_error(post(valet, {"model": m, "input": "x", "tools": [{"type": "web_search"}]}), 400, param="tools[0].type")
    assert_error(post(valet, {"model": m, "input": "x", "tools": [{"type": "file_search", "vector_store_ids": []}]}),
                 400, param="tools[0].type")
    assert_error(post(valet, {"model": m, "input": "x", "tools": [{"type": "function"}]}), 400, param="tools[0].name")
    assert_error(post(valet, {"model": m, "input": "x", "tools": [{"type": "function", "name": "f", "parameters": {
        "type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}}}]}), 400, param="tools[0].parameters.properties.a.$ref")
    assert_error(post(valet, {"model": m, "input": "x", "tools": [{"type": "function", "name": "f"}],
                              "tool_choice": {"type": "function", "name": "g"}}), 400, param="tool_choice.name")
    assert_error(post(valet, {"model": m, "input": "x", "tool_choice": "required"}), 400, param="tool_choice")
    assert_error(post(valet, {"model": m, "input": "x", "tools": [{"type": "function", "name": "f"}],
                              "tool_choice": "required", "max_output_tokens": 2}), 400, param="max_output_tokens")
    assert_error(post(valet, {"model": m, "input": "x", "text": {"format": {"type": "json_object"}},
                              "tools": [{"type": "function", "name": "f"}], "tool_choice": "required"}), 400,
                 param="text.format")
    assert_error(post(valet, {"model": m}), 400, param="input")
    assert_error(post(valet, {"model": m, "input": []}), 400, param="input")
    assert_error(post(valet, {"model": m, "input": [{"type": "function_call_output", "output": "1"}]}), 400,
                 param="input[0].call_id")
    assert_error(post(valet, {"model": m, "input": [{"type": "reasoning", "summary": []}]}), 400,
                 param="input[0].type")
    assert_error(post(valet, {"model": m, "input": [{"role": "user", "content": [{"type": "input_image"}]}]}), 400,
                 param="input[0].content[0].type")
    assert_error(post(valet, {"model": m, "input": "x", "max_output_tokens": 0}), 400, param="max_output_tokens")
    assert_error(post(valet, {"model": m, "input": "x", "temperature": 5}), 400, param="temperature")
    assert_error(post(valet, {"model": "other", "input": "x"}), 404, param="model")
    assert_error(post(valet, {"model": m, "input": "x", "max_output_tokens": 10 ** 6}), 400, param="max_output_tokens")
    # The official client raises the error as a 400, too.
    with pytest.raises(openai.BadRequestError):
        valet.client().responses.create(model=m, input="x", store=True)
