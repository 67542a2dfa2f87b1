# response_format against a real `valet serve`: the openai client's parse with pydantic, json_object, seeded random
# schemas validated by jsonschema, the 400s, and unconstrained output left as it was.
import json
import random

import jsonschema
import pydantic
import pytest
import requests


def chat(valet, body):
    body = {"model": valet.model_name, "temperature": 0, **body}
    return requests.post(valet.base + "/v1/chat/completions", json=body, headers=valet.headers(), timeout=600)


def ask(content):
    return [{"role": "user", "content": content}]


class City(pydantic.BaseModel):
    name: str
    country: str
    population: int
    coastal: bool


def test_parse_with_pydantic(valet):
    client = valet.client()
    r = client.chat.completions.parse(model=valet.model_name, temperature=0, max_tokens=80,
                                      messages=ask("Describe Paris as JSON."), response_format=City)
    choice = r.choices[0]
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, City)


def test_json_object_parses_even_with_a_small_budget(valet):
    for max_tokens in (6, 20, 60):
        r = chat(valet, {"messages": ask("Give me a JSON object about a cat."), "max_tokens": max_tokens,
                         "response_format": {"type": "json_object"}})
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        assert isinstance(json.loads(choice["message"]["content"]), dict)
        assert choice["finish_reason"] == "stop"
        assert r.json()["usage"]["completion_tokens"] <= max_tokens


# Patterns in the documented subset, some needing JSON escapes (a quote, a backslash) in the answer.
PATTERNS = [r"^[a-z]{2,6}$", r"^\d{3}-\d{4}$", r"[A-Z]", r"^(red|green|blue)$", r"ab|cd", r'^[^"\\]{1,8}$',
            r'^a"b\\c', r"^(?:[a-f0-9]{2}:){2}[a-f0-9]{2}$", r"^\w+@\w+\.com$", r"x$", r"^\s*\S+\s*$"]
FORMATS = ["date", "time", "date-time", "uuid", "email"]


def random_bounds(rng, integer):
    low = rng.randint(-1000, 900)
    high = low + rng.randint(3, 500)
    s = {}
    if rng.random() < 0.8:
        s["exclusiveMinimum" if rng.random() < 0.3 else "minimum"] = low
    if rng.random() < 0.8 or not s:
        s["exclusiveMaximum" if rng.random() < 0.3 else "maximum"] = high if integer else high + rng.choice([0, 0.5])
    return s


def random_schema(rng, depth=0):
    kinds = ["string", "integer", "number", "boolean", "enum", "array", "nullable", "pattern", "format", "bounded",
             "bounded_number"] + (["object", "object", "all_of", "all_of"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "string":
        s = {"type": "string"}
        if rng.random() < 0.5:
            s["maxLength"] = rng.randint(1, 12)
        return s
    if kind == "pattern":
        s = {"type": "string", "pattern": rng.choice(PATTERNS)}
        if rng.random() < 0.3:
            s["maxLength"] = rng.randint(8, 16)
        return s
    if kind == "format":
        return {"type": "string", "format": rng.choice(FORMATS)}
    if kind == "bounded":
        return {"type": "integer", **random_bounds(rng, True)}
    if kind == "bounded_number":
        return {"type": "number", **random_bounds(rng, False)}
    if kind == "all_of":
        parts = []
        for names in (["p", "q"], ["r", "s"]):
            props = {n: random_schema(rng, depth + 1) for n in rng.sample(names, rng.randint(1, 2))}
            parts.append({"type": "object", "properties": props, "required": list(props)})
        parts[-1]["additionalProperties"] = rng.random() < 0.5
        if parts[-1]["additionalProperties"] is False:
            # A part that forbids other names must still list every name another part requires.
            parts[-1]["properties"].update({n: {} for n in parts[0]["properties"]})
        return {"allOf": parts}
    if kind == "enum":
        return {"enum": rng.sample(["red", "green", "blue", 1, None, True], rng.randint(1, 3))}
    if kind == "array":
        s = {"type": "array", "items": random_schema(rng, depth + 1)}
        s["maxItems"] = rng.randint(1, 3)
        return s
    if kind == "nullable":
        return {"anyOf": [random_schema(rng, depth + 1), {"type": "null"}]}
    if kind == "object":
        names = rng.sample(["a", "b", "city", "count", "tags", "ok", "x_1"], rng.randint(1, 3))
        props = {n: random_schema(rng, depth + 1) for n in names}
        return {"type": "object", "properties": props, "required": [n for n in names if rng.random() < 0.7],
                "additionalProperties": False}
    return {"type": kind}


def keywords(schema):
    if isinstance(schema, dict):
        return set(schema) | {k for v in schema.values() for k in keywords(v)}
    if isinstance(schema, list):
        return {k for v in schema for k in keywords(v)}
    return set()


def test_random_schemas_always_validate(valet):
    rng = random.Random(1414)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER  # draft 3 reads "time" differently
    answered = set()
    for i in range(40):
        props = {f"f{k}": random_schema(rng) for k in range(rng.randint(1, 3))}
        schema = {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
        body = {"messages": ask("Answer in JSON."), "max_tokens": rng.choice([48, 96]),
                "response_format": {"type": "json_schema", "json_schema": {"name": f"s{i}", "schema": schema, "strict": True}}}
        r = chat(valet, body)
        if r.status_code == 400:
            assert r.json()["error"]["param"] == "max_tokens", r.text
            continue
        assert r.status_code == 200, r.text
        content = r.json()["choices"][0]["message"]["content"]
        jsonschema.validate(json.loads(content), schema, format_checker=checker)
        assert r.json()["choices"][0]["finish_reason"] == "stop"
        answered |= keywords(schema)
        print(content)
    # Every new keyword was answered at least once, not only refused for its budget.
    assert {"pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "allOf"} <= answered


@pytest.mark.parametrize("schema,param", [
    ({"type": "object", "properties": {"x": {"type": "number", "multipleOf": 2}}},
     "response_format.json_schema.schema.properties.x.multipleOf"),
    ({"$ref": "#/$defs/Missing"}, "response_format.json_schema.schema.$ref"),
    ({"type": "wibble"}, "response_format.json_schema.schema.type"),
    ({"type": "string", "pattern": "(?=a)b"}, "response_format.json_schema.schema.pattern"),
    ({"type": "string", "pattern": r"(a)\1"}, "response_format.json_schema.schema.pattern"),
    ({"type": "object", "properties": {"h": {"type": "string", "format": "hostname"}}},
     "response_format.json_schema.schema.properties.h.format"),
    ({"type": "integer", "minimum": 10, "maximum": 3}, "response_format.json_schema.schema.minimum"),
    ({"allOf": [{"type": "string"}, {"maxLength": 2}]}, "response_format.json_schema.schema.allOf"),
])
def test_unsupported_schemas_are_400_naming_the_keyword(valet, schema, param):
    r = chat(valet, {"messages": ask("hi"), "max_tokens": 20,
                     "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["param"] == param


def test_budget_below_the_shortest_answer_is_400(valet):
    schema = {"type": "object", "properties": {"a_rather_long_property_name": {"type": "string"}},
              "required": ["a_rather_long_property_name"]}
    r = chat(valet, {"messages": ask("hi"), "max_tokens": 2,
                     "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens", r.text


def test_bad_response_format_is_400(valet):
    r = chat(valet, {"messages": ask("hi"), "response_format": {"type": "xml"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format.type"


def test_unconstrained_greedy_output_unchanged(valet):
    body = {"messages": ask("Which planet is known as the Red Planet?"), "max_tokens": 24}
    plain = chat(valet, body).json()["choices"][0]["message"]["content"]
    text = chat(valet, {**body, "response_format": {"type": "text"}}).json()["choices"][0]["message"]["content"]
    assert plain == text
    assert "Mars" in plain


def test_constrained_jobs_are_counted_and_recorded_by_kind(valet):
    def count(kind):
        for line in requests.get(valet.base + "/metrics", timeout=30).text.splitlines():
            if line.startswith(f'valet_structured_requests_total{{kind="{kind}"}}'):
                return float(line.split()[-1])
        raise AssertionError(kind)

    before = {k: count(k) for k in ("json_object", "json_schema")}
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    ids = {
        "json_object": chat(valet, {"messages": ask("JSON please."), "max_tokens": 24,
                                    "response_format": {"type": "json_object"}}).json()["id"],
        "json_schema": chat(valet, {"messages": ask("Is it ok?"), "max_tokens": 24, "response_format": {
            "type": "json_schema", "json_schema": {"name": "ok", "schema": schema}}}).json()["id"],
    }
    for kind, job_id in ids.items():
        assert count(kind) == before[kind] + 1
        row = requests.get(valet.base + f"/v1/jobs/{job_id}", headers=valet.headers(), timeout=30).json()
        assert row["constraint"] == kind


def test_grammar_compile_time_is_observed_once_per_compiled_schema(valet):
    def series():
        out = {}
        for line in requests.get(valet.base + "/metrics", timeout=30).text.splitlines():
            if line.startswith("valet_grammar_compile_seconds_") and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    before = series()
    assert before["valet_grammar_compile_seconds_count"] == before['valet_grammar_compile_seconds_bucket{le="+Inf"}']
    schema = {"type": "object", "properties": {f"when_{random.randrange(10**9)}": {"type": "string", "format": "date"}},
              "additionalProperties": False}
    schema["required"] = list(schema["properties"])
    body = {"messages": ask("When?"), "max_tokens": 30,
            "response_format": {"type": "json_schema", "json_schema": {"name": "when", "schema": schema}}}
    assert chat(valet, body).status_code == 200
    after = series()
    assert after["valet_grammar_compile_seconds_count"] == before["valet_grammar_compile_seconds_count"] + 1
    assert after["valet_grammar_compile_seconds_sum"] > before["valet_grammar_compile_seconds_sum"]
    # The same schema again is a cache hit: nothing is compiled.
    assert chat(valet, body).status_code == 200
    assert series()["valet_grammar_compile_seconds_count"] == after["valet_grammar_compile_seconds_count"]
