#!/usr/bin/env python3
"""Command-line tests of `moe-harness run` for the fused MoE layers, the
quantizer and sigmoid top-1 (run by `meson test` as 'cli_run').

usage: test_run.py path/to/moe-harness

For each kernel: the reference run writes its outputs; those outputs given back
with --expect pass with a margin below 1; a perturbed output fails with exit 1
naming the perturbed element; bad inputs exit 2 with one line on stderr and
nothing written; --reference-only exits 0 and a run with nothing to check exits 1.
The .npy files are written by hand (struct), so no NumPy is needed.
"""
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

from checks import check, finish

EXE = os.path.abspath(sys.argv[1])


def run(args, timeout=600):
    p = subprocess.run([EXE] + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def err_lines(stderr):
    return [l for l in stderr.splitlines() if l.strip()]


# ---- .npy by hand ----------------------------------------------------------------
SIZES = {"<f4": 4, "<u2": 2, "<i4": 4, "|u1": 1, "|i1": 1}
FMT = {"<f4": "f", "<u2": "H", "<i4": "i", "|u1": "B", "|i1": "b"}


def npy_bytes(descr, shape, values):
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    data = struct.pack("<%d%s" % (len(values), FMT[descr]), *values)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def write_npy(path, descr, shape, values):
    with open(path, "wb") as f:
        f.write(npy_bytes(descr, shape, values))
    return path


def read_npy(path):
    b = open(path, "rb").read()
    hlen = struct.unpack("<H", b[8:10])[0]
    header = b[10:10 + hlen].decode()
    descr = header.split("'descr': '")[1].split("'")[0]
    shape = tuple(int(x) for x in header.split("'shape': (")[1].split(")")[0].split(",") if x.strip())
    n = 1
    for d in shape:
        n *= d
    values = list(struct.unpack("<%d%s" % (n, FMT[descr]), b[10 + hlen:]))
    return descr, shape, values


def safetensors_bytes(tensors):
    """A safetensors file: name -> (dtype, shape, raw little-endian bytes)."""
    header, data, off = {}, b"", 0
    for name in sorted(tensors):
        dt, shape, raw = tensors[name]
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def bf16_raw(values):
    return struct.pack("<%dH" % len(values), *values)


def bf16(x):
    """bf16 bit pattern of a float (round to nearest even)."""
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF


def e4m3fn_code(rng):
    """A random finite e4m3fn code (0x7F and 0xFF are NaN)."""
    c = rng.randrange(0, 0x7F)
    return c | (0x80 if rng.random() < 0.5 else 0)


def normals(rng, n, scale=1.0):
    return [rng.gauss(0.0, scale) for _ in range(n)]


# ---- shared checks -----------------------------------------------------------------
def run_json(d):
    return json.load(open(os.path.join(d, "run.json")))


def expect_input_error(name, args, must_mention, out_dir):
    rc, out, err = run(args)
    lines = err_lines(err)
    detail = f"rc={rc} stdout={out!r} stderr={err!r}"
    check(f"{name}: exit 2", rc == 2, detail)
    check(f"{name}: one line on stderr", len(lines) == 1, detail)
    check(f"{name}: names {must_mention!r}", lines and must_mention in lines[-1], detail)
    check(f"{name}: nothing written", not os.path.exists(out_dir), detail)


def kernel_suite(kernel, base, outputs, tmp, no_gpu, perturb, margin_measured=True):
    """Reference run, --expect of the reference's own outputs, a perturbed output,
    --reference-only and the no-check exit. perturb(path_by_output) writes a
    perturbed copy and returns (output name, flat index) of the changed element."""
    ref_dir = os.path.join(tmp, kernel + "_ref")
    rc, out, err = run(base + ["--reference-only", "--out-dir", ref_dir])
    check(f"{kernel} --reference-only: exit 0", rc == 0, out + err)
    refs = {o: os.path.join(ref_dir, f"ref_{o}.npy") for o in outputs}
    check(f"{kernel}: reference outputs written", all(os.path.exists(p) for p in refs.values()), str(refs))
    if rc != 0:
        return
    j = run_json(ref_dir)
    check(f"{kernel} --reference-only: run.json says nothing was checked", j["checked"] is False and j["passed"] is True, str(j))

    if no_gpu:
        nc_dir = os.path.join(tmp, kernel + "_nocheck")
        rc, out, err = run(base + ["--out-dir", nc_dir])
        check(f"{kernel} without a check: exit 1", rc == 1, out + err)
        check(f"{kernel} without a check: says so on stderr", "nothing was checked" in err, err)

    expects = []
    for o in outputs:
        expects += ["--expect", f"{o}={refs[o]}"]
    ok_dir = os.path.join(tmp, kernel + "_ok")
    rc, out, err = run(base + ["--cpu-only", "--out-dir", ok_dir] + expects)
    check(f"{kernel} --expect its reference: exit 0", rc == 0, out + err)
    check(f"{kernel} --expect its reference: PASS with a margin printed", "PASS" in out and "margin" in out, out)
    if rc == 0:
        j = run_json(ok_dir)
        check(f"{kernel} --expect its reference: checks recorded", j["checked"] and j["passed"] and j["checks"], str(j))
        for c in j["checks"]:
            for key in ("tolerance", "worst", "margin", "element_margin", "l2_margin"):
                check(f"{kernel} run.json check has {key}", key in c, str(c))
            if margin_measured:
                check(f"{kernel} --expect its reference: margin < 1 ({c['output']})",
                      isinstance(c["margin"], (int, float)) and c["margin"] < 1, str(c))
            else:
                check(f"{kernel} --expect its reference: margin not measured (null)", c["margin"] is None, str(c))

    bad_paths = dict(refs)
    name, index, path = perturb(refs, tmp)
    bad_paths[name] = path
    expects = []
    for o in outputs:
        expects += ["--expect", f"{o}={bad_paths[o]}"]
    bad_dir = os.path.join(tmp, kernel + "_bad")
    rc, out, err = run(base + ["--cpu-only", "--out-dir", bad_dir] + expects)
    check(f"{kernel} perturbed --expect {name}: exit 1", rc == 1, out + err)
    check(f"{kernel} perturbed --expect {name}: FAIL names element [{index}]", "FAIL" in out and f"[{index}]" in out, out)
    if os.path.exists(os.path.join(bad_dir, "run.json")):
        j = run_json(bad_dir)
        failed = [c for c in j["checks"] if not c["passed"]]
        check(f"{kernel} perturbed: run.json worst element is [{index}]",
              failed and failed[0]["worst"] and failed[0]["worst"]["index"] == index, str(failed))
        if margin_measured:
            m = failed[0]["margin"] if failed else None
            check(f"{kernel} perturbed: margin > 1", m == "inf" or (isinstance(m, (int, float)) and m > 1), str(m))


def perturb_float(output, index, factor):
    def f(refs, tmp):
        descr, shape, vals = read_npy(refs[output])
        if descr == "<u2":
            x = struct.unpack("<f", struct.pack("<I", vals[index] << 16))[0]
            vals[index] = bf16(x * factor + 1.0)
        else:
            vals[index] = vals[index] * factor + 1.0
        return output, index, write_npy(os.path.join(tmp, f"bad_{output}_{id(f)}.npy"), descr, shape, vals)
    return f


def main():
    with tempfile.TemporaryDirectory() as tmp:
        dj = os.path.join(tmp, "dev.json")
        run(["devices", "--no-measure", "--json", dj])
        devinfo = json.load(open(dj)) if os.path.exists(dj) else {"backend": "?", "devices": [1]}
        no_gpu = devinfo.get("backend") == "none" or not devinfo.get("devices")
        rng = random.Random(20261205)
        P = lambda name: os.path.join(tmp, name)

        # ---- fused_moe (bf16, given routing) --------------------------------------------
        M, H, I, E, K = 5, 32, 16, 4, 2
        hidden = write_npy(P("hidden.npy"), "<u2", (M, H), [bf16(v) for v in normals(rng, M * H)])
        w1 = write_npy(P("w1.npy"), "<u2", (E, 2 * I, H), [bf16(v) for v in normals(rng, E * 2 * I * H, H ** -0.5)])
        w2 = write_npy(P("w2.npy"), "<u2", (E, H, I), [bf16(v) for v in normals(rng, E * H * I, I ** -0.5)])
        ids = []
        for t in range(M):
            a = rng.randrange(E)
            ids += [a, (a + 1 + rng.randrange(E - 1)) % E]
        tw = write_npy(P("tw.npy"), "<f4", (M, K), [rng.random() for _ in range(M * K)])
        ti = write_npy(P("ti.npy"), "<i4", (M, K), ids)
        fm = ["run", "fused_moe", "--in", f"hidden={hidden}", "--in", f"w1={w1}", "--in", f"w2={w2}",
              "--in", f"topk_weights={tw}", "--in", f"topk_ids={ti}"]
        kernel_suite("fused_moe", fm, ["out"], tmp, no_gpu, perturb_float("out", 7, 1.5))
        # router_logits with softmax top-k routing, gelu_tanh, weight on the input
        logits = write_npy(P("logits.npy"), "<f4", (M, E), normals(rng, M * E))
        rc, out, err = run(["run", "fused_moe", "--in", f"hidden={hidden}", "--in", f"w1={w1}", "--in", f"w2={w2}",
                            "--in", f"router_logits={logits}", "--param", "top_k=2", "--param", "activation=1",
                            "--param", "router_weight_on_input=1", "--reference-only", "--out-dir", P("fm_logits")])
        check("fused_moe router_logits: exit 0", rc == 0, out + err)
        # --model fills the routing (Mixtral: softmax top-2, renormalised) and the activation
        E8 = 8
        w1e8 = write_npy(P("w1e8.npy"), "<u2", (E8, 2 * I, H), [bf16(v) for v in normals(rng, E8 * 2 * I * H, H ** -0.5)])
        w2e8 = write_npy(P("w2e8.npy"), "<u2", (E8, H, I), [bf16(v) for v in normals(rng, E8 * H * I, I ** -0.5)])
        l8 = write_npy(P("l8.npy"), "<f4", (M, E8), normals(rng, M * E8))
        rc, out, err = run(["run", "fused_moe", "--model", "mixtral_8x7b", "--in", f"hidden={hidden}", "--in", f"w1={w1e8}",
                            "--in", f"w2={w2e8}", "--in", f"router_logits={l8}", "--reference-only", "--out-dir", P("fm_model")])
        check("fused_moe --model mixtral_8x7b: exit 0", rc == 0, out + err)
        if rc == 0:
            j = run_json(P("fm_model"))
            check("fused_moe --model: routing params recorded", j["params"]["top_k"] == 2 and j["params"]["renormalize"] == 1
                  and j["params"]["routing"] == 0, str(j["params"]))
        # bad inputs: exit 2, one line, nothing written
        w2bad = write_npy(P("w2bad.npy"), "<u2", (E, H + 1, I), [0] * (E * (H + 1) * I))
        nd = P("never")
        expect_input_error("fused_moe w2 of the wrong shape", fm[:6] + ["--in", f"w2={w2bad}"] + fm[8:] + ["--out-dir", nd], "w2 has shape", nd)
        w1f16 = write_npy(P("w1f16.npy"), "<f4", (E, 2 * I, H), [0.0] * (E * 2 * I * H))
        expect_input_error("fused_moe mixed dtypes", fm[:4] + ["--in", f"w1={w1f16}"] + fm[6:] + ["--out-dir", nd], "one dtype", nd)
        expect_input_error("fused_moe both routing forms", fm + ["--in", f"router_logits={logits}", "--out-dir", nd],
                           "not both", nd)
        ids_bad = write_npy(P("ids_bad.npy"), "<i4", (M, K), [E] + ids[1:])
        expect_input_error("fused_moe id out of range", fm[:-1] + [f"topk_ids={ids_bad}", "--out-dir", nd], "topk_ids[0, 0]", nd)
        wrong_out = write_npy(P("wrong_out.npy"), "<u2", (M, H + 1), [0] * (M * (H + 1)))
        expect_input_error("fused_moe --expect of the wrong shape", fm + ["--expect", f"out={wrong_out}", "--out-dir", nd],
                           "shape", nd)
        expect_input_error("--expect given twice",
                           fm + ["--expect", f"out={P('fused_moe_ref/ref_out.npy')}", "--expect",
                                 f"out={P('fused_moe_ref/ref_out.npy')}", "--out-dir", nd], "twice", nd)
        expect_input_error("a folder as --in", fm[:2] + ["--in", f"hidden={tmp}"] + fm[4:] + ["--out-dir", nd], tmp, nd)
        expect_input_error("/dev/zero as --in", fm[:2] + ["--in", "hidden=/dev/zero"] + fm[4:] + ["--out-dir", nd],
                           "/dev/zero", nd)
        expect_input_error("/dev/zero as --expect", fm + ["--expect", "out=/dev/zero", "--out-dir", nd], "/dev/zero", nd)
        for v in ("1e14", "2147483648", "4294967296", "-2147483649"):
            expect_input_error(f"--param activation={v}", fm + ["--param", f"activation={v}", "--out-dir", nd],
                               "activation", nd)
        expect_input_error("--param activation=2", fm + ["--param", "activation=2", "--out-dir", nd], "activation", nd)
        # malformed header: one line even though the header text ends in a newline
        raw = bytearray(open(hidden, "rb").read())
        raw[10:16] = b"[bad, "
        open(P("badhdr.npy"), "wb").write(bytes(raw))
        expect_input_error("malformed .npy header", fm[:2] + ["--in", f"hidden={P('badhdr.npy')}"] + fm[4:] + ["--out-dir", nd],
                           "malformed", nd)
        open(P("shorthdr.npy"), "wb").write(b"\x93NUMPY\x01\x00\x40\x00{'descr'")
        expect_input_error("header longer than the file", fm[:2] + ["--in", f"hidden={P('shorthdr.npy')}"] + fm[4:] + ["--out-dir", nd],
                           "truncated .npy header: it says 64 bytes, the file has 8", nd)
        # an output path equal to an input: ref_out.npy in --out-dir is the hidden file
        same = P("same")
        os.makedirs(same)
        os.link(hidden, os.path.join(same, "ref_out.npy"))
        rc, out, err = run(fm[:2] + ["--in", f"hidden={os.path.join(same, 'ref_out.npy')}"] + fm[4:] + ["--out-dir", same])
        check("an output equal to an --in file: exit 2", rc == 2, out + err)
        check("an output equal to an --in file: input kept", open(hidden, "rb").read() == open(os.path.join(same, "ref_out.npy"), "rb").read())
        check("an output equal to an --in file: nothing written", not os.path.exists(os.path.join(same, "run.json")))

        # ---- safetensors: one tensor by name, and a layer's experts from two Mixtral-style shards
        _, _, hv = read_npy(hidden)
        _, _, w1v = read_npy(w1)
        _, _, w2v = read_npy(w2)
        st_hidden = P("acts.safetensors")
        open(st_hidden, "wb").write(safetensors_bytes({"model.hidden": ("BF16", (M, H), bf16_raw(hv))}))
        shards = []
        for part, experts in enumerate(([0, 1], [2, 3])):
            t = {"model.norm.weight": ("BF16", (H,), bf16_raw([bf16(1.0)] * H))} if part == 0 else {}
            for e in experts:
                base = f"model.layers.3.block_sparse_moe.experts.{e}."
                rows = lambda r0, r1: w1v[(e * 2 * I + r0) * H:(e * 2 * I + r1) * H]
                t[base + "w1.weight"] = ("BF16", (I, H), bf16_raw(rows(0, I)))
                t[base + "w3.weight"] = ("BF16", (I, H), bf16_raw(rows(I, 2 * I)))
                t[base + "w2.weight"] = ("BF16", (H, I), bf16_raw(w2v[e * H * I:(e + 1) * H * I]))
            shards.append(P(f"model-0000{part + 1}.safetensors"))
            open(shards[-1], "wb").write(safetensors_bytes(t))
        st = ["run", "fused_moe", "--in", f"hidden={st_hidden}:model.hidden", "--experts", ",".join(shards), "--layer", "3",
              "--in", f"topk_weights={tw}", "--in", f"topk_ids={ti}", "--reference-only"]
        rc, out, err = run(st + ["--out-dir", P("fm_st")])
        check("fused_moe from safetensors (--in FILE:TENSOR, --experts, --layer): exit 0", rc == 0, out + err)
        check("fused_moe from safetensors: the same reference output as from .npy",
              rc == 0 and open(P("fm_st/ref_out.npy"), "rb").read() == open(P("fused_moe_ref/ref_out.npy"), "rb").read())
        expect_input_error("--experts without --layer", st[:4] + st[4:6] + st[8:] + ["--out-dir", nd], "--layer", nd)
        expect_input_error("--experts: a layer the shards lack", st[:7] + ["5"] + st[8:] + ["--out-dir", nd], "layer", nd)
        expect_input_error("--experts: an expert missing", st[:5] + [shards[1]] + st[6:] + ["--out-dir", nd], "expert", nd)
        expect_input_error("a .safetensors file without a tensor name", st[:2] + ["--in", f"hidden={st_hidden}"] + st[4:] +
                           ["--out-dir", nd], "model.hidden", nd)
        expect_input_error("a tensor name not in the file", st[:2] + ["--in", f"hidden={st_hidden}:model.hiddn"] + st[4:] +
                           ["--out-dir", nd], "model.hiddn", nd)
        expect_input_error("--experts and --in w1 together", st + ["--in", f"w1={w1}", "--out-dir", nd], "either", nd)

        # ---- fused_moe_q8 (fp8 per token and int8 per token) ---------------------------------
        M, H, I, E, K = 4, 64, 32, 4, 2
        qh = write_npy(P("qh.npy"), "<u2", (M, H), [bf16(v) for v in normals(rng, M * H)])
        qw1 = write_npy(P("qw1.npy"), "|u1", (E, 2 * I, H), [e4m3fn_code(rng) for _ in range(E * 2 * I * H)])
        qw2 = write_npy(P("qw2.npy"), "|u1", (E, H, I), [e4m3fn_code(rng) for _ in range(E * H * I)])
        s1 = [rng.uniform(0.5, 2.0) / (64 * 448) for _ in range(E * 2 * I)]
        s2 = [rng.uniform(0.5, 2.0) / (64 * 448) for _ in range(E * H)]
        qs1 = write_npy(P("qs1.npy"), "<f4", (E, 2 * I), s1)
        qs2 = write_npy(P("qs2.npy"), "<f4", (E, H), s2)
        qtw = write_npy(P("qtw.npy"), "<f4", (M, K), [rng.random() for _ in range(M * K)])
        qti = write_npy(P("qti.npy"), "<i4", (M, K), [0, 1, 2, 3, 1, 2, 3, 0])
        q8 = ["run", "fused_moe_q8", "--param", "scheme=1", "--in", f"hidden={qh}", "--in", f"w1={qw1}",
              "--in", f"w1_scale={qs1}", "--in", f"w2={qw2}", "--in", f"w2_scale={qs2}",
              "--in", f"topk_weights={qtw}", "--in", f"topk_ids={qti}"]
        kernel_suite("fused_moe_q8", q8, ["out"], tmp, no_gpu, perturb_float("out", 70, 1.5))
        s1nan = list(s1)
        s1nan[3] = float("nan")
        qs1nan = write_npy(P("qs1nan.npy"), "<f4", (E, 2 * I), s1nan)
        qs1neg = write_npy(P("qs1neg.npy"), "<f4", (E, 2 * I), [-1.0] + s1[1:])
        qs1shape = write_npy(P("qs1shape.npy"), "<f4", (E,), s1[:E])
        i = q8.index(f"w1_scale={qs1}")
        expect_input_error("fused_moe_q8 NaN scale", q8[:i] + [f"w1_scale={qs1nan}"] + q8[i + 1:] + ["--out-dir", nd], "w1_scale[3]", nd)
        expect_input_error("fused_moe_q8 negative scale", q8[:i] + [f"w1_scale={qs1neg}"] + q8[i + 1:] + ["--out-dir", nd], "w1_scale[0]", nd)
        expect_input_error("fused_moe_q8 scale shape of another scheme", q8[:i] + [f"w1_scale={qs1shape}"] + q8[i + 1:] + ["--out-dir", nd],
                           "w1_scale has shape", nd)
        expect_input_error("fused_moe_q8 int8 scheme with e4m3 codes", q8[:2] + ["--param", "scheme=3"] + q8[4:] + ["--out-dir", nd],
                           "codes", nd)
        # Activations already quantized (our quantizer's codes and per-row scales of hidden, as a
        # user's quantizer would give them): the reference starts from them, the same output.
        rc, out, err = run(q8 + ["--reference-only", "--out-dir", P("q8_own")])
        check("fused_moe_q8 reference-only: exit 0", rc == 0, out + err)
        rc, out, err = run(["run", "quantize", "--in", f"x={qh}", "--param", "qtype=0", "--param", "granularity=1",
                            "--reference-only", "--out-dir", P("q8_a1")])
        check("quantize hidden per row: exit 0", rc == 0, out + err)
        a1, a1s = P("q8_a1/ref_q.npy"), P("q8_a1/ref_scales.npy")
        rc, out, err = run(q8 + ["--in", f"a1={a1}", "--in", f"a1_scale={a1s}", "--reference-only",
                                 "--out-dir", P("q8_pre")])
        check("fused_moe_q8 with a1 + a1_scale: exit 0", rc == 0, out + err)
        same = os.path.exists(P("q8_pre/ref_out.npy")) and read_npy(P("q8_pre/ref_out.npy")) == read_npy(P("q8_own/ref_out.npy"))
        check("fused_moe_q8 with a1 + a1_scale: the reference output of quantizing hidden", same)
        # Scales twice as large: another layer output, so a check against the first output fails.
        descr, shape, vals = read_npy(a1s)
        a1s2 = write_npy(P("a1s2.npy"), descr, shape, [2 * v for v in vals])
        rc, out, err = run(q8 + ["--in", f"a1={a1}", "--in", f"a1_scale={a1s2}", "--cpu-only",
                                 "--expect", f"out={P('q8_own/ref_out.npy')}", "--out-dir", P("q8_pre2")])
        check("fused_moe_q8 with a1_scale doubled: the first output fails the check (exit 1)", rc == 1, out + err)
        expect_input_error("fused_moe_q8 a1 without a1_scale", q8 + ["--in", f"a1={a1}", "--out-dir", nd], "a1_scale", nd)
        a1bad = write_npy(P("a1bad.npy"), "|u1", (M, H - 1), [0] * (M * (H - 1)))
        expect_input_error("fused_moe_q8 a1 of the wrong shape",
                           q8 + ["--in", f"a1={a1bad}", "--in", f"a1_scale={a1s}", "--out-dir", nd], "a1 has shape", nd)
        a1i8 = write_npy(P("a1i8.npy"), "|i1", (M, H), [0] * (M * H))
        expect_input_error("fused_moe_q8 int8 a1 for an fp8 scheme",
                           q8 + ["--in", f"a1={a1i8}", "--in", f"a1_scale={a1s}", "--out-dir", nd], "a1 is", nd)
        a1sneg = write_npy(P("a1sneg.npy"), descr, shape, [-v for v in vals])
        expect_input_error("fused_moe_q8 negative a1_scale",
                           q8 + ["--in", f"a1={a1}", "--in", f"a1_scale={a1sneg}", "--out-dir", nd], "a1_scale[0]", nd)

        # int8 per token, per-channel scales given as (E, N, 1)
        iw1 = write_npy(P("iw1.npy"), "|i1", (E, 2 * I, H), [rng.randrange(-127, 128) for _ in range(E * 2 * I * H)])
        iw2 = write_npy(P("iw2.npy"), "|i1", (E, H, I), [rng.randrange(-127, 128) for _ in range(E * H * I)])
        is1 = write_npy(P("is1.npy"), "<f4", (E, 2 * I, 1), [v * 3.5 for v in s1])
        is2 = write_npy(P("is2.npy"), "<f4", (E, H, 1), [v * 3.5 for v in s2])
        rc, out, err = run(["run", "fused_moe_q8", "--param", "scheme=3", "--in", f"hidden={qh}", "--in", f"w1={iw1}",
                            "--in", f"w1_scale={is1}", "--in", f"w2={iw2}", "--in", f"w2_scale={is2}",
                            "--in", f"topk_weights={qtw}", "--in", f"topk_ids={qti}", "--reference-only",
                            "--out-dir", P("q8_int8")])
        check("fused_moe_q8 int8_token: exit 0", rc == 0, out + err)

        # ---- quantize -------------------------------------------------------------------
        x = write_npy(P("x.npy"), "<f4", (3, 40), normals(rng, 120, 3.0))
        qz = ["run", "quantize", "--in", f"x={x}", "--param", "qtype=0", "--param", "granularity=2", "--param", "group=16"]

        def perturb_scale(refs, tmp):
            descr, shape, vals = read_npy(refs["scales"])
            vals[4] *= 2.0
            return "scales", 4, write_npy(os.path.join(tmp, "bad_scales.npy"), descr, shape, vals)

        kernel_suite("quantize", qz, ["q", "scales"], tmp, no_gpu, perturb_scale)
        # a code moved by one step is caught when it leaves the error model
        descr, shape, codes = read_npy(P("quantize_ref/ref_q.npy"))
        codes[9] = (codes[9] & 0x80) | min(0x7E, (codes[9] & 0x7F) + 8)
        badq = write_npy(P("bad_q.npy"), descr, shape, codes)
        rc, out, err = run(qz + ["--cpu-only", "--expect", f"q={badq}", "--expect",
                                 f"scales={P('quantize_ref/ref_scales.npy')}", "--out-dir", P("qz_badq")])
        check("quantize code far off: exit 1 naming [9]", rc == 1 and "[9]" in out, out + err)
        x1 = write_npy(P("x1.npy"), "<f4", (40,), normals(rng, 40))
        expect_input_error("quantize rank-1 x", ["run", "quantize", "--in", f"x={x1}", "--param", "qtype=0",
                                                 "--param", "granularity=1", "--out-dir", nd], "rank", nd)
        expect_input_error("quantize qtype out of range", qz + ["--param", "qtype=7", "--out-dir", nd], "qtype", nd)
        wrong_scales = write_npy(P("wrong_scales.npy"), "<f4", (3, 4), [1.0] * 12)
        expect_input_error("quantize --expect scales of the wrong shape",
                           qz + ["--expect", f"scales={wrong_scales}", "--out-dir", nd], "scales", nd)

        # ---- sigmoid_top1 (with the shared expert column) ------------------------------------
        M, H, E = 6, 32, 8
        sx = write_npy(P("sx.npy"), "<u2", (M, H), [bf16(v) for v in normals(rng, M * H)])
        sw = write_npy(P("sw.npy"), "<u2", (E, H), [bf16(v) for v in normals(rng, E * H, H ** -0.5)])
        st = ["run", "sigmoid_top1", "--in", f"x={sx}", "--in", f"w={sw}", "--param", "shared_expert=1"]

        def perturb_id(refs, tmp):
            descr, shape, vals = read_npy(refs["topk_ids"])
            vals[4] = (vals[4] + 1) % E  # token 2's routed expert (column 0 of 2)
            return "topk_ids", 4, write_npy(os.path.join(tmp, "bad_ids.npy"), descr, shape, vals)

        kernel_suite("sigmoid_top1", st, ["topk_weights", "topk_ids"], tmp, no_gpu, perturb_id, margin_measured=False)
        _, shape, _ = read_npy(P("sigmoid_top1_ref/ref_topk_ids.npy"))
        check("sigmoid_top1 shared_expert: 2 columns", shape == (M, 2), str(shape))
        sw16 = write_npy(P("sw16.npy"), "<f4", (E, H), [0.0] * (E * H))
        expect_input_error("sigmoid_top1 w of another dtype", st[:4] + ["--in", f"w={sw16}"] + st[6:] + ["--out-dir", nd],
                           "w", nd)

        # ---- run with no kernel: the list on stdout, one line on stderr, exit 2 -----------------
        rc, out, err = run(["run"])
        check("run with no kernel: exit 2", rc == 2, out + err)
        check("run with no kernel: the list on stdout", all(k in out for k in ("fused_moe_q8", "quantize", "sigmoid_top1")), out)
        check("run with no kernel: one line on stderr", len(err_lines(err)) == 1, err)


if __name__ == "__main__":
    main()
    finish("cli_run")
