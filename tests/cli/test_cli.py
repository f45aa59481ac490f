#!/usr/bin/env python3
"""Command-line tests of the built moe-harness binary (run by `meson test`).

usage: test_cli.py path/to/moe-harness

Checks exit codes (0 ok, 2 bad input), that errors are one line on stderr, and
that JSON outputs are valid and written atomically.
"""
import json
import os
import stat
import subprocess
import sys
import tempfile
import time

from checks import check, finish

EXE = os.path.abspath(sys.argv[1])


def run(args, cwd=None, timeout=600):
    p = subprocess.run([EXE] + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def err_lines(stderr):
    return [l for l in stderr.splitlines() if l.strip()]


def expect_usage_error(name, args, must_mention):
    rc, out, err = run(args)
    lines = err_lines(err)
    detail = f"rc={rc} stdout={out!r} stderr={err!r}"
    check(f"{name}: exit 2", rc == 2, detail)
    check(f"{name}: exactly one line on stderr", len(lines) == 1, detail)
    check(f"{name}: nothing on stdout", out == "", detail)
    check(f"{name}: message names {must_mention!r}", lines and must_mention in lines[-1], detail)
    return lines


# --help / --version
rc, out, err = run(["--help"])
check("--help: exit 0", rc == 0, err)
check("--help: usage and every command listed",
      "Usage" in out and all(c in out for c in ("devices", "list", "verify")), out)
rc, out, err = run(["--version"])
check("--version: exit 0 and prints the version", rc == 0 and out.startswith("moe-harness "), out + err)
rc, out, err = run(["verify", "--help"])
check("verify --help: exit 0 and lists --json", rc == 0 and "--json" in out, out + err)

# Usage errors: one line, exit 2.
lines = expect_usage_error("unknown option", ["--bogus"], "--bogus")
check("unknown option: not reported as a missing subcommand",
      lines and "subcommand is required" not in lines[0].lower(), str(lines))
expect_usage_error("unknown option after a command", ["list", "--bogus"], "--bogus")
expect_usage_error("malformed value", ["--device", "x", "list"], "--device")
expect_usage_error("out-of-range value", ["--device", "-1", "list"], "--device")
expect_usage_error("missing value", ["list", "--device"], "--device")
expect_usage_error("malformed seed", ["verify", "--seed", "abc"], "--seed")
expect_usage_error("unknown command", ["nosuch"], "nosuch")
expect_usage_error("no command", [], "command")

# verify --kernel nosuch: exit 2, and the last line names the kernel (a
# "no GPU on this machine" notice may come first).
rc, out, err = run(["verify", "--kernel", "nosuch", "--json", ""])
lines = err_lines(err)
check("verify --kernel nosuch: exit 2", rc == 2, f"rc={rc} {err!r}")
check("verify --kernel nosuch: names the kernel", lines and "nosuch" in lines[-1], err)

# verify --where KEY=V1[,V2...]: a malformed filter is a usage error; a filter
# that keeps nothing exits 2 naming the parameters there are; a good one keeps
# exactly the matching cases and is recorded in the results.
expect_usage_error("verify --where without =", ["verify", "--where", "M", "--json", ""], "--where")
expect_usage_error("verify --where empty value", ["verify", "--where", "M=1,", "--json", ""], "empty value")
rc, out, err = run(["verify", "--quick", "--where", "nosuchparam=1", "--json", ""])
lines = err_lines(err)
check("verify --where matching nothing: exit 2", rc == 2, f"rc={rc} {err!r}")
check("verify --where matching nothing: says so and lists the parameters",
      lines and "selects no case" in lines[-1] and "top_k" in lines[-1], err)
with tempfile.TemporaryDirectory() as wtmp:
    wj = os.path.join(wtmp, "where.json")
    rc, out, err = run(["verify", "--quick", "--kernel", "moe_align", "--where", "E=8,17", "--json", wj])
    check("verify --where E=8,17: exit 0 or 1", rc in (0, 1), f"rc={rc} {err[-2000:]!r}")
    try:
        wdoc = json.load(open(wj))
        es = sorted({c["params"]["E"] for c in wdoc["cases"]})
        check("verify --where E=8,17: only those cases, at least one", wdoc["cases"] and set(es) <= {8, 17}, str(es))
        check("verify --where: recorded in the results", wdoc.get("where") == ["E=8,17"], str(wdoc.get("where")))
    except (OSError, ValueError, KeyError) as e:
        check("verify --where: results JSON", False, repr(e))

# verify --where model=NAME: every case built from a model of configs/model_configs.json
# (fused_moe, fused_moe_q8 and moe_align model shapes, quant rows of a model's
# width, routing cases of a model's routing) has params["model"]; the others lack
# the key, so --where model=... never selects them. Checked on the --quick list
# (in a -Dgpu=none build or without a GPU the GPU cases are listed and skip).
MODELS = {m["name"]: m for m in json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                            "configs", "model_configs.json")))["models"]}
with tempfile.TemporaryDirectory() as mtmp:
    rc, out, err = run(["devices", "--no-measure", "--json", os.path.join(mtmp, "d.json")])
    gpu_visible = bool(json.load(open(os.path.join(mtmp, "d.json"))).get("devices"))

    def verify_doc(name, args):
        path = os.path.join(mtmp, name + ".json")
        rc, out, err = run(["verify", "--quick"] + args + ["--json", path])
        check(f"verify {' '.join(args)}: exit 0 or 1", rc in (0, 1), f"rc={rc} {err[-2000:]!r}")
        try:
            return json.load(open(path))
        except (OSError, ValueError) as e:
            check(f"verify {' '.join(args)}: results JSON", False, repr(e))
            return {"cases": []}

    # One family, one model: exactly its model cases, recorded with their params.
    d = verify_doc("fm_qwen", ["--kernel", "fused_moe", "--where", "model=qwen3_235b"])
    cases = d["cases"]
    check("verify --kernel fused_moe --where model=qwen3_235b: exactly the model's cases",
          [c["name"] for c in cases] == [f"gpu/model/qwen3_235b_M{m}" for m in (1, 256, 4096)],
          str([c["name"] for c in cases]))
    q = MODELS["qwen3_235b"]
    check("verify --where model=qwen3_235b: params carry the model and its shape",
          cases and all(c["kernel"] == "fused_moe" and c["params"].get("model") == "qwen3_235b" and
                        c["params"]["E"] == q["experts"] and c["params"]["top_k"] == q["top_k"] and
                        c["params"]["model_dim"] == q["model_dim"] and c["params"]["inter_dim"] == q["inter_dim"]
                        for c in cases), json.dumps([c["params"] for c in cases]))
    check("verify --where model=qwen3_235b: recorded in the results", d.get("where") == ["model=qwen3_235b"],
          str(d.get("where")))
    if not gpu_visible:
        check("verify --where model=qwen3_235b without a GPU: the GPU cases are listed as skipped",
              cases and all(c["needs_gpu"] and c["status"] == "skip" for c in cases) and
              d["summary"] == {"passed": 0, "failed": 0, "skipped": len(cases)}, json.dumps(d["summary"]))

    if not gpu_visible:
        rc, out, err = run(["verify", "--quick", "--kernel", "fused_moe", "--where", "model=qwen3_235b", "--json", ""])
        check("verify where nothing runs (GPU cases, no GPU): exit 1, says 'nothing ran'",
              rc == 1 and "nothing ran" in err, f"rc={rc} {err[-300:]!r}")
        rc, out, err = run(["verify", "--quick", "--kernel", "fused_moe", "--where", "model=qwen3_235b", "--json", "",
                            "--allow-empty"])
        check("verify --allow-empty where nothing runs: exit 0", rc == 0, f"rc={rc} {err[-300:]!r}")
    rc, out, err = run(["verify", "--quick", "--kernel", "moe_align", "--json", ""])
    check("verify: ends with the family table and the summary line",
          rc == 0 and "family" not in out and out.strip().splitlines()[-1].startswith("verify: "), out[-300:])
    rc, out, err = run(["verify", "--quick", "--kernel", "moe_align", "--kernel", "routing", "--json", ""])
    check("verify over two families: a per-family table before the summary",
          rc == 0 and any(l.startswith("moe_align ") for l in out.splitlines()) and
          any(l.startswith("routing ") for l in out.splitlines()), out[-500:])

    # Every family: the unfiltered list's model params are config names, match the config's shape,
    # and --where model=X keeps exactly the cases with that model, in order.
    full = verify_doc("all", [])["cases"]
    tagged = [c for c in full if "model" in c["params"]]
    check("verify: every family has cases with a model param",
          {c["kernel"] for c in tagged} == {"moe_align", "quant", "fused_moe", "routing", "fused_moe_q8"},
          str(sorted({c["kernel"] for c in tagged})))
    names = [(c["kernel"], c["name"]) for c in full]
    dup = sorted({n for n in names if names.count(n) > 1})
    check("verify: case names are unique within each family (golden cases carry their file's name)",
          not dup and not any(n == "golden/" for _, n in names), str(dup[:5]))
    check("verify: cases without a model (odd shapes, golden data) lack the key",
          any(c["name"].startswith("gpu/odd/") for c in full if "model" not in c["params"]) and
          all("model" not in c["params"] for c in full if c["name"].startswith("golden/")), "")
    check("verify: every case named .../model/<name>_M... has that model param",
          all(c["params"].get("model") == c["name"].split("/model/")[1].rsplit("_M", 1)[0]
              for c in full if "/model/" in c["name"]), "")
    bad = []
    for c in tagged:
        m, pr = MODELS.get(c["params"]["model"]), c["params"]
        if m is None:
            bad.append((c["name"], "not a model of configs/model_configs.json"))
            continue
        for key, want in (("E", m["experts"]), ("top_k", m["top_k"]), ("k", m["top_k"]), ("model_dim", m["model_dim"]),
                          ("inter_dim", m["inter_dim"]), ("K", m["model_dim"])):
            if key in pr and pr[key] != want:
                bad.append((c["name"], key, pr[key], want))
        if c["kernel"] == "quant" and f", {m['model_dim']})" not in pr["problem"]:
            bad.append((c["name"], "row width", pr["problem"]))
    check("verify: each model param matches the model's shape (E, top_k, model_dim, inter_dim, ...)", not bad, str(bad))
    for model in ("deepseek_v3", "mixtral_8x7b"):
        d = verify_doc("where_" + model, ["--where", "model=" + model])
        want = [(c["kernel"], c["name"]) for c in tagged if c["params"]["model"] == model]
        got = [(c["kernel"], c["name"]) for c in d["cases"]]
        check(f"verify --where model={model}: exactly the cases with that model, every family that has one",
              got == want and len({k for k, _ in got}) >= 4, f"got {got}\nwant {want}")
    d = verify_doc("two", ["--kernel", "fused_moe", "--where", "model=qwen3_235b,mixtral_8x7b", "--where", "M=256"])
    check("verify --where model=A,B --where M=256: one case per model",
          [c["name"] for c in d["cases"]] == ["gpu/model/mixtral_8x7b_M256", "gpu/model/qwen3_235b_M256"],
          str([c["name"] for c in d["cases"]]))
    rc, out, err = run(["verify", "--quick", "--kernel", "fused_moe", "--where", "model=nosuch", "--json", ""])
    check("verify --where model=nosuch: exit 2, lists model among the parameters",
          rc == 2 and "selects no case" in err_lines(err)[-1] and "model" in err_lines(err)[-1], err)

# list
rc, out, err = run(["list"])
check("list: exit 0", rc == 0, err)
check("list: kernels, dtypes, distributions", all(s in out for s in ("kernels:", "dtypes:", "bf16", "routing")), out)

with tempfile.TemporaryDirectory() as tmp:
    # devices --no-measure: works with or without a GPU and says which.
    dj = os.path.join(tmp, "devices.json")
    rc, out, err = run(["devices", "--no-measure", "--json", dj])
    check("devices --no-measure: exit 0", rc == 0, out + err)
    check("devices --no-measure: names the backend", "backend:" in out, out)
    plain = ("no GPU" in out) or ("GPU 0:" in out)
    check("devices --no-measure: says plainly whether there is a GPU", plain, out)
    try:
        doc = json.load(open(dj))
        check("devices --json: valid JSON with backend and devices",
              "backend" in doc and isinstance(doc.get("devices"), list), str(doc))
        check("devices --json: device list matches the text",
              (len(doc["devices"]) == 0) == ("no GPU" in out), out)
    except Exception as e:  # noqa: BLE001
        check("devices --json: valid JSON", False, repr(e))

    # verify --json: valid JSON, written atomically (into an existing folder: a
    # missing one is exit 2, checked below).
    vj = os.path.join(tmp, "sub", "dir", "out.json")
    os.makedirs(os.path.dirname(vj))
    rc, out, err = run(["verify", "--quick", "--json", vj], cwd=tmp)
    # Exit 0 when every case passed or skipped, 1 when one failed (whether the
    # kernels pass is for their own tests; here the exit code must agree with
    # the JSON summary below).
    check("verify --quick: exit 0 or 1", rc in (0, 1), f"rc={rc}\n{out}\n{err[-4000:]}")
    check("verify: summary line on stdout", "passed" in out and "failed" in out, out)
    try:
        with open(vj) as f:
            text = f.read()
        doc = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        s = doc.get("summary", {})
        check("verify --json: valid strict JSON with a summary",
              all(k in s for k in ("passed", "failed", "skipped")) and isinstance(doc.get("cases"), list), text[:500])
        check("verify --json: summary counts match the cases",
              s.get("passed", -1) + s.get("failed", -1) + s.get("skipped", -1) == len(doc.get("cases", [])), str(s))
        check("verify: exit code agrees with the summary", rc == (1 if s.get("failed", 0) > 0 else 0),
              f"rc={rc} summary={s}")
        if rc == 1:
            print("note: verify reported failing cases:\n" +
                  "\n".join(l for l in err.splitlines() if " FAIL " in l))
        check("verify --json: backend recorded", doc.get("backend") in ("none", "cuda", "hip"), str(doc.get("backend")))
    except Exception as e:  # noqa: BLE001
        check("verify --json: valid JSON", False, repr(e))
    left = [f for f in os.listdir(os.path.dirname(vj)) if f != "out.json"]
    check("verify --json: no temporary file left behind", left == [], str(left))
    # Running again replaces the file (rename over an existing file).
    rc2, _, err2 = run(["verify", "--quick", "--json", vj], cwd=tmp)
    check("verify --json: second run replaces the file", rc2 == rc and os.listdir(os.path.dirname(vj)) == ["out.json"],
          err2[-2000:])

# ---- bench, merge of bench shards, report/compare of the merged file ---------------
# The bench executables are stood in for by tests/cli/fake_bench.py (same flags
# and JSON as Google Benchmark), so the driver is tested without a GPU.
HERE = os.path.dirname(os.path.abspath(__file__))
rc, out, err = run(["bench", "--help"])
check("bench --help: lists its options", rc == 0 and all(
    o in out for o in ("--kernel", "--model", "--filter", "--repetitions", "--flush-l2", "--json", "--shard",
                       "--tuned-config", "--bench-dir")), out)
rep_help = " ".join(out[out.find("--repetitions"):].split("--min-time")[0].split())
check("bench --help: --repetitions defaults to 3 and says what compare needs", "=3 " in rep_help and
      "4 or more" in rep_help, rep_help)
for cmd in ("verify", "run", "tune"):
    rc, out, err = run([cmd, "--help"])
    check(f"{cmd} --help: lists --tuned-config", rc == 0 and "--tuned-config" in out, out)
rc, out, err = run(["merge", "--help"])
check("merge --help: mentions bench shards", rc == 0 and "bench" in out, out)

with tempfile.TemporaryDirectory() as tmp:
    # What this build and machine have (devices --json): the backend and the GPUs.
    dj = os.path.join(tmp, "dev.json")
    run(["devices", "--no-measure", "--json", dj])
    devinfo = json.load(open(dj)) if os.path.exists(dj) else {"backend": "?", "devices": [1]}
    no_gpu = devinfo.get("backend") == "none" or not devinfo.get("devices")
    if devinfo.get("backend") == "none":
        # Without a GPU backend (and no --bench-dir): one line, exit 2.
        expect_usage_error("bench in a -Dgpu=none build", ["bench", "--json", os.path.join(tmp, "x.json")],
                           "without a GPU backend")
    elif no_gpu:
        rc, out, err = run(["bench", "--json", os.path.join(tmp, "x.json")], cwd=tmp)
        check("bench in a GPU build without a GPU (or without Google Benchmark): exit 2, one line",
              rc == 2 and len(err_lines(err)) == 1 and out == "", f"rc={rc} out={out!r} err={err!r}")
    # An empty bench folder: Google Benchmark not built.
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    expect_usage_error("bench: no executables", ["bench", "--bench-dir", empty], "no bench_* executables")
    fb = os.path.join(tmp, "fb")
    os.mkdir(fb)
    for fam in ("fakea", "fakeb"):
        dst = os.path.join(fb, "bench_" + fam)
        with open(os.path.join(HERE, "fake_bench.py")) as f, open(dst, "w") as g:
            g.write(f.read())
        os.chmod(dst, 0o755)

    def bench(args, name):
        rc, out, err = run(["bench", "--bench-dir", fb] + args, cwd=tmp)
        check(f"bench {name}: exit 0", rc == 0, f"rc={rc} out={out!r} err={err[-3000:]!r}")
        return out, err

    full = os.path.join(tmp, "full.json")
    out, err = bench(["--json", full], "all")
    doc = json.load(open(full))
    first_reps = [b for b in doc["benchmarks"] if b.get("run_type") == "iteration" and b["repetition_index"] == 0]
    names = [b["name"] for b in first_reps]
    check("bench: every benchmark of both executables, families tagged",
          len(names) == 12 and {b["moe_family"] for b in doc["benchmarks"]} == {"fakea", "fakeb"} and
          sorted(doc["contexts"]) == ["fakea", "fakeb"], str(names))
    check("bench: global indices 0..n-1 in order, on every entry of a benchmark",
          [b["moe_index"] for b in first_reps] == list(range(12)) and all("moe_index" in b for b in doc["benchmarks"]),
          str([b.get("moe_index") for b in doc["benchmarks"]]))
    # Repeated 3 times by default: every repetition stays in the file beside the aggregates.
    per_run = {}
    for b in doc["benchmarks"]:
        per_run.setdefault(b["run_name"], []).append(b.get("aggregate_name") or f"rep{b.get('repetition_index')}")
    check("bench: 3 repetitions by default, each kept, with mean, median and stddev aggregates",
          doc["moe_bench"]["repetitions"] == 3 and len(per_run) == 12 and
          all({"rep0", "rep1", "rep2", "mean", "median", "stddev"} <= set(v) for v in per_run.values()),
          json.dumps(per_run)[:1000])
    check("bench: progress lines with count and ETA", "[12/12]" in err and "ETA" in err, err[-2000:])
    check("bench: tuned table passed on (default table)",
          doc["contexts"]["fakea"]["moe_tuned_config"].endswith("tuned_fmoe.csv") and
          doc["moe_bench"]["tuned_config"]["file"].endswith("tuned_fmoe.csv"), json.dumps(doc["contexts"]["fakea"]))
    shards = []
    for i in range(3):
        sp = os.path.join(tmp, f"s{i}.json")
        bench(["--shard", f"{i}/3", "--json", sp], f"--shard {i}/3")
        shards.append(sp)
        sd = json.load(open(sp))
        check(f"bench --shard {i}/3: its indices only",
              all(b["moe_index"] % 3 == i for b in sd["benchmarks"]) and sd["shard"] == {"index": i, "count": 3},
              str([b["moe_index"] for b in sd["benchmarks"]]))
    merged = os.path.join(tmp, "merged.json")
    rc, out, err = run(["merge"] + shards[::-1] + ["--out", merged], cwd=tmp)
    check("merge of bench shards: exit 0", rc == 0, out + err)
    md = json.load(open(merged))
    check("merge of bench shards: equals the unsharded run (names, order, times)",
          [(b["name"], b["real_time"]) for b in md["benchmarks"]] ==
          [(b["name"], b["real_time"]) for b in doc["benchmarks"]], json.dumps(md["benchmarks"])[:1000])
    expect_usage_error("merge of bench shards: a missing shard", ["merge", shards[0], shards[1], "--out", merged],
                       "missing shard")
    expect_usage_error("merge: verify and bench files mixed",
                       ["merge", shards[0], "tests/tooling/data/sample_verify.json", "--out", merged], "mixing")
    rc, out, err = run(["compare", full, merged], cwd=tmp)
    check("compare accepts bench's merged JSON (same run: exit 0, no regression)",
          rc == 0 and "0 regression" in out, out + err)
    rc, out, err = run(["report", "--bench", merged, "--out", os.path.join(tmp, "r.html")], cwd=tmp)
    check("report --bench accepts bench's merged JSON", rc == 0 and "12 benchmark point" in out, out + err)
    rj = json.load(open(os.path.join(tmp, "r.json")))
    check("report: families from moe_family", {"fakea", "fakeb"} <= {p["kernel"] for p in rj["bench"]["points"]}
          if "bench" in rj and "points" in rj["bench"] else True, json.dumps(rj)[:800])
    # Selection options.
    out, err = bench(["--model", "deepseek_v3", "--list"], "--model --list")
    listed = [l.split()[2] for l in out.splitlines() if l.strip()]
    check("bench --model: name match and E:/k: match (moe_align style)",
          len(listed) == 7 and all("deepseek_v3" in n or "E:256/k:8" in n for n in listed), out)
    fj = os.path.join(tmp, "f.json")
    out, err = bench(["--kernel", "fakeb", "--filter", "M:4096", "--repetitions", "3", "--flush-l2", "on",
                      "--json", fj], "--kernel --filter --repetitions --flush-l2")
    fd = json.load(open(fj))
    runs = {b["run_name"] for b in fd["benchmarks"]}
    check("bench --kernel/--filter: only the matching benchmarks", len(runs) == 2 and all("M:4096" in r for r in runs),
          str(runs))
    check("bench --repetitions: Google Benchmark's aggregates kept",
          sum(1 for b in fd["benchmarks"] if b.get("aggregate_name") == "mean") == 2, str(len(fd["benchmarks"])))
    check("bench --flush-l2 on: MOE_BENCH_FLUSH_L2=1 for the executables",
          fd["contexts"]["fakeb"]["moe_flush_l2"] == "1", json.dumps(fd["contexts"]))
    out, err = bench(["--kernel", "fakeb", "--repetitions", "0", "--json", fj], "--repetitions 0")
    fd = json.load(open(fj))
    check("bench --repetitions 0: Google Benchmark's single run, no aggregates",
          len(fd["benchmarks"]) == 4 and not any(b.get("run_type") == "aggregate" for b in fd["benchmarks"]),
          str(len(fd["benchmarks"])))
    # --device N reaches the executables as MOE_DEVICE; without it the environment's MOE_DEVICE passes through.
    rc, out, err = run(["--device", "3", "bench", "--bench-dir", fb, "--kernel", "fakeb", "--repetitions", "0",
                        "--json", fj], cwd=tmp)
    check("bench --device 3: the executables get MOE_DEVICE=3",
          rc == 0 and json.load(open(fj))["contexts"]["fakeb"]["moe_device_index"] == "3", f"rc={rc} err={err[-1500:]!r}")
    p = subprocess.run([EXE, "bench", "--bench-dir", fb, "--kernel", "fakeb", "--repetitions", "0", "--json", fj],
                       cwd=tmp, capture_output=True, text=True, timeout=600, env=dict(os.environ, MOE_DEVICE="2"))
    check("bench without --device: the environment's MOE_DEVICE=2 passes through",
          p.returncode == 0 and json.load(open(fj))["contexts"]["fakeb"]["moe_device_index"] == "2",
          f"rc={p.returncode} err={p.stderr[-1500:]!r}")
    expect_usage_error("bench --kernel nosuch", ["bench", "--bench-dir", fb, "--kernel", "nosuch"], "nosuch")
    expect_usage_error("bench --shard 3/3", ["bench", "--bench-dir", fb, "--shard", "3/3"], "shard")
    expect_usage_error("bench --flush-l2 maybe", ["bench", "--bench-dir", fb, "--flush-l2", "maybe"], "--flush-l2")
    expect_usage_error("bench --filter bad regex", ["bench", "--bench-dir", fb, "--filter", "(("], "--filter")
    # The executables say there is no GPU (exit 77): one line, exit 2.
    p = subprocess.run([EXE, "bench", "--bench-dir", fb, "--json", ""], capture_output=True, text=True, cwd=tmp,
                       env=dict(os.environ, FAKE_BENCH_EXIT="77"))
    check("bench: an executable's SKIP (no GPU) is exit 2 with its reason on the last line",
          p.returncode == 2 and "no GPU visible" in err_lines(p.stderr)[-1], p.stderr[-1000:])

    # --tuned-config: a bad table is exit 2 naming file and line; a missing named file too.
    bad = os.path.join(tmp, "bad.csv")
    with open(bad, "w") as f:
        f.write("cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n\n"
                "132,64,7168,2048,256,8,SiLu,bf16,nosuch_impl,1,0,0\n")
    for cmd in (["verify", "--quick", "--kernel", "moe_align", "--json", ""],
                ["bench", "--bench-dir", fb, "--json", ""],
                ["tune", "--dry-run", "--model", "deepseek_v3", "-M", "1"]):
        rc, out, err = run(cmd + ["--tuned-config", bad], cwd=tmp)
        lines = err_lines(err)
        check(f"{cmd[0]} --tuned-config bad.csv: exit 2 naming file:line and field",
              rc == 2 and lines and "bad.csv:2" in lines[-1] and "impl" in lines[-1], f"rc={rc} {err[-600:]!r}")
    expect_usage_error("verify --tuned-config missing file",
                       ["verify", "--quick", "--kernel", "moe_align", "--json", "", "--tuned-config",
                        os.path.join(tmp, "nope.csv")], "nope.csv")
    # verify records the table it used.
    good = os.path.join(tmp, "good.csv")
    with open(good, "w") as f:
        f.write("cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n,"
                "block_m,block_n,block_k,warps,stages,persistent,us,err\n"
                # A compiled decode tile of this backend (HIP: 16x64x128, 2 wavefronts, 2 stages).
                "132,64,7168,2048,256,8,SiLu,bf16,mma_sync_tiles,2,0,0,16,64,128,{}\n".format(
                    "2,2,1,12.5,0.001" if devinfo.get("backend") == "hip" else "4,4,1,12.5,0.001"))
    vj = os.path.join(tmp, "v.json")
    rc, out, err = run(["verify", "--quick", "--kernel", "moe_align", "--json", vj, "--tuned-config", good], cwd=tmp)
    vd = json.load(open(vj))
    check("verify --tuned-config: the table is recorded in the results",
          vd.get("tuned_config", {}).get("file") == good and vd["tuned_config"].get("rows") == 1, str(vd.get("tuned_config")))

    # tune: --dry-run lists candidates (no GPU needed); without a GPU backend a real run is exit 2.
    rc, out, err = run(["tune", "--dry-run", "--model", "deepseek_v3", "-M", "64", "-M", "100",
                        "--tuned-config", good], cwd=tmp)
    check("tune --dry-run: exit 0, points and candidates listed",
          rc == 0 and "deepseek_v3 M=64 bf16" in out and "[0] s1 " in out, out + err)
    # (on a GPU the device's name is known, so these rows without a device read "(any-device)")
    check("tune --dry-run: says which config the table gives now (exact / nearest)",
          "(tuned:exact" in out and "(tuned:nearest" in out, out)
    # The device column: rows of the GPU's name first, then rows without a device (tables from
    # before the column); --device-name assumes a GPU for --dry-run without one.
    if no_gpu:
        tile = "2,2,1" if devinfo.get("backend") == "hip" else "4,4,1"
        dcsv = os.path.join(tmp, "dev.csv")
        with open(dcsv, "w") as f:
            f.write("cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n,"
                    "block_m,block_n,block_k,warps,stages,persistent,us,err,device\n"
                    f"132,64,7168,2048,256,8,SiLu,bf16,mma_sync_tiles,2,0,0,16,64,128,{tile},12.5,0.001,NVIDIA H200\n"
                    f"132,1,7168,2048,256,8,SiLu,bf16,mma_sync_tiles,1,0,0,16,64,128,{tile},3.5,0.001,\n")

        def dry(*extra):
            # "deepseek_v3 M=64 bf16: 40 candidate(s); now <config> (<source>)" -> {64: source}
            rc, out, err = run(["tune", "--dry-run", "--model", "deepseek_v3", "-M", "1", "-M", "64", "-M", "4096",
                                "--tuned-config", dcsv] + list(extra), cwd=tmp)
            src = {int(l.split()[1][2:]): l[l.rindex(" (") + 2:-1]
                   for l in out.splitlines() if l.startswith("deepseek_v3 M=")}
            return rc, out + err, src
        rc, out, src = dry("--device-name", "NVIDIA H200")
        # The H200's own nearest bucket (64) comes before the exact row without a device (M=1).
        check("tune --dry-run --device-name 'NVIDIA H200': the H200's rows first",
              rc == 0 and "device 'NVIDIA H200'" in out and
              src == {1: "tuned:nearest", 64: "tuned:exact", 4096: "tuned:nearest"}, f"{src} {out[:600]}")
        rc, out, src = dry("--device-name", "NVIDIA H100 80GB HBM3")
        check("tune --dry-run --device-name H100: another GPU's row (same cu_num) is never used",
              rc == 0 and src == {1: "tuned:exact(any-device)", 64: "tuned:nearest(any-device)",
                                  4096: "tuned:nearest(any-device)"}, f"{src} {out[:600]}")
        rc, out, src = dry()
        check("tune --dry-run without --device-name: only rows without a device",
              rc == 0 and src == {1: "tuned:exact", 64: "tuned:nearest", 4096: "tuned:nearest"}, f"{src} {out[:600]}")
        vj = os.path.join(tmp, "vdev.json")
        rc, out, err = run(["verify", "--quick", "--kernel", "moe_align", "--json", vj, "--tuned-config", dcsv], cwd=tmp)
        check("verify --tuned-config with a device column: read, recorded",
              rc in (0, 1) and json.load(open(vj)).get("tuned_config", {}).get("rows") == 2, err[-600:])
    expect_usage_error("tune --model gpt_oss_120b (no fused_moe activation)",
                       ["tune", "--dry-run", "--model", "gpt_oss_120b"], "swiglu_oai")
    expect_usage_error("tune --dtype fp8", ["tune", "--dry-run", "--dtype", "fp8"], "--dtype")
    if no_gpu:
        tcsv = os.path.join(tmp, "t.csv")
        rc, out, err = run(["tune", "--model", "deepseek_v3", "-M", "1", "--tuned-config", tcsv], cwd=tmp)
        check("tune without a GPU: exit 2, one line, nothing written",
              rc == 2 and len(err_lines(err)) == 1 and not os.path.exists(tcsv), f"rc={rc} {err!r}")

# ---- compare: U test over the repetitions, minimum effect, geometric mean, device check ----
# Fixtures (tests/tooling/data/make_fixtures.py): the same three points in each file,
# repetitions spread +-1 % around the median.
CD = "tests/tooling/data/"


def flagged(out):  # table rows whose verdict is REGRESSION
    return sum(l.endswith(" REGRESSION") for l in out.splitlines())


with tempfile.TemporaryDirectory() as ctmp:
    cj = os.path.join(ctmp, "cmp.json")
    rc, out, err = run(["compare", CD + "compare_a.json", CD + "compare_b_mixed.json", "--json", cj])
    check("compare 5 vs 5 repetitions: exit 1 on a significant regression", rc == 1, out + err)
    cd = json.load(open(cj))
    verdicts = {r["name"].split("/")[1] + "/" + r["kernel"]: r["verdict"] for r in cd["rows"]}
    check("compare: +10 % separated is a regression, +8 % spread over A is not significant, -20 % a speedup",
          verdicts == {"deepseek_v3/align": "regression", "mixtral_8x7b/align": "not significant",
                       "deepseek_v3/fused_moe": "speedup"}, str(verdicts))
    check("compare: p of 5 vs 5 completely separated is 2/252",
          abs(cd["rows"][0]["p"] - 2 / 252) < 1e-12, str(cd["rows"][0]))
    g = cd.get("geomean_ratio")
    gk = cd.get("geomean_ratio_by_kernel", {})
    check("compare --json: geomean_ratio overall and per kernel",
          g is not None and abs(g - (1.1 * 1.08 * 0.8) ** (1 / 3)) < 1e-9 and
          abs(gk["align"]["ratio"] - (1.1 * 1.08) ** 0.5) < 1e-9 and gk["align"]["points"] == 2 and
          abs(gk["fused_moe"]["ratio"] - 0.8) < 1e-9, json.dumps(cd)[:1500])
    check("compare: geometric means printed at the end",
          "geomean B/A median time ratio: 0.9832 (B 1.7% faster) over 3 point(s)" in out and "  align: 1.0900" in out
          and "  fused_moe: 0.8000 (B 20.0% faster)" in out, out)
    # One run each, +7.8 % on a 4.7 us-scale point: never a regression.
    rc, out, err = run(["compare", CD + "compare_a1.json", CD + "compare_b1_slower.json"])
    check("compare 1 vs 1: +7.8 % reads 'unknown (too few repetitions: need 4)', exit 0, warning first",
          rc == 0 and flagged(out) == 0 and out.count("unknown (too few repetitions: need 4)") == 3 and
          out.startswith("WARNING: 3 of 3 point(s) have too few repetitions"), out + err)
    # bench's default 3 repetitions: 3 vs 3 cannot give p < 0.05 (0.1 at best) ...
    rc, out, err = run(["compare", CD + "compare_a3.json", CD + "compare_b3_slower.json"])
    check("compare 3 vs 3 at alpha 0.05: +10 % reads unknown, exit 0, the warning says 0.1 and 4 repetitions",
          rc == 0 and out.count("unknown (too few repetitions: need 4)") == 3 and
          "smallest possible p 0.1" in out and "--repetitions 4" in out, out + err)
    # ... unless the user accepts a looser alpha.
    rc, out, err = run(["compare", CD + "compare_a3.json", CD + "compare_b3_slower.json", "--alpha", "0.2"])
    check("compare 3 vs 3 --alpha 0.2: the separated +10 % points are regressions",
          rc == 1 and flagged(out) == 3, out + err)
    check("compare --help: explains the rule and the repetitions it needs",
          all(t in " ".join(run(["compare", "--help"])[1].split()) for t in
              ("Mann-Whitney", "--alpha", "--threshold", "--force", "at least 4 each", "never give p below 0.1")),
          run(["compare", "--help"])[1])
    expect_usage_error("compare --alpha 0", ["compare", CD + "compare_a.json", CD + "compare_b_same.json",
                                             "--alpha", "0"], "--alpha")

    # Devices: another GPU or other ceilings are refused (exit 2, one line naming
    # both files and the field) unless --force; a file without a device warns.
    def variant(name, **ctx):
        d = json.load(open(CD + "compare_b_same.json"))
        for k, v in ctx.items():
            if v is None:
                d["context"].pop(k, None)
            else:
                d["context"][k] = v
        path = os.path.join(ctmp, name)
        with open(path, "w") as f:
            json.dump(d, f)
        return path
    other = variant("other_device.json", moe_device="SYNTHETIC FIXTURE <other device>")
    lines = expect_usage_error("compare: runs from different devices", ["compare", CD + "compare_a.json", other],
                               "moe_device")
    check("compare: the refusal names both files and --force", lines and CD + "compare_a.json" in lines[-1] and
          other in lines[-1] and "--force" in lines[-1], str(lines))
    rc, out, err = run(["compare", CD + "compare_a.json", other, "--force"])
    check("compare --force: compares, and the first line says the devices differ",
          rc == 0 and out.splitlines()[0] == "WARNING: comparing runs from different devices: "
          "A=SYNTHETIC FIXTURE <not a measurement> B=SYNTHETIC FIXTURE <other device>", out + err)
    ceil = variant("other_ceilings.json", moe_read_gbps="4500.0")
    expect_usage_error("compare: read ceilings 50 % apart", ["compare", CD + "compare_a.json", ceil], "moe_read_gbps")
    close = variant("close_ceilings.json", moe_read_gbps="3090.0", moe_bf16_tflops="n/a")
    rc, out, err = run(["compare", CD + "compare_a.json", close])
    check("compare: ceilings 3 % apart (run-to-run noise) or not measured: compared, no warning",
          rc == 0 and "WARNING" not in out, out + err)
    nodev = variant("no_device.json", moe_device=None)
    rc, out, err = run(["compare", CD + "compare_a.json", nodev])
    check("compare: a file without a device warns, never refuses",
          rc == 0 and out.startswith("WARNING: " + nodev + " records no device"), out + err)

# ---- output targets: checked before any work, never a special file or an input ----
dev_null_mode = os.stat("/dev/null").st_mode
t0 = time.monotonic()
lines = expect_usage_error("verify --json /dev/null", ["verify", "--json", "/dev/null"], "/dev/null")
check("verify --json /dev/null: refused before the sweep (no case ran)",
      lines and not any(l.startswith("[") for l in lines), str(lines))
check("verify --json /dev/null: still the character device",
      stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.stat("/dev/null").st_mode == dev_null_mode)
expect_usage_error("verify --json in a missing folder", ["verify", "--json", "/nonexistent_dir/x.json"],
                   "/nonexistent_dir")
check("verify with a bad --json target: exit 2 within seconds (before the sweep)", time.monotonic() - t0 < 30,
      f"{time.monotonic() - t0:.1f}s")
expect_usage_error("devices --json /dev/null", ["devices", "--no-measure", "--json", "/dev/null"], "/dev/null")
check("devices --json /dev/null: still the character device", stat.S_ISCHR(os.stat("/dev/null").st_mode))

with tempfile.TemporaryDirectory() as otmp:
    vin = os.path.join(otmp, "results.json")
    vtext = json.dumps({"tool": "moe-harness verify", "cases": [{"kernel": "k", "name": "c", "status": "pass"}]})
    with open(vin, "w") as f:
        f.write(vtext)
    def unchanged():
        with open(vin) as f:
            return f.read() == vtext
    # The default --json-out of results.html is results.json: the input.
    expect_usage_error("report --verify results.json --out results.html (json-out = the input)",
                       ["report", "--verify", vin, "--out", os.path.join(otmp, "results.html")], "results.json")
    check("report writing over its input: input unchanged, no HTML written",
          unchanged() and not os.path.exists(os.path.join(otmp, "results.html")))
    os.mkdir(os.path.join(otmp, "sub"))
    expect_usage_error("report --json-out naming the input another way",
                       ["report", "--verify", vin, "--out", os.path.join(otmp, "r.html"),
                        "--json-out", os.path.join(otmp, "sub", "..", "results.json")], "results.json")
    check("report --json-out = input: input unchanged", unchanged())
    os.link(vin, os.path.join(otmp, "hard.json"))
    expect_usage_error("report --out a hard link of the input",
                       ["report", "--verify", vin, "--out", os.path.join(otmp, "hard.json"),
                        "--json-out", os.path.join(otmp, "r.json")], "hard.json")
    check("report --out hard link of the input: input unchanged", unchanged())
    expect_usage_error("report --out DIR", ["report", "--verify", vin, "--out", os.path.join(otmp, "sub")], "sub")
    check("report --out DIR: still a folder, nothing in it",
          os.path.isdir(os.path.join(otmp, "sub")) and os.listdir(os.path.join(otmp, "sub")) == [])
    expect_usage_error("merge --out the input", ["merge", vin, "--out", vin], "results.json")
    check("merge --out the input: input unchanged", unchanged())
    expect_usage_error("merge --out under a regular file", ["merge", vin, "--out", os.path.join(vin, "m.json")],
                       "m.json")
    rc, out, err = run(["report", "--verify", vin, "--out", os.path.join(otmp, "ok.html")])
    check("report with distinct outputs: exit 0, both written, input unchanged",
          rc == 0 and os.path.isfile(os.path.join(otmp, "ok.html")) and os.path.isfile(os.path.join(otmp, "ok.json"))
          and unchanged(), f"rc={rc} {err!r}")
    check("report: no temporaries left",
          not [n for n in os.listdir(otmp) if ".tmp." in n], str(os.listdir(otmp)))

finish("cli")
