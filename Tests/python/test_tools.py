# Tool calling against a real `valet serve` and the real model: the tools reach the prompt in the template's
# format (and stay out of it under tool_choice "none"), a tool-result round trip answers, replies with tools keep
# OpenAI's shapes whole and streamed, and every malformed tools request is a 400 naming its field.
import json

import openai
import pytest

from test_openai_api import assert_error, post

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def chat(valet, **body):
    return post(valet, "/v1/chat/completions", {"model": valet.model_name, "temperature": 0, **body})


def test_tools_enter_the_prompt_unless_the_choice_is_none(valet):
    plain = chat(valet, messages=ASK, max_tokens=1).json()["usage"]["prompt_tokens"]
    with_tools = chat(valet, messages=ASK, max_tokens=1, tools=[WEATHER]).json()["usage"]["prompt_tokens"]
    two_tools = chat(valet, messages=ASK, max_tokens=1, tools=[WEATHER, TIME]).json()["usage"]["prompt_tokens"]
    none = chat(valet, messages=ASK, max_tokens=1, tools=[WEATHER], tool_choice="none").json()["usage"]["prompt_tokens"]
    assert plain < with_tools < two_tools
    assert none == plain


def test_tool_result_round_trip_answers(valet):
    client = valet.client()
    history = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_abc", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]},
        {"role": "tool", "tool_call_id": "call_abc", "content": json.dumps({"temperature_c": 18, "sky": "sunny"})},
    ]
    r = client.chat.completions.create(model=valet.model_name, messages=history, tools=[WEATHER], tool_choice="none",
                                       temperature=0, max_tokens=48)
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.tool_calls is None
    assert choice.finish_reason in ("stop", "length")
    # The history is rendered: the round trip's prompt is longer than the question alone.
    assert r.usage.prompt_tokens > chat(valet, messages=ASK, max_tokens=1).json()["usage"]["prompt_tokens"] + 20


def _valid_call(call, tools):
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name in {t["function"]["name"] for t in tools}
    assert isinstance(json.loads(call.function.arguments), dict)


def test_auto_replies_keep_openais_shape_whole_and_streamed(valet):
    client = valet.client()
    r = client.chat.completions.create(model=valet.model_name, messages=ASK, tools=[WEATHER, TIME], temperature=0,
                                       max_tokens=64)
    choice = r.choices[0]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        for call in choice.message.tool_calls:
            _valid_call(call, [WEATHER, TIME])
    else:
        assert choice.message.content is not None and choice.finish_reason in ("stop", "length")

    stream = client.chat.completions.create(model=valet.model_name, messages=ASK, tools=[WEATHER, TIME], temperature=0,
                                            max_tokens=64, stream=True)
    content, calls, finish = "", {}, []
    for chunk in stream:
        for c in chunk.choices:
            delta = c.delta
            content += delta.content or ""
            for d in delta.tool_calls or []:
                if d.index not in calls:
                    # The first delta of a call carries its id, type and name.
                    assert d.id and d.type == "function" and d.function.name
                    calls[d.index] = {"id": d.id, "name": d.function.name, "arguments": d.function.arguments or ""}
                else:
                    assert d.id is None and d.function.name is None
                    calls[d.index]["arguments"] += d.function.arguments or ""
            if c.finish_reason:
                finish.append(c.finish_reason)
    assert len(finish) == 1
    # Greedy: the streamed reply is the whole one, split into deltas.
    if choice.message.tool_calls:
        assert finish == ["tool_calls"]
        assert [(c["name"], c["arguments"]) for c in calls.values()] == \
            [(t.function.name, t.function.arguments) for t in choice.message.tool_calls]
    else:
        assert not calls and content == choice.message.content


BAD = [
    ({"tools": {"a": 1}}, "tools"),
    ({"tools": [5]}, "tools[0]"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name"),
    ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name"),
    ({"tools": [WEATHER, TIME, {"type": "function", "function": {"name": "g", "parameters": [1]}}]},
     "tools[2].function.parameters"),
    ({"tools": [WEATHER, {"type": "function", "function": {"name": "g", "parameters": {"type": "string"}}}]},
     "tools[1].function.parameters.type"),
    ({"tools": [WEATHER], "tool_choice": "always"}, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice.function.name"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ({"messages": ASK + [{"role": "tool", "content": "18C"}]}, "messages[1].tool_call_id"),
    ({"messages": ASK + [{"role": "assistant", "tool_calls": [{"type": "function",
                                                               "function": {"name": "f", "arguments": "{}"}}]}]},
     "messages[1].tool_calls[0].id"),
    ({"messages": ASK + [{"role": "user", "content": "x", "tool_calls": []}]}, "messages[1].tool_calls"),
    ({"functions": [{"name": "f"}]}, "functions"),
]


@pytest.mark.parametrize("extra,param", BAD, ids=[p for _, p in BAD])
def test_malformed_tools_are_400s_naming_the_field(valet, extra, param):
    body = {"messages": ASK, "max_tokens": 1, **extra}
    assert_error(chat(valet, **body), 400, param=param, type_="invalid_request_error")


UNSUPPORTED = {"type": "function", "function": {"name": "g", "parameters": {
    "type": "object", "properties": {"x": {"type": "string", "not": {"const": "a"}}}}}}
BAD_REF = {"type": "function", "function": {"name": "g", "parameters": {
    "type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}}}


@pytest.mark.parametrize("choice", [None, "auto", "none", "required"])
@pytest.mark.parametrize("tool,param", [(UNSUPPORTED, "tools[1].function.parameters.properties.x.not"),
                                        (BAD_REF, "tools[1].function.parameters.properties.x")])
def test_parameters_schemas_are_compiled_whatever_the_choice(valet, choice, tool, param):
    body = {"messages": ASK, "max_tokens": 1, "tools": [WEATHER, tool]}
    if choice:
        body["tool_choice"] = choice
    r = chat(valet, **body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"].startswith(param), error


def test_the_openai_client_raises_bad_request_for_an_unknown_tool(valet):
    with pytest.raises(openai.BadRequestError) as info:
        valet.client().chat.completions.create(model=valet.model_name, messages=ASK, tools=[WEATHER],
                                               tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert info.value.body["param"] == "tool_choice.function.name"


def _schema_valid(arguments, schema):
    import jsonschema
    jsonschema.validate(json.loads(arguments), schema)


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_forced_call_is_always_a_valid_call(valet, choice):
    client = valet.client()
    for question in ("What is the weather in Paris?", "Tell me a joke.", "Weather in Oslo and Rome, please."):
        r = client.chat.completions.create(model=valet.model_name, messages=[{"role": "user", "content": question}],
                                           tools=[WEATHER, TIME], tool_choice=choice, temperature=0, max_tokens=96)
        c = r.choices[0]
        assert c.finish_reason == "tool_calls", c
        assert c.message.content is None and c.message.tool_calls
        for call in c.message.tool_calls:
            _valid_call(call, [WEATHER, TIME])
            spec = WEATHER if call.function.name == "get_weather" else TIME
            _schema_valid(call.function.arguments, spec["function"]["parameters"])
        if isinstance(choice, dict):
            assert [x.function.name for x in c.message.tool_calls] == ["get_weather"]
    # A forced call that cannot fit its budget is refused before it is queued.
    e = assert_error(chat(valet, messages=ASK, tools=[WEATHER], tool_choice="required", max_tokens=2), 400,
                     param="max_tokens")
    assert "tool_choice" in e["message"]


def test_a_forced_call_streams_as_openais_deltas(valet):
    client = valet.client()
    whole = client.chat.completions.create(model=valet.model_name, messages=ASK, tools=[WEATHER], temperature=0,
                                           tool_choice="required", max_tokens=96).choices[0].message.tool_calls
    stream = client.chat.completions.create(model=valet.model_name, messages=ASK, tools=[WEATHER], temperature=0,
                                            tool_choice="required", max_tokens=96, stream=True)
    calls, finish = {}, None
    for chunk in stream:
        for ch in chunk.choices:
            finish = ch.finish_reason or finish
            for d in ch.delta.tool_calls or []:
                if d.id:
                    calls[d.index] = {"id": d.id, "name": d.function.name, "arguments": ""}
                calls[d.index]["arguments"] += d.function.arguments or ""
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == \
        [(c.function.name, json.loads(c.function.arguments)) for c in whole]


def test_a_forced_call_with_a_response_format_is_refused(valet):
    e = assert_error(chat(valet, messages=ASK, tools=[WEATHER], tool_choice="required", max_tokens=32,
                          response_format={"type": "json_object"}), 400, param="response_format")
    assert "tool" in e["message"]


def _metric(valet, name, labels):
    import requests
    text = requests.get(valet.base + "/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.split()[-1])
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_forced_calls_are_counted_and_recorded_as_tools(valet):
    import requests
    before = _metric(valet, "valet_structured_requests_total", {"kind": "tools"})
    r = chat(valet, messages=ASK, tools=[WEATHER], tool_choice="required", max_tokens=64).json()
    plain = chat(valet, messages=ASK, max_tokens=4).json()
    # Each job is counted once it has ended; the row is readable at once (from memory until written).
    assert _metric(valet, "valet_structured_requests_total", {"kind": "tools"}) == before + 1
    rows = {i: requests.get(valet.base + f"/v1/jobs/{i}", headers=valet.headers(), timeout=30).json()
            for i in (r["id"], plain["id"])}
    assert rows[r["id"]]["constraint"] == "tools" and rows[plain["id"]]["constraint"] == "none"


# Under `auto` the grammar switches on at the call marker. Earlier turns that called with only a city steer the
# model to call; the schema also requires a unit those turns never showed, so only the grammar makes it valid.
WEATHER_UNIT = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city",
    "parameters": {"type": "object", "additionalProperties": False,
                   "properties": {"city": {"type": "string", "maxLength": 20},
                                  "unit": {"enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]}}}


def _steered(question):
    def called(i, city):
        return [{"role": "user", "content": f"Call get_weather for {city}."},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": f"call_{i}", "type": "function",
                     "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}]}]
    return called(0, "Rome") + called(1, "Oslo") + [{"role": "user", "content": question}]


def _streamed(stream):
    content, calls, finish = "", {}, []
    for chunk in stream:
        for c in chunk.choices:
            content += c.delta.content or ""
            for d in c.delta.tool_calls or []:
                if d.id:
                    calls[d.index] = {"name": d.function.name, "arguments": ""}
                calls[d.index]["arguments"] += d.function.arguments or ""
            if c.finish_reason:
                finish.append(c.finish_reason)
    return content, list(calls.values()), finish


def test_auto_switches_the_grammar_on_at_the_call_marker(valet):
    client = valet.client()
    args = dict(model=valet.model_name, messages=_steered("Call get_weather for Paris."), tools=[WEATHER_UNIT],
                tool_choice="auto", temperature=0, max_tokens=96)
    c = client.chat.completions.create(**args).choices[0]
    assert c.finish_reason == "tool_calls", c
    assert c.message.content is None and len(c.message.tool_calls) == 1
    call = c.message.tool_calls[0]
    assert call.function.name == "get_weather"
    _schema_valid(call.function.arguments, WEATHER_UNIT["function"]["parameters"])
    assert json.loads(call.function.arguments)["city"] == "Paris"
    content, calls, finish = _streamed(client.chat.completions.create(**args, stream=True))
    assert finish == ["tool_calls"] and content == ""
    assert calls == [{"name": call.function.name, "arguments": call.function.arguments}]


def test_auto_prose_stays_free_text(valet):
    client = valet.client()
    args = dict(model=valet.model_name, messages=_steered("Write a haiku about the sea."), tools=[WEATHER_UNIT],
                tool_choice="auto", temperature=0, max_tokens=96)
    c = client.chat.completions.create(**args).choices[0]
    assert c.finish_reason == "stop" and c.message.tool_calls is None
    assert c.message.content and "<tool_call>" not in c.message.content
    content, calls, finish = _streamed(client.chat.completions.create(**args, stream=True))
    assert (content, calls, finish) == (c.message.content, [], ["stop"])


def test_a_call_started_under_auto_completes_within_a_tight_budget(valet):
    # The shortest call, from the refusal of a forced one that cannot fit; a little more than that under auto.
    import re
    e = assert_error(chat(valet, messages=ASK, tools=[WEATHER_UNIT], tool_choice="required", max_tokens=2), 400,
                     param="max_tokens")
    budget = int(re.search(r"takes (\d+) tokens", e["message"]).group(1)) + 3
    r = chat(valet, messages=_steered("Call get_weather for Paris."), tools=[WEATHER_UNIT], max_tokens=budget).json()
    c = r["choices"][0]
    assert c["finish_reason"] == "tool_calls", c
    _schema_valid(c["message"]["tool_calls"][0]["function"]["arguments"], WEATHER_UNIT["function"]["parameters"])
    assert r["usage"]["completion_tokens"] <= budget


def test_no_call_begins_under_auto_when_it_cannot_fit(valet):
    import re
    e = assert_error(chat(valet, messages=ASK, tools=[WEATHER_UNIT], tool_choice="required", max_tokens=2), 400,
                     param="max_tokens")
    budget = int(re.search(r"takes (\d+) tokens", e["message"]).group(1)) - 4
    r = chat(valet, messages=_steered("Call get_weather for Paris."), tools=[WEATHER_UNIT], max_tokens=budget).json()
    c = r["choices"][0]
    # The steered model would open a call at once; with no room to finish one, the marker is held back.
    assert c["finish_reason"] in ("stop", "length") and "tool_calls" not in c["message"]
    assert "<tool_call>" not in c["message"]["content"]
