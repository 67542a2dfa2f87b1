# The prefix cache as clients and operators see it: usage.prompt_tokens_details.cached_tokens through the official
# openai client (whole and streamed), cache_salt isolation and validation, /metrics, /v1/metrics, /v1/jobs/{id},
# and a server started with --prefix-cache off.
import json
import uuid

import requests

from conftest import ValetProcess

BLOCK = 16


def system_prompt():
    """A system prompt no other test sends (the nonce leads, so even the first block is new)."""
    return (f"[{uuid.uuid4().hex}] You are a patient assistant for a hardware shop. Answer questions about tools, "
            "screws, paint and garden supplies in one short sentence, and never invent prices or stock levels.")


def chat(server, system, question, **extra):
    return server.client().chat.completions.create(
        model=server.model_name, max_tokens=3, temperature=0,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}], **extra)


def cached(usage):
    return usage.prompt_tokens_details.cached_tokens


def metric(server, name):
    text = requests.get(server.base + "/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_repeated_prompt_reports_cached_tokens(valet):
    system = system_prompt()
    hits_before = metric(valet, "valet_prefix_cache_hits_total")
    first = chat(valet, system, "Which screwdriver fits a Phillips screw?")
    second = chat(valet, system, "Which screwdriver fits a Phillips screw?")
    assert cached(first.usage) == 0
    prompt = second.usage.prompt_tokens
    # Every prompt token but the last, whose logits must be computed: whole blocks shared, then the rows of the
    # first answer's last, partly filled block copied.
    assert cached(second.usage) == prompt - 1 > BLOCK
    assert second.choices[0].message.content == first.choices[0].message.content
    assert metric(valet, "valet_prefix_cache_hits_total") - hits_before >= cached(second.usage)

    # Another question after the same system prompt shares the system prompt's blocks.
    other = chat(valet, system, "Do you sell outdoor paint?")
    assert 0 < cached(other.usage) < other.usage.prompt_tokens

    # The job record says the same.
    job = requests.get(valet.base + f"/v1/jobs/{second.id}", headers=valet.headers(), timeout=30).json()
    assert job["cached_tokens"] == cached(second.usage)
    assert job["prompt_tokens"] == prompt
    report = requests.get(valet.base + "/v1/metrics", headers=valet.headers(), timeout=30).json()
    assert report["prefix_cache"]["enabled"] is True
    assert report["prefix_cache"]["hit_tokens"] >= cached(second.usage) + cached(other.usage)
    assert 0 < report["prefix_cache"]["hit_ratio"] <= 1
    assert 0 <= report["cached_capacity"] <= report["available_capacity"] <= report["total_capacity"]


def test_streamed_usage_chunk_carries_cached_tokens(valet):
    system = system_prompt()
    chat(valet, system, "What size drill bit for a 6 mm wall plug?")
    stream = chat(valet, system, "What size drill bit for a 6 mm wall plug?", stream=True,
                  stream_options={"include_usage": True})
    chunks = list(stream)
    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert cached(usage) == usage.prompt_tokens - 1 > BLOCK


def test_completions_report_cached_tokens_too(valet):
    prompt = system_prompt() + " Q: Is linseed oil good for garden furniture? A:"
    client = valet.client()
    first = client.completions.create(model=valet.model_name, prompt=prompt, max_tokens=2, temperature=0)
    second = client.completions.create(model=valet.model_name, prompt=prompt, max_tokens=2, temperature=0)
    assert cached(first.usage) == 0
    assert cached(second.usage) > 0
    assert second.choices[0].text == first.choices[0].text


def test_repeated_echo_scoring_hits_and_scores_the_shared_context_alike(valet):
    # lm-evaluation-harness's pattern: one context, many continuations, each scored with echo and logprobs.
    context = system_prompt() + " Q: What do you use to loosen a rusted bolt? A:"
    client = valet.client()

    def score(continuation):
        return client.completions.create(model=valet.model_name, prompt=context + continuation, max_tokens=0,
                                         echo=True, logprobs=2, temperature=0)

    first, second = score(" penetrating oil"), score(" a bigger spanner")
    assert cached(first.usage) == 0
    assert cached(second.usage) > 0
    a, b = first.choices[0].logprobs, second.choices[0].logprobs
    shared = 0
    while shared < min(len(a.tokens), len(b.tokens)) and a.tokens[shared] == b.tokens[shared]:
        shared += 1
    assert shared >= cached(second.usage)
    # Every shared position scores the same, the cached ones included; the first token has none.
    assert a.token_logprobs[0] is None and b.token_logprobs[0] is None
    assert a.token_logprobs[:shared] == b.token_logprobs[:shared]
    assert a.top_logprobs[1:shared] == b.top_logprobs[1:shared]
    assert all(len(t) >= 2 for t in b.top_logprobs[1:])


def test_a_different_salt_finds_nothing(valet):
    system = system_prompt()
    question = "Can I paint over rust?"
    a1 = chat(valet, system, question, extra_body={"cache_salt": "tenant-a"})
    b1 = chat(valet, system, question, extra_body={"cache_salt": "tenant-b"})
    unsalted = chat(valet, system, question)
    a2 = chat(valet, system, question, extra_body={"cache_salt": "tenant-a"})
    assert cached(a1.usage) == 0
    assert cached(b1.usage) == 0
    assert cached(unsalted.usage) == 0
    assert cached(a2.usage) > 0
    assert a2.choices[0].message.content == a1.choices[0].message.content == b1.choices[0].message.content


def test_a_non_string_cache_salt_is_a_400(valet):
    for salt in (5, ["a"], ""):
        body = {"model": valet.model_name, "messages": [{"role": "user", "content": "hi"}], "cache_salt": salt}
        r = requests.post(valet.base + "/v1/chat/completions", data=json.dumps(body), headers=valet.headers(),
                          timeout=60)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["param"] == "cache_salt" and error["type"] == "invalid_request_error"


def test_with_the_cache_off_nothing_is_cached():
    server = ValetProcess("--ctx-size", "1024", "--prefix-cache", "off")
    try:
        system = system_prompt()
        first = chat(server, system, "Which glue holds wood best?")
        second = chat(server, system, "Which glue holds wood best?")
        assert cached(first.usage) == 0 and cached(second.usage) == 0
        assert second.choices[0].message.content == first.choices[0].message.content
        report = requests.get(server.base + "/v1/metrics", headers=server.headers(), timeout=30).json()
        assert report["prefix_cache"]["enabled"] is False and report["prefix_cache"]["hit_tokens"] == 0
        assert metric(server, "valet_prefix_cache_queries_total") == 0
    finally:
        server.stop()
