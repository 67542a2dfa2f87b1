# /v1/responses with structured output and function tools, through the official client: text.format json_schema
# and json_object (and responses.parse with pydantic), function_call output items whole and streamed, a call and
# its output carried back as input items.
import json

import jsonschema
import pydantic

WEATHER = {"type": "function", "name": "get_weather", "description": "The current weather in a city",
           "parameters": {"type": "object", "additionalProperties": False,
                          "properties": {"city": {"type": "string", "maxLength": 20},
                                         "unit": {"enum": ["celsius", "fahrenheit"]}},
                          "required": ["city", "unit"]}}
PERSON = {"type": "object", "additionalProperties": False,
          "properties": {"name": {"type": "string", "maxLength": 30}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


def _steered(question):
    """Earlier calls with only a city steer the small model to call; only the grammar adds the required unit."""
    items = []
    for i, city in enumerate(["Rome", "Oslo"]):
        items += [{"role": "user", "content": f"Call get_weather for {city}."},
                  {"type": "function_call", "call_id": f"call_{i}", "name": "get_weather",
                   "arguments": json.dumps({"city": city})}]
    return items + [{"role": "user", "content": question}]


def _calls(response):
    return [(o.name, o.arguments) for o in response.output if o.type == "function_call"]


def test_json_schema_format_answers_valid_json_whole_and_streamed(valet):
    client = valet.client()
    args = dict(model=valet.model_name, input="Describe a person.", temperature=0, max_output_tokens=64,
                text={"format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}})
    r = client.responses.create(**args)
    assert r.status == "completed"
    jsonschema.validate(json.loads(r.output_text), PERSON)
    assert r.text.format.type == "json_schema" and r.text.format.name == "person"
    with client.responses.stream(**args) as stream:
        final = stream.get_final_response()
    assert final.output_text == r.output_text


def test_json_object_format_answers_an_object(valet):
    r = valet.client().responses.create(model=valet.model_name, input="Give me a JSON object about cats.",
                                        temperature=0, max_output_tokens=48, text={"format": {"type": "json_object"}})
    assert r.status == "completed" and isinstance(json.loads(r.output_text), dict)


def test_parse_with_a_pydantic_model(valet):
    class Person(pydantic.BaseModel):
        name: str = pydantic.Field(max_length=30)
        age: int

    r = valet.client().responses.parse(model=valet.model_name, input="Describe a person.", text_format=Person,
                                       temperature=0, max_output_tokens=64)
    assert isinstance(r.output_parsed, Person)
    assert r.output_parsed == Person.model_validate_json(r.output_text)


def test_auto_calls_a_function_whole_and_streamed(valet):
    client = valet.client()
    args = dict(model=valet.model_name, input=_steered("Call get_weather for Paris."), tools=[WEATHER],
                temperature=0, max_output_tokens=96)
    r = client.responses.create(**args)
    assert r.status == "completed"
    assert [o.type for o in r.output] == ["function_call"], r.output
    call = r.output[0]
    assert call.call_id.startswith("call_") and call.id.startswith("fc_") and call.status == "completed"
    assert call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    assert r.tools[0].name == "get_weather"

    events = list(client.responses.create(**args, stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.item.type for e in added] == ["function_call"] and added[0].item.name == "get_weather"
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and done[0].arguments == deltas == call.arguments
    assert [e.item.type for e in events if e.type == "response.output_item.done"] == ["function_call"]
    assert _calls(events[-1].response) == _calls(r)
    with client.responses.stream(**args) as stream:
        assert _calls(stream.get_final_response()) == _calls(r)


def test_prose_under_auto_is_a_message_whole_and_streamed(valet):
    client = valet.client()
    args = dict(model=valet.model_name, input=_steered("Write a haiku about the sea."), tools=[WEATHER],
                temperature=0, max_output_tokens=64)
    r = client.responses.create(**args)
    assert r.status == "completed"
    assert [o.type for o in r.output] == ["message"] and r.output_text and "<tool_call>" not in r.output_text
    with client.responses.stream(**args) as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert deltas == final.output_text == r.output_text
    assert [o.type for o in final.output] == ["message"]


def test_required_and_named_choices_always_call(valet):
    client = valet.client()
    for choice in ["required", {"type": "function", "name": "get_weather"}]:
        for question in ("What is the weather in Paris?", "Tell me a joke."):
            r = client.responses.create(model=valet.model_name, input=question, tools=[WEATHER], tool_choice=choice,
                                        temperature=0, max_output_tokens=96)
            calls = _calls(r)
            assert calls and all(name == "get_weather" for name, _ in calls), r.output
            for _, arguments in calls:
                jsonschema.validate(json.loads(arguments), WEATHER["parameters"])


def test_a_function_call_output_round_trip_answers(valet):
    client = valet.client()
    first = client.responses.create(model=valet.model_name, input="What is the weather in Paris?", tools=[WEATHER],
                                    tool_choice="required", temperature=0, max_output_tokens=96)
    call = first.output[0]
    # The output item goes back as it came (with its id and status), as agent loops do.
    history = [{"role": "user", "content": "What is the weather in Paris?"}, call,
               {"type": "function_call_output", "call_id": call.call_id,
                "output": json.dumps({"temperature": 18, "sky": "sunny"})}]
    r = client.responses.create(model=valet.model_name, input=history, tools=[WEATHER], tool_choice="none",
                                temperature=0, max_output_tokens=48)
    assert r.output[0].type == "message" and r.output_text
    # The call and its output are rendered into the prompt.
    alone = client.responses.create(model=valet.model_name, input=history[:1], tools=[WEATHER], tool_choice="none",
                                    temperature=0, max_output_tokens=1)
    assert r.usage.input_tokens > alone.usage.input_tokens + 20
    spelled = client.responses.create(model=valet.model_name, input=[
        history[0], {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        history[2]], tools=[WEATHER], tool_choice="none", temperature=0, max_output_tokens=48)
    assert (spelled.usage.input_tokens, spelled.output_text) == (r.usage.input_tokens, r.output_text)
