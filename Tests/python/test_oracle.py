# Keeps the numpy oracle honest: it must answer the sanity prompts as llama.cpp does with the default model,
# its KV-cached decoding must equal full recomputation, and its CLI must write what the Swift tests read.
import json
import os
import subprocess
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as oracle.py does; see there
import numpy as np  # noqa: E402
import pytest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import oracle  # noqa: E402

MODEL = os.environ.get("VALET_TEST_MODEL") or os.path.join(HERE, "..", "..", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

# ChatML with SmolLM2's default system message, token ids from gguf_tokenize.py --chat.
SYSTEM = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198]
RED_PLANET = SYSTEM + [1, 4093, 198, 14413, 3925, 314, 1343, 347, 260, 3950, 16728, 47, 2, 198, 1, 520, 9531, 198]
OCEAN = SYSTEM + [1, 4093, 198, 1780, 314, 260, 3995, 5065, 335, 2591, 47, 2, 198, 1, 520, 9531, 198]


@pytest.fixture(scope="module")
def model():
    if not os.path.exists(MODEL):
        pytest.skip(f"default model missing at {MODEL}: run `make model`")
    return oracle.Model(MODEL)


def text(m, ids):
    # Byte-level BPE pieces spell spaces and newlines as these two code points; enough to search for a word.
    vocab = m.reader.fields["tokenizer.ggml.tokens"].contents()
    return "".join(vocab[i] for i in ids).replace("\u0120", " ").replace("\u010a", "\n")


def test_sanity_answers(model):
    _, mars = oracle.greedy(model, RED_PLANET, 20)
    assert "Mars" in text(model, mars)
    _, ocean = oracle.greedy(model, OCEAN, 12)
    assert "Pacific" in text(model, ocean)


def test_kv_cache_matches_recomputation(model):
    seq = RED_PLANET[:12]
    full = oracle.Session(model).forward(seq)
    s = oracle.Session(model)
    parts = [s.forward(seq[:5]), s.forward(seq[5:6]), s.forward(seq[6:])]
    stepped = np.concatenate(parts)
    assert stepped.shape == (12, model.vocab)
    scale = np.abs(full).max()
    assert np.abs(stepped - full).max() <= 1e-4 * scale
    assert (stepped.argmax(-1) == full.argmax(-1)).all()


def test_cli_writes_logits_and_greedy(model, tmp_path):
    logits_path, json_path = tmp_path / "l.f32", tmp_path / "g.json"
    tokens = RED_PLANET[:6]
    subprocess.run([sys.executable, os.path.join(HERE, "oracle.py"), "--model", MODEL, "--tokens", ",".join(map(str, tokens)),
                    "--logits-out", str(logits_path), "--greedy", "3", "--json-out", str(json_path)], check=True)
    logits = np.fromfile(logits_path, dtype="<f4").reshape(len(tokens), model.vocab)
    expected, ids = oracle.greedy(model, tokens, 3)
    # Another process may sum in another order (BLAS threads), so equal up to float32 rounding.
    assert np.abs(logits - expected).max() <= 1e-5 * np.abs(expected).max()
    out = json.loads(json_path.read_text())
    assert out["greedy"] == ids and len(ids) == 3
    assert out["eos_token_id"] == 2


def test_cli_rejects_bad_tokens(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(HERE, "oracle.py"), "--model", MODEL, "--tokens", "1,x",
                        "--logits-out", str(tmp_path / "l.f32")], capture_output=True, text=True)
    assert r.returncode != 0 and "comma-separated integers" in r.stderr


@pytest.mark.parametrize("options", [[], ["--tied", "--rope-scaling", "linear:2"]])
def test_tiny_llama_every_type(tmp_path, options):
    # The tiny model covers K-quants, F16, BF16, Q4_0 and a KV-group of 2; incremental decoding must still agree.
    path = str(tmp_path / "tiny.gguf")
    subprocess.run([sys.executable, os.path.join(HERE, "make_tiny_llama.py"), path] + options, check=True)
    m = oracle.Model(path)
    kinds = {t.tensor_type.name for t in m.reader.tensors}
    assert {"Q4_K", "Q5_K", "Q6_K", "F16", "BF16", "Q4_0", "Q8_0", "F32"} <= kinds
    assert ("output.weight" in m.tensors) == (not options)
    assert m.pos_scale == (0.5 if options else 1.0)
    seq = [1, 5, 100, 200, 300, 2, 7, 64]
    full = oracle.Session(m).forward(seq)
    s = oracle.Session(m)
    stepped = np.concatenate([s.forward(seq[:3])] + [s.forward([t]) for t in seq[3:]])
    assert np.abs(stepped - full).max() <= 1e-4 * np.abs(full).max()
    assert np.isfinite(full).all() and full.std() > 0.1
