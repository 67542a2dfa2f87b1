#!/usr/bin/env python3
# Independent oracle for Valet's engine: a small numpy llama forward pass over a GGUF read with the `gguf` package.
# It shares no code with Valet; the Swift fidelity tests compare their logits and greedy tokens with its output.
"""
usage: oracle.py --model M.gguf --tokens 1,2,3 --logits-out FILE.f32 [--greedy N --json-out FILE.json]

Writes the logits of every given position as float32 little-endian, row-major [positions x vocab]. With
--greedy N it also continues greedily for N tokens (argmax, no stop at end-of-generation tokens: cut the list
at the first one if you stop there) and writes {"greedy": [ids...], "eos_token_id": id} to --json-out.

The model (architecture `llama`):
  x = embedding[tokens]
  per layer:  h = rmsnorm(x) * attn_norm
              q, k, v = h Wq^T, h Wk^T, h Wv^T, split into heads (K/V have fewer heads: grouped-query attention,
                        query head i reads K/V head i // (n_head / n_head_kv))
              q, k rotated by RoPE; causal softmax(q k^T / sqrt(head_dim)) v;  x += attn Wo^T
              h = rmsnorm(x) * ffn_norm;  x += (silu(h Wgate^T) * (h Wup^T)) Wdown^T
  logits = (rmsnorm(x) * output_norm) Wout^T, with Wout = output.weight or, if absent, the tied token_embd.weight.
RoPE rotates ADJACENT pairs (x[2i], x[2i+1]) by pos * theta_i, theta_i = freq_base^(-2i/rope_dim): llama.cpp's
converter permutes the Q/K rows of Hugging Face llama checkpoints so that this pairing reproduces HF's rotate-half.
Rope scaling: `linear` (positions divided by the factor) and per-dimension `rope_freqs.weight` factors (Llama 3.1)
are applied; other scaling types are refused with a clear error rather than silently ignored.
All weights are dequantized once with gguf.quants.dequantize (float32); matmuls run in float32, the norms and
softmax in float64.

How it was validated (SmolLM2-135M-Instruct Q4_1, the default model):
- With the ChatML prompt for "Which planet is known as the Red Planet?" (SmolLM2's default system message; token ids
  from gguf_tokenize.py, which builds the GGUF's byte-level BPE with HF `tokenizers`) the greedy answer names Mars,
  and "What is the largest ocean on Earth?" names the Pacific, as llama.cpp does with this model at temperature 0.
- Pairing RoPE as rotate-half instead (the wrong convention for converted llama files) turns both answers into
  nonsense, so the check does discriminate.
- Incremental decoding with the KV cache gives the same logits as recomputing the whole sequence (test_oracle.py).
"""
import argparse
import json
import os
import sys

# One BLAS thread: on a shared 2-core machine OpenBLAS's spinning threads made a 40-token prompt 16x slower,
# and a fixed thread count keeps float summation order, hence the logits, reproducible.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import gguf  # noqa: E402
from gguf.quants import dequantize  # noqa: E402


class Model:
    def __init__(self, path: str):
        self.reader = gguf.GGUFReader(path)
        f = self.reader.fields
        arch = f["general.architecture"].contents()
        if arch != "llama":
            raise SystemExit(f"oracle: unsupported architecture {arch!r} in {path}")

        def meta(key, default=None):
            field = f.get(f"{arch}.{key}")
            if field is None:
                if default is None:
                    raise SystemExit(f"oracle: {path} lacks {arch}.{key}")
                return default
            return field.contents()

        self.n_layer = int(meta("block_count"))
        self.dim = int(meta("embedding_length"))
        self.n_head = int(meta("attention.head_count"))
        self.n_head_kv = int(meta("attention.head_count_kv", self.n_head))
        self.head_dim = int(meta("attention.key_length", self.dim // self.n_head))
        if int(meta("attention.value_length", self.head_dim)) != self.head_dim:
            raise SystemExit("oracle: attention.value_length != key_length is not implemented")
        self.rope_dim = int(meta("rope.dimension_count", self.head_dim))
        self.eps = float(meta("attention.layer_norm_rms_epsilon", 1e-5))
        self.freq_base = float(meta("rope.freq_base", 10000.0))
        scaling = meta("rope.scaling.type", "none")
        factor = float(meta("rope.scaling.factor", 0.0) or 0.0)
        if scaling in ("none",) or factor in (0.0, 1.0):
            self.pos_scale = 1.0
        elif scaling == "linear":
            self.pos_scale = 1.0 / factor
        else:
            raise SystemExit(f"oracle: rope scaling {scaling!r} is not implemented")
        eos = f.get("tokenizer.ggml.eos_token_id")
        self.eos = int(eos.contents()) if eos is not None else None

        self.tensors = {t.name: t for t in self.reader.tensors}
        self.emb = self.weight("token_embd.weight")
        self.vocab = self.emb.shape[0]
        self.out = self.weight("output.weight") if "output.weight" in self.tensors else self.emb
        self.out_norm = self.weight("output_norm.weight")
        self.layers = []
        for i in range(self.n_layer):
            w = {n: self.weight(f"blk.{i}.{n}.weight")
                 for n in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
            self.layers.append(w)

        inv = self.freq_base ** (-np.arange(0, self.rope_dim, 2, dtype=np.float64) / self.rope_dim)
        if "rope_freqs.weight" in self.tensors:
            inv = inv / self.weight("rope_freqs.weight").astype(np.float64)
        self.inv_freq = inv

    def weight(self, name: str) -> np.ndarray:
        """A tensor as float32 in numpy order: GGML dims [ne0, ne1] become shape (ne1, ne0), so W @ x works."""
        t = self.tensors.get(name)
        if t is None:
            raise SystemExit(f"oracle: tensor {name!r} missing")
        shape = tuple(int(d) for d in reversed(t.shape))
        return np.ascontiguousarray(dequantize(np.asarray(t.data), t.tensor_type).reshape(shape).astype(np.float32))


def rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    return (x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps) * w).astype(np.float32)


def rope(x: np.ndarray, positions: np.ndarray, m: Model) -> np.ndarray:
    """x: (n, heads, head_dim). Rotates pairs (x[2i], x[2i+1]) of the first rope_dim dims by angle pos*inv_freq[i]."""
    angles = (positions.astype(np.float64) * m.pos_scale)[:, None] * m.inv_freq[None, :]  # (n, rope_dim/2)
    cos = np.cos(angles)[:, None, :].astype(np.float32)
    sin = np.sin(angles)[:, None, :].astype(np.float32)
    out = x.copy()
    even, odd = x[..., 0:m.rope_dim:2], x[..., 1:m.rope_dim:2]
    out[..., 0:m.rope_dim:2] = even * cos - odd * sin
    out[..., 1:m.rope_dim:2] = even * sin + odd * cos
    return out


class Session:
    """One sequence: a KV cache per layer, grown by `forward` calls over consecutive positions."""

    def __init__(self, m: Model):
        self.m = m
        self.k = [np.zeros((0, m.n_head_kv, m.head_dim), np.float32) for _ in range(m.n_layer)]
        self.v = [np.zeros((0, m.n_head_kv, m.head_dim), np.float32) for _ in range(m.n_layer)]

    def forward(self, tokens: list[int]) -> np.ndarray:
        """Logits (len(tokens), vocab) for tokens placed after everything already in the cache."""
        return self.hidden(tokens) @ self.m.out.T

    def hidden(self, tokens: list[int]) -> np.ndarray:
        """Final normalized hidden states (len(tokens), dim): what the output matrix multiplies."""
        m = self.m
        n, past = len(tokens), self.k[0].shape[0]
        positions = np.arange(past, past + n)
        group = m.n_head // m.n_head_kv
        # Causal mask over (new positions) x (cached + new positions).
        mask = np.where(np.arange(past + n)[None, :] <= positions[:, None], 0.0, -np.inf)
        x = m.emb[np.asarray(tokens)]
        for i, w in enumerate(m.layers):
            h = rmsnorm(x, w["attn_norm"], m.eps)
            q = rope((h @ w["attn_q"].T).reshape(n, m.n_head, m.head_dim), positions, m)
            k = rope((h @ w["attn_k"].T).reshape(n, m.n_head_kv, m.head_dim), positions, m)
            v = (h @ w["attn_v"].T).reshape(n, m.n_head_kv, m.head_dim)
            self.k[i] = np.concatenate([self.k[i], k])
            self.v[i] = np.concatenate([self.v[i], v])
            kk = np.repeat(self.k[i], group, axis=1)  # (T, n_head, hd): query head j uses kv head j // group
            vv = np.repeat(self.v[i], group, axis=1)
            scores = np.einsum("qhd,thd->hqt", q, kk).astype(np.float64) / np.sqrt(m.head_dim) + mask
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = (scores / scores.sum(axis=-1, keepdims=True)).astype(np.float32)
            attn = np.einsum("hqt,thd->qhd", probs, vv).reshape(n, m.n_head * m.head_dim)
            x = x + attn @ w["attn_output"].T
            h = rmsnorm(x, w["ffn_norm"], m.eps)
            gate = h @ w["ffn_gate"].T
            up = h @ w["ffn_up"].T
            x = x + (gate / (1.0 + np.exp(-gate)) * up) @ w["ffn_down"].T
        return rmsnorm(x, m.out_norm, m.eps)


def greedy(m: Model, tokens: list[int], n: int) -> tuple[np.ndarray, list[int]]:
    s = Session(m)
    logits = s.forward(tokens)
    out: list[int] = []
    last = logits[-1]
    for _ in range(n):
        out.append(int(np.argmax(last)))
        last = s.forward([out[-1]])[-1]
    return logits, out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="numpy reference forward pass for llama GGUF models")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", required=True, help="comma-separated token ids")
    p.add_argument("--logits-out", required=True)
    p.add_argument("--greedy", type=int, default=0)
    p.add_argument("--json-out")
    a = p.parse_args(argv)
    if a.greedy and not a.json_out:
        p.error("--greedy needs --json-out")
    try:
        tokens = [int(t) for t in a.tokens.split(",") if t.strip()]
    except ValueError:
        p.error(f"--tokens must be comma-separated integers, got {a.tokens!r}")
    if not tokens:
        p.error("--tokens is empty")
    m = Model(a.model)
    bad = [t for t in tokens if not 0 <= t < m.vocab]
    if bad:
        p.error(f"token ids outside the vocabulary (size {m.vocab}): {bad}")
    logits, ids = greedy(m, tokens, a.greedy)
    logits.astype("<f4").tofile(a.logits_out)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"greedy": ids, "eos_token_id": m.eos}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
