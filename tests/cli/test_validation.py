#!/usr/bin/env python3
"""Input validation of the built moe-harness binary (run by `meson test` as cli_validation).

usage: test_validation.py path/to/moe-harness

Hostile results files for report, compare and merge (wrong types, missing
fields, wrong nesting, numbers beyond a double, forged shards), seeds and
counts out of range: each must be exit 2 with one line on stderr naming the
file and the field, in valid UTF-8.
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

from checks import check, finish

EXE = os.path.abspath(sys.argv[1])


def run(args, cwd=None, timeout=120):
    """Exit code, stdout and stderr as bytes (a message must be valid UTF-8: checked, not assumed)."""
    p = subprocess.run([EXE] + args, cwd=cwd, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def utf8(b):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def expect_input_error(name, args, *must_mention):
    """Exit 2, one valid UTF-8 line on stderr that names every string in must_mention."""
    rc, out, err = run(args)
    text = utf8(err)
    lines = [l for l in (text or "").splitlines() if l.strip()]
    detail = f"rc={rc} stdout={out!r} stderr={err!r}"
    check(f"{name}: exit 2", rc == 2, detail)
    check(f"{name}: stderr is valid UTF-8", text is not None, detail)
    check(f"{name}: exactly one line on stderr", len(lines) == 1, detail)
    for m in must_mention:
        check(f"{name}: message names {m!r}", lines and m in lines[-1], detail)
    return lines


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def bench_doc(entries, shard=None):
    """A Google Benchmark document in the shape `moe-harness bench --json` writes."""
    doc = {"context": {"executable": "bench_fake"}, "benchmarks": []}
    for i, name in entries:
        doc["benchmarks"].append({"name": name, "run_name": name, "run_type": "iteration", "repetitions": 1,
                                  "iterations": 10, "real_time": 1000.0 + i, "cpu_time": 1000.0, "time_unit": "ns",
                                  "label": "model=m", "moe_family": "fake", "moe_index": i})
    if shard is not None:
        doc["shard"] = {"index": shard[0], "count": shard[1]}
    return doc


def verify_doc(indexes, shard=None, seed=0):
    doc = {"tool": "moe-harness verify", "options": {"seed": seed, "quick": True},
           "cases": [{"index": i, "kernel": "k", "name": f"c{i}", "status": "pass", "seconds": 0.5} for i in indexes]}
    if shard is not None:
        doc["shard"] = {"index": shard[0], "count": shard[1]}
    return doc


with tempfile.TemporaryDirectory() as tmp:
    P = lambda name: os.path.join(tmp, name)
    good_bench = write_json(P("good_bench.json"), bench_doc([(0, "a/m/M:1"), (1, "a/m/M:2")]))
    good_verify = write_json(P("good_verify.json"), verify_doc([0, 1]))

    # ---- wrong-typed, missing, misnested and out-of-range fields: file and JSON pointer ----
    def bad_bench(tag, mutate):
        d = bench_doc([(0, "a/m/M:1"), (1, "a/m/M:2")])
        mutate(d)
        return write_json(P(f"bench_{tag}.json"), d)

    label_num = bad_bench("label_number", lambda d: d["benchmarks"][1].update(label=7))
    reps_str = bad_bench("repetitions_string", lambda d: d["benchmarks"][0].update(repetitions="3"))
    no_name = bad_bench("no_name", lambda d: d["benchmarks"][1].pop("name"))
    nested = bad_bench("nested", lambda d: d.update(benchmarks={"x": d["benchmarks"]}))
    ctx_list = bad_bench("context_list", lambda d: d.update(context=[1, 2]))
    huge = write_text(P("bench_1e400.json"),
                      json.dumps(bench_doc([(0, "a/m/M:1")])).replace('"real_time": 1000.0', '"real_time": 1e400'))
    for cmd, args in (("report", lambda f: ["report", "--bench", f, "--out", P("r.html")]),
                      ("compare", lambda f: ["compare", good_bench, f]),
                      ("merge", lambda f: ["merge", good_bench, f, "--out", P("m.json")])):
        expect_input_error(f"{cmd}: label is a number", args(label_num), label_num, "/benchmarks/1/label",
                           "expected a string, got an integer")
        expect_input_error(f"{cmd}: repetitions is a string", args(reps_str), reps_str, "/benchmarks/0/repetitions",
                           "expected an integer, got a string")
        expect_input_error(f"{cmd}: real_time 1e400", args(huge), huge, "/benchmarks/0/real_time", "out of range")
        expect_input_error(f"{cmd}: an entry without a name", args(no_name), no_name, "/benchmarks/1/name", "missing")
        expect_input_error(f"{cmd}: benchmarks nested in an object", args(nested), nested, "benchmarks")
        expect_input_error(f"{cmd}: context is a list", args(ctx_list), ctx_list, "/context", "expected an object")
    check("no output written by the rejected commands",
          not any(os.path.exists(P(n)) for n in ("r.html", "r.json", "m.json")), str(os.listdir(tmp)))

    def bad_verify(tag, mutate):
        d = verify_doc([0, 1])
        mutate(d)
        return write_json(P(f"verify_{tag}.json"), d)

    seconds_str = bad_verify("seconds_string", lambda d: d["cases"][1].update(seconds="fast"))
    no_status = bad_verify("no_status", lambda d: d["cases"][0].pop("status"))
    index_float = bad_verify("index_float", lambda d: d["cases"][0].update(index=0.5))
    shard_list = bad_verify("shard_list", lambda d: d.update(shard=[0, 2]))
    tuned_num = bad_verify("tuned_number", lambda d: d.update(tuned_config=3))
    for cmd, args in (("report", lambda f: ["report", "--verify", f, "--out", P("r.html")]),
                      ("merge", lambda f: ["merge", f, "--out", P("m.json")])):
        expect_input_error(f"{cmd}: seconds is a string", args(seconds_str), seconds_str, "/cases/1/seconds",
                           "expected a number, got a string")
        expect_input_error(f"{cmd}: a case without status", args(no_status), no_status, "/cases/0/status", "missing")
        expect_input_error(f"{cmd}: index is not an integer", args(index_float), index_float, "/cases/0/index")
        expect_input_error(f"{cmd}: shard is a list", args(shard_list), shard_list, "/shard", "expected an object")
        expect_input_error(f"{cmd}: tuned_config is a number", args(tuned_num), tuned_num, "/tuned_config")

    # A file name that is not UTF-8: the message still is.
    raw = os.path.join(os.fsencode(tmp), b"bad\xff.json")
    with open(raw, "w") as f:
        json.dump({"benchmarks": 3}, f)
    expect_input_error("merge: a file name that is not UTF-8", ["merge", os.fsdecode(raw), "--out", P("m.json")],
                       "bad", ".json")

    # Good files under such a name: the report and its JSON are still written.
    raw_good = os.path.join(os.fsencode(tmp), b"good\xfe.json")
    with open(raw_good, "w") as f:
        json.dump(bench_doc([(0, "a/m/M:1")]), f)
    rc, out, err = run(["report", "--bench", os.fsdecode(raw_good), "--verify", good_verify, "--out", P("u.html")])
    check("report of a file whose name is not UTF-8: exit 0, valid JSON written",
          rc == 0 and os.path.exists(P("u.json")) and json.load(open(P("u.json"), encoding="utf-8"))["inputs"],
          f"rc={rc} {err!r}")

    # A wild but finite counter (a percentage of 1.8e19) still renders, with a few ticks.
    wild = bench_doc([(0, "a/m/M:1"), (1, "a/m/M:2")])
    wild["benchmarks"][0]["pct_read_bw"] = 2**64 - 1
    wild_f = write_json(P("wild.json"), wild)
    try:
        rc, out, err = run(["report", "--bench", wild_f, "--out", P("w.html")], timeout=20)
    except subprocess.TimeoutExpired:
        rc, err = None, b"timed out"
    check("report with a counter of 2^64-1: exit 0 within seconds", rc == 0, f"rc={rc} {err!r}")

    # ---- merge: each file once, shards in range and consistent, no duplicate index ----
    expect_input_error("merge: the same file twice", ["merge", good_verify, good_verify, "--out", P("m.json")],
                       "good_verify.json", "twice")
    os.link(good_verify, P("hardlink.json"))
    expect_input_error("merge: one file under two names", ["merge", good_verify, P("hardlink.json"), "--out", P("m.json")],
                       "same file")
    s0 = write_json(P("s0.json"), verify_doc([0, 2], (0, 2)))
    s1 = write_json(P("s1.json"), verify_doc([1, 3], (1, 2)))
    rc, out, err = run(["merge", s1, s0, "--out", P("m.json")])
    check("merge of shards 0/2 and 1/2: exit 0, every case once in order",
          rc == 0 and [c["index"] for c in json.load(open(P("m.json")))["cases"]] == [0, 1, 2, 3], f"rc={rc} {err!r}")
    os.remove(P("m.json"))
    forged = write_json(P("forged.json"), verify_doc([5], (5, 2)))
    expect_input_error("merge: shard 5/2", ["merge", s0, s1, forged, "--out", P("m.json")], "forged.json",
                       "/shard/index")
    for tag, count in (("minus1", -1), ("zero", 0), ("u64max", 2**64 - 1), ("i32max", 2**31 - 1), ("i32wrap", 2**32 + 2)):
        f = write_json(P(f"count_{tag}.json"), verify_doc([0], (0, count)))
        expect_input_error(f"merge: shard count {count}", ["merge", f, "--out", P("m.json"), "--allow-partial"],
                           f"count_{tag}.json", "/shard/count")
    t0 = write_json(P("t0.json"), verify_doc([0], (0, 3)))
    expect_input_error("merge: missing shards are named", ["merge", t0, "--out", P("m.json")], "1/3, 2/3")
    stray = write_json(P("stray.json"), verify_doc([1, 3, 4], (1, 2)))
    expect_input_error("merge: a case index outside its shard", ["merge", s0, stray, "--out", P("m.json")],
                       "stray.json", "/cases/2/index", "not in shard 1/2")
    dup = write_json(P("dup.json"), verify_doc([1, 1], (1, 2)))
    expect_input_error("merge: a case index twice", ["merge", s0, dup, "--out", P("m.json")], "case index 1")
    other_seed = write_json(P("other_seed.json"), verify_doc([1, 3], (1, 2), seed=7))
    expect_input_error("merge: shards of runs with different seeds", ["merge", s0, other_seed, "--out", P("m.json")],
                       "different options")
    b0 = write_json(P("b0.json"), bench_doc([(0, "a/m/M:1"), (2, "a/m/M:3")], (0, 2)))
    b1 = write_json(P("b1.json"), bench_doc([(1, "a/m/M:2"), (3, "a/m/M:4")], (1, 2)))
    rc, out, err = run(["merge", b0, b1, "--out", P("m.json")])
    check("merge of bench shards: exit 0", rc == 0, f"rc={rc} {err!r}")
    b1dup = write_json(P("b1dup.json"), bench_doc([(1, "a/m/M:2"), (1, "a/m/M:4")], (1, 2)))
    expect_input_error("merge: two benchmarks with one moe_index", ["merge", b0, b1dup, "--out", P("m.json")],
                       "benchmark index 1")
    b1odd = write_json(P("b1odd.json"), bench_doc([(1, "a/m/M:2"), (2, "a/m/M:4")], (1, 2)))
    expect_input_error("merge: a moe_index outside its shard", ["merge", b0, b1odd, "--out", P("m.json")],
                       "b1odd.json", "/benchmarks/1/moe_index")
    expect_input_error("merge: the same bench file twice", ["merge", b0, b0, "--out", P("m.json")], "twice")

    # ---- seeds, counts, unknown kernels and output folders ----
    for bad in ("-1", str(2**64), "1e3", "0x10", ""):
        expect_input_error(f"verify --seed {bad!r}", ["verify", "--seed", bad, "--json", ""], "--seed")
        expect_input_error(f"tune --seed {bad!r}", ["tune", "--dry-run", "--seed", bad], "--seed")
    for bad in ("0", "-1", "x"):
        expect_input_error(f"tune --cu-num {bad}", ["tune", "--dry-run", "--cu-num", bad], "--cu-num")
        expect_input_error(f"tune --final-rounds {bad}", ["tune", "--dry-run", "--final-rounds", bad], "--final-rounds")
    for bad in ("-1", "101", "x"):
        expect_input_error(f"tune --finalists {bad}", ["tune", "--dry-run", "--finalists", bad], "--finalists")
    lines = expect_input_error("verify --kernel nope", ["verify", "--kernel", "nope", "--json", ""], "nope",
                               "unknown kernel")
    check("verify --kernel nope: no 'no GPU' notice", not any("no GPU" in l for l in lines), str(lines))
    os.mkdir(P("outdir"))
    expect_input_error("report --out DIR", ["report", "--verify", good_verify, "--out", P("outdir")], "outdir")

    # The seed and every option that changes results are in the results.
    seed = 2**64 - 1
    vjson = P("v.json")
    rc, out, err = run(["verify", "--kernel", "moe_align", "--quick", "--seed", str(seed), "--where", "M=1",
                        "--json", vjson, "--allow-empty"], timeout=60)
    doc = json.load(open(vjson)) if os.path.exists(vjson) else {}
    opts = doc.get("options", {})
    check("verify --seed 2^64-1: exit 0 or 1 (not a usage error)", rc in (0, 1), f"rc={rc} {utf8(err)!r}")
    check("verify results: options record the seed exactly", opts.get("seed") == seed, json.dumps(opts))
    check("verify results: options record quick, kernels and where",
          opts.get("quick") is True and opts.get("kernels") == ["moe_align"] and opts.get("where") == ["M=1"],
          json.dumps(opts))
    check("verify results: options record the model configs, tuned config and data dir",
          all(isinstance(opts.get(k), str) and opts.get(k) for k in ("model_configs", "tuned_config", "data_dir")),
          json.dumps(opts))

finish("cli_validation")
