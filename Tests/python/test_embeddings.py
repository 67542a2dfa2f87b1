# /v1/embeddings end to end: vectors against the numpy oracle's pooled hidden states, every input shape, both
# encodings, the official client and LiteLLM, the job record, and the errors.
import base64
import json
import os
import sys

import numpy as np
import pytest
import requests

from conftest import ValetProcess, _model
from test_openai_api import assert_error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402

TEXTS = ["The cat sat on the mat.", "Paris is the capital of France."]


@pytest.fixture(scope="module")
def model():
    return oracle.Model(str(_model()))


def post(server, body):
    return requests.post(server.base + "/v1/embeddings", data=json.dumps(body), headers=server.headers(), timeout=120)


def tokens(server, text):
    # add_special: the ids Valet itself feeds for a text input (BOS when the model wants one).
    r = requests.post(server.base + "/tokenize", data=json.dumps({"content": text, "add_special": True}),
                      headers=server.headers(), timeout=30)
    return r.json()["tokens"]


def pooled(model, ids, pooling):
    h = oracle.Session(model).hidden(ids).astype(np.float64)
    v = {"mean": h.mean(axis=0), "last": h[-1], "cls": h[0]}[pooling]
    return v / np.linalg.norm(v)


def vectors(response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    assert [d["index"] for d in body["data"]] == list(range(len(body["data"])))
    assert all(d["object"] == "embedding" for d in body["data"])
    return body, [np.asarray(d["embedding"], dtype=np.float64) for d in body["data"]]


def test_mean_pooled_vectors_match_the_oracle(valet, model):
    body, got = vectors(post(valet, {"model": valet.model_name, "input": TEXTS}))
    ids = [tokens(valet, t) for t in TEXTS]
    assert body["model"] == valet.model_name
    assert body["usage"] == {"prompt_tokens": sum(map(len, ids)), "total_tokens": sum(map(len, ids))}
    for v, i in zip(got, ids):
        assert v.shape == (model.dim,)
        assert abs(np.linalg.norm(v) - 1) < 1e-5
        want = pooled(model, i, "mean")
        assert float(v @ want) > 0.999, float(v @ want)
        assert np.max(np.abs(v - want)) < 0.02
    # Two different sentences are not the same vector.
    assert float(got[0] @ got[1]) < 0.99


def test_every_input_shape_and_both_encodings_agree(valet):
    ids = [tokens(valet, t) for t in TEXTS]
    _, single = vectors(post(valet, {"model": valet.model_name, "input": TEXTS[0]}))
    _, by_ids = vectors(post(valet, {"model": valet.model_name, "input": ids[0]}))
    _, by_id_lists = vectors(post(valet, {"model": valet.model_name, "input": ids}))
    _, by_texts = vectors(post(valet, {"model": valet.model_name, "input": TEXTS, "dimensions": len(single[0])}))
    assert np.allclose(single[0], by_ids[0], atol=1e-5)
    for a, b in zip(by_id_lists, by_texts):
        assert np.allclose(a, b, atol=1e-5)
    r = post(valet, {"model": valet.model_name, "input": TEXTS, "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    decoded = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in r.json()["data"]]
    for a, b in zip(decoded, by_texts):
        assert np.allclose(a, b, atol=1e-5)


def test_official_client_and_litellm(valet):
    client = valet.client()
    # The openai client asks for base64 and decodes it itself.
    got = client.embeddings.create(model=valet.model_name, input=TEXTS)
    assert len(got.data) == 2 and len(got.data[0].embedding) > 100
    assert got.usage.prompt_tokens > 0
    # Offline: LiteLLM would otherwise fetch its price list from the network when imported.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm = pytest.importorskip("litellm")
    lite = litellm.embedding(model="openai/" + valet.model_name, input=TEXTS, api_base=valet.base + "/v1",
                             api_key=valet.api_key)
    assert len(lite.data) == 2
    assert np.allclose(np.asarray(lite.data[1]["embedding"]), np.asarray(got.data[1].embedding), atol=1e-5)


def test_embedding_jobs_are_recorded_and_counted(valet):
    r = post(valet, {"model": valet.model_name, "input": "count me"})
    assert r.status_code == 200
    job_id = r.headers["X-Request-Id"]
    job = requests.get(f"{valet.base}/v1/jobs/{job_id}", headers=valet.headers(), timeout=30)
    deadline = 50
    while job.status_code == 404 and deadline:
        import time

        time.sleep(0.1)
        deadline -= 1
        job = requests.get(f"{valet.base}/v1/jobs/{job_id}", headers=valet.headers(), timeout=30)
    assert job.status_code == 200, job.text
    assert job.json()["kind"] == "embedding" and job.json()["status"] == "completed"
    assert job.json()["completion_tokens"] == 0 and job.json()["prompt_tokens"] == r.json()["usage"]["prompt_tokens"]
    metrics = requests.get(valet.base + "/metrics", timeout=30).text
    assert 'handler="/v1/embeddings"' in metrics


def test_embedding_errors(valet):
    m = valet.model_name
    assert_error(post(valet, {"model": m}), 400, param="input")
    assert_error(post(valet, {"model": m, "input": ""}), 400, param="input")
    assert_error(post(valet, {"model": m, "input": ["a", ""]}), 400, param="input[1]")
    assert_error(post(valet, {"model": m, "input": []}), 400, param="input")
    assert_error(post(valet, {"model": m, "input": [[1, 2], [3, 10 ** 7]]}), 400, param="input[1][1]")
    assert_error(post(valet, {"model": m, "input": "x", "dimensions": 64}), 400, param="dimensions")
    assert_error(post(valet, {"model": m, "input": "x", "encoding_format": "int8"}), 400, param="encoding_format")
    assert_error(post(valet, {"model": "other", "input": "x"}), 404, param="model")
    assert_error(post(valet, {"model": m, "input": " word" * 3000}), 400, param="input")


def test_last_token_pooling_matches_the_oracle(model):
    server = ValetProcess("--ctx-size", "512", "--pooling", "last")
    try:
        _, got = vectors(post(server, {"model": server.model_name, "input": TEXTS[1]}))
        want = pooled(model, tokens(server, TEXTS[1]), "last")
        assert float(got[0] @ want) > 0.999
        assert "pooling last" in server.log_text()
    finally:
        server.stop()
