# /tokenize, /detokenize and /apply-template (also under /v1/) in llama-server's shapes, checked against what a
# chat request really costs and against the token-id prompt path.
import json

import requests

from test_openai_api import assert_error

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]


def post(server, path, body):
    return requests.post(server.base + path, data=json.dumps(body), headers=server.headers(), timeout=60)


def test_tokenize_round_trips_and_pieces_spell_the_text(valet):
    text = "Hello world, ünïcode and <|im_start|> too"
    r = post(valet, "/tokenize", {"content": text})
    assert r.status_code == 200, r.text
    tokens = r.json()["tokens"]
    assert tokens and all(isinstance(t, int) for t in tokens)
    # parse_special defaults to true: the ChatML marker is one token, and reads as text when turned off.
    plain = post(valet, "/v1/tokenize", {"content": text, "parse_special": False}).json()["tokens"]
    assert len(plain) > len(tokens)
    pieces = post(valet, "/v1/tokenize", {"content": text, "with_pieces": True}).json()["tokens"]
    assert [p["id"] for p in pieces] == tokens
    spelled = b"".join(p["piece"].encode() if isinstance(p["piece"], str) else bytes(p["piece"]) for p in pieces)
    assert spelled.decode() == text
    back = post(valet, "/detokenize", {"tokens": tokens})
    assert back.status_code == 200 and back.json() == {"content": text}
    assert post(valet, "/v1/detokenize", {"tokens": []}).json() == {"content": ""}


def test_apply_template_is_exactly_what_a_chat_request_costs(valet):
    r = post(valet, "/apply-template", {"messages": MESSAGES})
    assert r.status_code == 200, r.text
    prompt = r.json()["prompt"]
    assert prompt.endswith("<|im_start|>assistant\n") and "<|im_start|>user\nName a colour.<|im_end|>" in prompt
    # The text already holds any BOS Valet adds, so it is tokenized without adding another.
    tokens = post(valet, "/tokenize", {"content": prompt}).json()["tokens"]
    chat = valet.client().chat.completions.create(model=valet.model_name, messages=MESSAGES, max_tokens=1)
    assert chat.usage.prompt_tokens == len(tokens)
    # And the same ids as a completions prompt cost the same and answer as the chat does.
    greedy = dict(model=valet.model_name, max_tokens=6, temperature=0)
    by_ids = valet.client().completions.create(prompt=tokens, **greedy)
    assert by_ids.usage.prompt_tokens == len(tokens)
    by_chat = valet.client().chat.completions.create(messages=MESSAGES, **greedy)
    assert by_ids.choices[0].text == by_chat.choices[0].message.content
    assert post(valet, "/v1/apply-template", {"messages": MESSAGES}).json()["prompt"] == prompt


def test_tokenizer_routes_errors(valet):
    assert_error(post(valet, "/tokenize", {}), 400, param="content")
    assert_error(post(valet, "/tokenize", {"content": 5}), 400, param="content")
    assert_error(post(valet, "/tokenize", {"content": "x", "with_pieces": "yes"}), 400, param="with_pieces")
    assert_error(post(valet, "/tokenize", {"content": "x", "model": "other"}), 404, param="model")
    assert_error(post(valet, "/detokenize", {"tokens": [1, 10 ** 9]}), 400, param="tokens[1]")
    assert_error(post(valet, "/detokenize", {"tokens": "abc"}), 400, param="tokens")
    assert_error(post(valet, "/detokenize", {"tokens": ["a"]}), 400, param="tokens[0]")
    assert_error(post(valet, "/apply-template", {"messages": []}), 400, param="messages")
    assert_error(post(valet, "/apply-template", {"messages": [{"role": "wizard", "content": "x"}]}), 400,
                 param="messages[0].role")
    r = requests.post(valet.base + "/tokenize", data="{}", timeout=30)
    assert_error(r, 401)


def test_token_id_prompts_through_the_official_client_and_litellm(valet):
    import os

    import openai
    import pytest

    ids = post(valet, "/tokenize", {"content": "The capital of France is"}).json()["tokens"]
    other = post(valet, "/tokenize", {"content": "Hello world"}).json()["tokens"]
    greedy = dict(model=valet.model_name, max_tokens=4, temperature=0)
    client = valet.client()
    single = client.completions.create(prompt=ids, **greedy)
    by_text = client.completions.create(prompt="The capital of France is", **greedy)
    assert single.choices[0].text == by_text.choices[0].text and "Paris" in single.choices[0].text
    # Several id prompts with n: choice i*n + j is prompt i's j-th, and greedy choices of one prompt agree.
    many = client.completions.create(prompt=[ids, other], n=2, **greedy)
    texts = [c.text for c in sorted(many.choices, key=lambda c: c.index)]
    assert [c.index for c in sorted(many.choices, key=lambda c: c.index)] == [0, 1, 2, 3]
    assert texts[0] == texts[1] == single.choices[0].text and texts[2] == texts[3]
    assert many.usage.prompt_tokens == len(ids) + len(other)
    with pytest.raises(openai.BadRequestError) as bad:
        client.completions.create(prompt=[ids, [1, 10 ** 6]], **greedy)
    assert bad.value.body["param"] == "prompt[1][1]"
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no price-list fetch on import
    litellm = pytest.importorskip("litellm")
    lite = litellm.text_completion(model="openai/" + valet.model_name, prompt=ids, api_base=valet.base + "/v1",
                                   api_key=valet.api_key, max_tokens=4, temperature=0)
    assert lite.choices[0].text == single.choices[0].text
