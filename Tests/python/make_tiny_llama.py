#!/usr/bin/env python3
# Writes a tiny random llama GGUF whose matrices span every tensor type Valet supports (K-quants included),
# so the engine can be compared with oracle.py on types the default model doesn't use.
"""
usage: make_tiny_llama.py OUT.gguf [--seed N] [--rope-scaling linear:FACTOR] [--tied]

2 layers, dim 256 (K-quant rows must be multiples of 256), 4 heads of 64 with 2 KV heads, FFN 512, a 320-token
byte-level BPE vocabulary (3 ChatML control tokens, 256 byte tokens, 61 merges learnt from a short text) with
`gpt2`/`smollm` tokenizer metadata and a ChatML template. Matrix types per layer:

            attn_q  attn_k  attn_v  attn_output  ffn_gate  ffn_up  ffn_down
  layer 0   Q4_K    Q5_K    Q6_K    F16          BF16      Q4_0    Q8_0
  layer 1   Q5_K    Q6_K    Q4_0    BF16         Q4_K      F16     Q6_K

token_embd is Q6_K; output.weight is a separate Q4_1 matrix unless --tied. Weights are Gaussian, quantized here
(gguf can quantize F16/BF16/Q4_0/Q4_1/Q8_0 but only dequantize the K-quants, so their quantizers below pack the
GGML block layouts by hand). The oracle reads the result through gguf's own dequantizer, so it is the reference
whatever rounding these quantizers choose.
"""
import argparse
import re
import sys
from collections import Counter

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize

DIM, N_HEAD, N_HEAD_KV, FFN, N_LAYER, N_MERGES = 256, 4, 2, 512, 2, 61
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TYPES = [
    {"attn_q": T.Q4_K, "attn_k": T.Q5_K, "attn_v": T.Q6_K, "attn_output": T.F16, "ffn_gate": T.BF16, "ffn_up": T.Q4_0, "ffn_down": T.Q8_0},
    {"attn_q": T.Q5_K, "attn_k": T.Q6_K, "attn_v": T.Q4_0, "attn_output": T.BF16, "ffn_gate": T.Q4_K, "ffn_up": T.F16, "ffn_down": T.Q6_K},
]
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
TEXT = ("The quick brown fox jumps over the lazy dog. What is the largest ocean on Earth? The Pacific is the largest. "
        "Which planet is known as the Red Planet? Mars is the red planet. Hello there, how are you today? "
        "I am fine, thank you, and you? The weather is nice and the sun is shining on the sea.")


def f16(x: np.ndarray) -> np.ndarray:
    """Rounds to fp16 and back, so the quantizer works with the scale the file will hold."""
    return x.astype(np.float16).astype(np.float32)


def f16_bytes(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).view(np.uint8).reshape(-1, 2)


def safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape), np.float32), where=b != 0)


def scale_min_k(x: np.ndarray, levels: int):
    """Shared Q4_K/Q5_K step: per 32-value sub-block an affine scale and min, each coded as 6 bits of fp16 d/dmin."""
    mn = np.minimum(x.min(axis=-1), 0.0)
    scale = (x.max(axis=-1) - mn) / levels
    d = f16(scale.max(axis=-1) / 63)
    dmin = f16(-mn.min(axis=-1) / 63)
    sc = np.clip(np.rint(safe_div(scale, d[:, None])), 0, 63).astype(np.uint8)
    m = np.clip(np.rint(safe_div(-mn, dmin[:, None])), 0, 63).astype(np.uint8)
    q = np.rint(safe_div(x + (dmin[:, None] * m)[..., None], (d[:, None] * sc)[..., None]))
    q = np.clip(q, 0, levels).astype(np.uint8)
    # 12 packed bytes: low 6 bits of scales 0-3 and mins 0-3, their top bits carrying the high 2 bits of
    # scales/mins 4-7, whose low 4 bits share bytes 8-11.
    packed = np.zeros((x.shape[0], 12), np.uint8)
    packed[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    packed[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:8] & 0xF) | ((m[:, 4:8] & 0xF) << 4)
    return d, dmin, packed, q


def nibbles_k(q: np.ndarray) -> np.ndarray:
    """128 bytes: chunk c holds sub-block 2c in the low and 2c+1 in the high nibbles."""
    return (q[:, 0::2, :] & 0xF | ((q[:, 1::2, :] & 0xF) << 4)).reshape(q.shape[0], 128)


def quant_q4_k(w: np.ndarray) -> np.ndarray:
    x = w.reshape(-1, 8, 32).astype(np.float32)
    d, dmin, scales, q = scale_min_k(x, 15)
    return np.concatenate([f16_bytes(d), f16_bytes(dmin), scales, nibbles_k(q)], axis=1)


def quant_q5_k(w: np.ndarray) -> np.ndarray:
    x = w.reshape(-1, 8, 32).astype(np.float32)
    d, dmin, scales, q = scale_min_k(x, 31)
    qh = np.zeros((x.shape[0], 32), np.uint8)
    for j in range(8):  # bit j of qh[l] is the fifth bit of value l of sub-block j
        qh |= ((q[:, j, :] >> 4) & 1) << j
    return np.concatenate([f16_bytes(d), f16_bytes(dmin), scales, qh, nibbles_k(q)], axis=1)


def quant_q6_k(w: np.ndarray) -> np.ndarray:
    x = w.reshape(-1, 16, 16).astype(np.float32)
    scale = np.abs(x).max(axis=-1) / 31
    d = f16(scale.max(axis=-1) / 127)
    sc = np.clip(np.rint(safe_div(scale, d[:, None])), -128, 127).astype(np.int8)
    q = np.rint(safe_div(x, (d[:, None] * sc)[..., None]))
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(-1, 2, 4, 32)  # (block, half, quarter, l)
    ql = np.concatenate([(q[:, :, 0] & 0xF) | ((q[:, :, 2] & 0xF) << 4),
                         (q[:, :, 1] & 0xF) | ((q[:, :, 3] & 0xF) << 4)], axis=-1).reshape(-1, 128)
    qh = ((q[:, :, 0] >> 4) | ((q[:, :, 1] >> 4) << 2) | ((q[:, :, 2] >> 4) << 4) | ((q[:, :, 3] >> 4) << 6)).reshape(-1, 64)
    return np.concatenate([ql, qh, sc.view(np.uint8), f16_bytes(d)], axis=1)


K_QUANTIZERS = {T.Q4_K: quant_q4_k, T.Q5_K: quant_q5_k, T.Q6_K: quant_q6_k}


def encode(w: np.ndarray, qtype: T) -> np.ndarray:
    """Raw bytes (rows, row_bytes) of matrix w (rows, cols) in qtype; checked against gguf's dequantizer."""
    rows = w.shape[0]
    if qtype == T.F32:
        return w.astype(np.float32)
    if qtype == T.F16:
        raw = w.astype(np.float16).view(np.uint8)
    elif qtype in K_QUANTIZERS:
        raw = K_QUANTIZERS[qtype](w).reshape(rows, -1)
    else:
        raw = quantize(w.astype(np.float32), qtype)
    raw = np.ascontiguousarray(raw).view(np.uint8).reshape(rows, -1)
    back = dequantize(raw, qtype)
    err = np.abs(back - w).mean() / np.abs(w).mean()
    assert err < 0.2, f"{qtype.name} quantization error {err:.3f} is implausible: the packing is wrong"
    return raw


def bytes_to_unicode() -> list[str]:
    """GPT-2 byte-level alphabet: printable bytes stand for themselves, the rest map to code points from 256 up."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    out, extra = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + extra))
            extra += 1
    return out


def vocabulary() -> tuple[list[str], list[int], list[str]]:
    """Control tokens, the 256 byte tokens, then tokens made by N_MERGES greedy BPE merges over TEXT."""
    alphabet = bytes_to_unicode()
    words = Counter("".join(alphabet[b] for b in w.encode()) for w in re.findall(r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+", TEXT))
    splits = {w: list(w) for w in words}
    merges = []
    for _ in range(N_MERGES):
        pairs = Counter()
        for w, n in words.items():
            s = splits[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))  # deterministic tie-break
        merges.append(f"{a} {b}")
        for w in splits:
            s, out, i = splits[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    tokens = SPECIALS + alphabet + [m.replace(" ", "") for m in merges]
    assert len(set(tokens)) == len(tokens), "merged tokens must be distinct"
    types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))
    return tokens, types, merges


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rope-scaling", help="linear:FACTOR")
    p.add_argument("--tied", action="store_true", help="no output.weight: the output reuses token_embd")
    a = p.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    tokens, types, merges = vocabulary()
    vocab = len(tokens)
    head_dim = DIM // N_HEAD

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name("valet-tiny-llama")
    w.add_block_count(N_LAYER)
    w.add_context_length(512)
    w.add_embedding_length(DIM)
    w.add_feed_forward_length(FFN)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    if a.rope_scaling:
        kind, factor = a.rope_scaling.split(":")
        w.add_rope_scaling_type(gguf.RopeScalingType(kind))
        w.add_rope_scaling_factor(float(factor))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def matrix(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm() -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(DIM)).astype(np.float32)

    def add(name: str, m: np.ndarray, qtype: T) -> None:
        raw = encode(m, qtype)
        w.add_tensor(name, raw, raw_dtype=None if qtype == T.F32 else qtype)

    # Small embedding rows keep the residual stream from being all input token, which with --tied would make
    # every argmax the input token again.
    add("token_embd.weight", (0.3 * rng.standard_normal((vocab, DIM))).astype(np.float32), T.Q6_K)
    shapes = {"attn_q": (DIM, DIM), "attn_k": (N_HEAD_KV * head_dim, DIM), "attn_v": (N_HEAD_KV * head_dim, DIM),
              "attn_output": (DIM, DIM), "ffn_gate": (FFN, DIM), "ffn_up": (FFN, DIM), "ffn_down": (DIM, FFN)}
    for i, layer in enumerate(TYPES):
        add(f"blk.{i}.attn_norm.weight", norm(), T.F32)
        add(f"blk.{i}.ffn_norm.weight", norm(), T.F32)
        for name, qtype in layer.items():
            add(f"blk.{i}.{name}.weight", matrix(*shapes[name]), qtype)
    add("output_norm.weight", norm(), T.F32)
    if not a.tied:
        add("output.weight", matrix(vocab, DIM) * 4, T.Q4_1)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
