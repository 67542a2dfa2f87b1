#!/usr/bin/env python3
# Writes GGUF fixtures with values computed independently of Valet (by the `gguf` PyPI package) for the Swift tests:
# dequantization of every supported tensor type, reader edge cases, and expected rows of a real model.
"""
usage:
  make_quant_fixture.py quant OUT.gguf            one tensor `q.<TYPE>` per type plus `expect.<TYPE>` (F32)
  make_quant_fixture.py reader DIR                reader fixtures (see write_reader_fixtures) + DIR/manifest.json
  make_quant_fixture.py model-rows MODEL OUT.gguf expected F32 rows `<tensor>#<row>` of a real model's tensors
  make_quant_fixture.py model-all MODEL OUT.gguf  every tensor of a (small) model as F32, same names

Types gguf can quantize (Q8_0, Q4_0, Q4_1, BF16) are quantized from random normals; for the K-quants, which
gguf can only dequantize, blocks are random bytes with sane fp16 super-block scales. Expected values always come
from gguf.quants.dequantize (numpy), never from Valet.
"""
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V
from gguf.quants import dequantize, quantize

ROWS, COLS = 4, 512  # two K-quant super-blocks per row, so block strides within a row are exercised


def half_bytes(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).view(np.uint8).reshape(-1, 2)


def random_kquant(qtype: T, rng: np.random.Generator) -> np.ndarray:
    """Random super-blocks whose fp16 scales are finite and moderate; every other byte is uniformly random."""
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = ROWS * COLS // block_elems
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    if qtype in (T.Q4_K, T.Q5_K):  # d at 0, dmin at 2
        raw[:, 0:2] = half_bytes(rng.uniform(-0.05, 0.05, n_blocks))
        raw[:, 2:4] = half_bytes(rng.uniform(0.0, 0.02, n_blocks))
    elif qtype == T.Q6_K:  # d last
        raw[:, 208:210] = half_bytes(rng.uniform(-0.01, 0.01, n_blocks))
    return raw.reshape(ROWS, -1)


def write_quant_fixture(out: str) -> None:
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    # Every row gets a few exact zeros and an outlier so min/max paths in the quantizers are taken.
    x[:, 5] = 0.0
    x[1, 7] = 9.5
    w = gguf.GGUFWriter(out, "valet-fixture")
    tensors: dict[str, tuple[np.ndarray, T]] = {}

    tensors["F32"] = (x, T.F32)
    f16 = x.astype(np.float16)
    specials = [0.0, -0.0, 65504.0, -65504.0, 6.103515625e-05, 5.960464477539063e-08, -3.0e-06, 1.0e-07,
                np.inf, -np.inf, 1.0 / 3.0, -2.0]
    f16[2, : len(specials)] = np.array(specials, dtype=np.float16)
    tensors["F16"] = (f16.view(np.uint8), T.F16)
    bf = x.copy()
    bf[3, :4] = [np.inf, -np.inf, 1e-40, -3.0e38]
    tensors["BF16"] = (quantize(bf, T.BF16), T.BF16)
    for qtype in (T.Q8_0, T.Q4_0, T.Q4_1):
        tensors[qtype.name] = (quantize(x, qtype), qtype)
    for qtype in (T.Q4_K, T.Q5_K, T.Q6_K):
        tensors[qtype.name] = (random_kquant(qtype, rng), qtype)

    for name, (raw, qtype) in tensors.items():
        if qtype == T.F32:
            w.add_tensor(f"q.{name}", raw)
            expect = raw
        else:
            raw = np.ascontiguousarray(raw).view(np.uint8).reshape(ROWS, -1)
            w.add_tensor(f"q.{name}", raw, raw_dtype=qtype)
            expect = dequantize(raw, qtype).astype(np.float32)
        assert expect.shape == (ROWS, COLS), (name, expect.shape)
        w.add_tensor(f"expect.{name}", np.ascontiguousarray(expect))
    finish(w)


def finish(w: gguf.GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# Metadata of every GGUF value type, including arrays of arrays; the Swift test asserts these exact values.
METADATA = [
    ("t.u8", 200, V.UINT8), ("t.i8", -100, V.INT8), ("t.u16", 60000, V.UINT16), ("t.i16", -30000, V.INT16),
    ("t.u32", 4_000_000_000, V.UINT32), ("t.i32", -2_000_000_000, V.INT32), ("t.f32", 1.5, V.FLOAT32),
    ("t.bool", True, V.BOOL), ("t.str", "h\u00e9llo \u2713", V.STRING), ("t.u64", 2**63 + 5, V.UINT64),
    ("t.i64", -(2**62) - 7, V.INT64), ("t.f64", 3.141592653589793, V.FLOAT64),
]
ARRAYS = [
    ("t.arr.u8", [1, 2, 255], V.UINT8), ("t.arr.i16", [-1, 0, 7], V.INT16), ("t.arr.f32", [0.5, -2.25], V.FLOAT32),
    ("t.arr.str", ["a", "bc", ""], V.STRING), ("t.arr.bool", [True, False, True], V.BOOL),
    ("t.arr.u64", [2**64 - 1, 0], V.UINT64), ("t.arr.f64", [1e300, -0.125], V.FLOAT64),
]


def reader_file(path: str, alignment: int | None) -> list[dict]:
    w = gguf.GGUFWriter(path, "valet-fixture")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, value, vtype in METADATA:
        w.add_key_value(key, value, vtype)
    for key, value, vtype in ARRAYS:
        w.add_key_value(key, value, V.ARRAY, sub_type=vtype)
    w.add_key_value("t.nested", [[1, 2], [3], [4, 5, 6]], V.ARRAY)        # array of arrays of int32
    w.add_key_value("t.nested.str", [["x"], ["y", "z"]], V.ARRAY)         # array of arrays of strings
    w.add_key_value("t.nested3", [[[7]], [[8, 9]]], V.ARRAY)              # three levels
    # Odd byte sizes (20, 14, 4, 2·24) so every tensor after the first needs padding to the alignment.
    w.add_tensor("a", np.arange(5, dtype=np.float32) + 0.5)
    w.add_tensor("b", (np.arange(7, dtype=np.float32) - 3).astype(np.float16))
    w.add_tensor("c", np.array([-1.0], dtype=np.float32))
    w.add_tensor("d", (np.arange(48, dtype=np.float32).reshape(2, 24) / 8))
    finish(w)
    # Where the independent reader says each tensor lives, for the Swift reader to agree with.
    r = gguf.GGUFReader(path)
    return [{"name": t.name, "type": int(t.tensor_type), "dims": [int(d) for d in t.shape],
             "offset": int(t.data_offset), "values": [float(v) for v in np.asarray(t.data, dtype=np.float64).ravel()]}
            for t in r.tensors]


def patch_u32(path: str, offset: int, value: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack("<I", value))


def tensor_type_offset(path: str, name: str, n_dims: int) -> int:
    """Byte offset of a tensor info's type field: after its name (u64 length + bytes), n_dims (u32) and dims (u64 each)."""
    blob = open(path, "rb").read()
    key = struct.pack("<Q", len(name)) + name.encode()
    at = blob.index(key)
    return at + len(key) + 4 + 8 * n_dims


def write_reader_fixtures(d: str) -> None:
    os.makedirs(d, exist_ok=True)
    manifest = {
        "v3": reader_file(os.path.join(d, "v3.gguf"), None),
        "aligned": reader_file(os.path.join(d, "aligned.gguf"), 256),
    }
    # v2 has the same layout as v3 (v3 only added big-endian files); the version field is the difference.
    v2 = os.path.join(d, "v2.gguf")
    manifest["v2"] = reader_file(v2, None)
    patch_u32(v2, 4, 2)
    # A tensor whose type number no GGML version defines.
    unk = os.path.join(d, "unknown_type.gguf")
    w = gguf.GGUFWriter(unk, "valet-fixture")
    w.add_tensor("ok", np.zeros(4, dtype=np.float32))
    w.add_tensor("blk.0.mystery", np.zeros(8, dtype=np.float32))
    finish(w)
    patch_u32(unk, tensor_type_offset(unk, "blk.0.mystery", 1), 99)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f)


# Rows of the default model to check: first, last and a few in between of the Q8_0 embedding and Q4_1 weights.
MODEL_ROWS = {
    "token_embd.weight": [0, 1, 17, 1000, 49151],
    "blk.0.attn_q.weight": [0, 100, 575],
    "blk.0.ffn_gate.weight": [3, 1535],
    "blk.29.ffn_down.weight": [0, 575],
    "blk.0.attn_norm.weight": [0],
}


def write_model_rows(model: str, out: str) -> None:
    r = gguf.GGUFReader(model)
    by_name = {t.name: t for t in r.tensors}
    w = gguf.GGUFWriter(out, "valet-fixture")
    for name, rows in MODEL_ROWS.items():
        t = by_name[name]
        data = np.asarray(t.data)
        if data.ndim == 1:
            data = data.reshape(1, -1)
        for i in rows:
            if t.tensor_type == T.F32:
                row = data[i].astype(np.float32)
            else:
                row = dequantize(np.ascontiguousarray(data[i : i + 1]), t.tensor_type).reshape(-1).astype(np.float32)
            w.add_tensor(f"{name}#{i}", np.ascontiguousarray(row))
    finish(w)


def write_model_all(model: str, out: str) -> None:
    r = gguf.GGUFReader(model)
    w = gguf.GGUFWriter(out, "valet-fixture")
    for t in r.tensors:
        shape = tuple(int(d) for d in reversed(t.shape))
        values = dequantize(np.asarray(t.data), t.tensor_type).reshape(shape).astype(np.float32)
        w.add_tensor(t.name, np.ascontiguousarray(values))
    finish(w)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "quant":
        write_quant_fixture(argv[2])
    elif len(argv) == 3 and argv[1] == "reader":
        write_reader_fixtures(argv[2])
    elif len(argv) == 4 and argv[1] == "model-rows":
        write_model_rows(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "model-all":
        write_model_all(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
