#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (tests/fuzz/corpus/<target>/): small
valid files made from the repository's own data plus a few broken ones. Run from
the repository root with an interpreter that has NumPy; the output is committed."""
import io
import json
import os
import struct

import numpy as np

OUT = "tests/fuzz/corpus"


def put(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def npy_seeds():
    r = np.random.default_rng(1)
    put("npy", "f4_2x3.npy", npy(r.standard_normal((2, 3)).astype("<f4")))
    put("npy", "f2_4.npy", npy(r.standard_normal(4).astype("<f2")))
    put("npy", "bf16_bits_3x2.npy", npy(np.array([[0x3F80, 0xC000], [0, 0x7FC0], [1, 2]], dtype="<u2")))
    put("npy", "i4_scalar.npy", npy(np.array(7, dtype="<i4")))
    put("npy", "i8_ids.npy", npy(np.array([[0, 5], [3, 2**31 - 1]], dtype="<i8")))
    put("npy", "i1_codes.npy", npy(np.array([-128, 0, 127], dtype="i1")))
    put("npy", "u1_fp8.npy", npy(np.arange(6, dtype="u1").reshape(1, 2, 3)))
    put("npy", "empty_0x4.npy", npy(np.zeros((0, 4), dtype="<f4")))
    good = npy(np.arange(6, dtype="<f4"))
    put("npy", "broken_truncated.npy", good[:-5])
    put("npy", "broken_fortran.npy", npy(np.asfortranarray(np.ones((2, 3), dtype="<f4"))))
    put("npy", "broken_big_endian.npy", npy(np.ones(3, dtype=">f4")))
    put("npy", "broken_magic.npy", b"\x93NUMPX" + good[6:])
    put("npy", "broken_i8_range.npy", npy(np.array([2**40], dtype="<i8")))


def safetensors(entries, meta=None, pad=True):
    """entries: {name: (dtype, shape, bytes)}"""
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, (dt, shape, raw) in entries.items():
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    r = np.random.default_rng(2)
    arrays = {
        "F32": r.standard_normal((2, 3)).astype("<f4"),
        "F16": r.standard_normal((4,)).astype("<f2"),
        "BF16": np.array([0x3F80, 0x4000, 0xBF80], dtype="<u2"),
        "F8_E4M3": np.arange(8, dtype="u1").reshape(2, 4),
        "I8": np.array([[-1, 2], [3, -4]], dtype="i1"),
        "I32": np.array([1, -2, 3], dtype="<i4"),
        "I64": np.array([[0, 1], [2**31 - 1, -(2**31)]], dtype="<i8"),
    }
    for dt, a in arrays.items():
        put("safetensors", f"t_{dt.lower()}.safetensors",
            safetensors({"other.weight": ("F32", (1,), b"\0\0\x80?"), "t": (dt, a.shape, a.tobytes())}, {"format": "pt"}))
    put("safetensors", "t_scalar_nometa.safetensors", safetensors({"t": ("F32", (), b"\0\0\x80?")}))
    good = safetensors({"t": ("F32", (2, 2), bytes(16))})
    put("safetensors", "broken_truncated.safetensors", good[:-3])
    put("safetensors", "broken_header_len.safetensors", struct.pack("<Q", 10**6) + good[8:])
    put("safetensors", "broken_json.safetensors", good.replace(b'"shape"', b'"shape" '[:-1].replace(b'"', b"'")))
    put("safetensors", "broken_offsets.safetensors", good.replace(b"[0, 16]", b"[8, 24]"))
    put("safetensors", "broken_dtype.safetensors", good.replace(b'"F32"', b'"F64"'))
    put("safetensors", "broken_size.safetensors", good.replace(b"[2, 2]", b"[2, 3]"))
    put("safetensors", "broken_number_overflow.safetensors", struct.pack("<Q", 13) + b'{"t": 1e400}\n')
    put("safetensors", "broken_i64_range.safetensors",
        safetensors({"t": ("I64", (1,), struct.pack("<q", 2**40))}))


def tuned_seeds():
    with open("configs/tuned_fmoe.csv") as f:
        text = f.read()
    put("tuned_csv", "tuned_fmoe.csv", text)
    lines = text.splitlines()
    put("tuned_csv", "seed_columns_only.csv", "\n".join(",".join(l.split(",")[:12]) for l in lines[:4]) + "\n")
    put("tuned_csv", "header_only.csv", lines[0] + "\n")
    put("tuned_csv", "broken_impl.csv", lines[0] + "\n" + lines[1].replace("mma_sync_tiles", "nope") + "\n")
    put("tuned_csv", "broken_number.csv", lines[0] + "\n" + lines[1].replace("132,", "1e99,", 1) + "\n")
    put("tuned_csv", "broken_columns.csv", lines[0] + "\n" + ",".join(lines[1].split(",")[:5]) + "\n")


def model_seeds():
    with open("configs/model_configs.json") as f:
        doc = json.load(f)
    put("model_config", "model_configs.json", json.dumps(doc, indent=1))
    small = doc
    m = json.loads(json.dumps(small))
    m["models"][0]["top_k"] = "eight"
    put("model_config", "broken_type.json", json.dumps(m))
    m = json.loads(json.dumps(small))
    m["models"][0]["experts"] = -1
    put("model_config", "broken_experts.json", json.dumps(m))
    put("model_config", "broken_syntax.json", json.dumps(small)[:-7])


def results_seeds():
    for name in ("sample_verify.json", "sample_bench.json", "compare_a.json"):
        with open("tests/tooling/data/" + name) as f:
            put("results", name, f.read())
    with open("tests/tooling/data/sample_verify.json") as f:
        v = json.load(f)
    shard = json.loads(json.dumps(v))
    shard["shard"] = {"index": 0, "count": 2}
    for i, c in enumerate(shard.get("cases", [])):
        c["index"] = 2 * i
    put("results", "verify_shard_0_of_2.json", json.dumps(shard))
    broken = json.loads(json.dumps(v))
    if broken.get("cases"):
        broken["cases"][0]["status"] = 3
    put("results", "broken_status.json", json.dumps(broken))
    put("results", "broken_number_overflow.json", '{"cases": [], "summary": {"passed": 1e400}}')
    put("results", "broken_label.json", json.dumps({"benchmarks": [{"name": 1, "real_time": "x"}]}))


def golden_seeds():
    for name in ("worked_example.json", "worked_example_map.json", "invalid_id_equals_e.json",
                 "random_02_m5_k2_e8_b16.json"):
        with open("data/moe_align/" + name) as f:
            put("golden", "moe_align_" + name, f.read())
    with open("data/routing/golden_routing.json") as f:
        doc = json.load(f)
    kinds = {}
    for c in doc["cases"]:
        if c.get("kind") not in kinds and len(json.dumps(c)) < 6000:
            kinds[c.get("kind")] = c
    put("golden", "routing_one_per_kind.json", json.dumps(dict(doc, cases=list(kinds.values()))))
    with open("data/quant/golden.json") as f:
        doc = json.load(f)
    small = [c for c in doc["cases"] if len(json.dumps(c)) < 3000][:4]
    put("golden", "quant_small.json", json.dumps(dict(doc, cases=small)))
    put("golden", "broken_routing_case.json", json.dumps({"cases": [{"kind": "softmax_topk", "name": "x", "M": 2**61, "E": 8}]}))
    put("golden", "broken_empty.json", "{}")


if __name__ == "__main__":
    npy_seeds()
    safetensors_seeds()
    tuned_seeds()
    model_seeds()
    results_seeds()
    golden_seeds()
