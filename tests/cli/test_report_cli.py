#!/usr/bin/env python3
"""`moe-harness report` with baselines, end to end (run by `meson test`).

usage: test_report_cli.py path/to/moe-harness     (from the source root)

--baseline NAME=FILE: bad values are one-line errors with exit 2; a Google
Benchmark file named as ours lines up with our points (the synthetic fixtures,
and the committed H200 run with its torch anchor converted by
bench/anchors/gbench_format.py); the torch script's own --json format is not one.
"""
import json
import os
import subprocess
import sys
import tempfile

from checks import check, finish

EXE = os.path.abspath(sys.argv[1])
DATA = "tests/tooling/data"
H200 = "reports/h200-b8c48d9"


def run(args):
    p = subprocess.run([EXE] + args, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def expect_usage_error(name, args, must_mention):
    rc, out, err = run(args)
    lines = [l for l in err.splitlines() if l.strip()]
    detail = f"rc={rc} stdout={out!r} stderr={err!r}"
    check(f"{name}: exit 2, one line on stderr naming {must_mention!r}",
          rc == 2 and len(lines) == 1 and must_mention in lines[0] and out == "", detail)


with tempfile.TemporaryDirectory() as tmp:
    html = os.path.join(tmp, "r.html")
    bench = ["--bench", f"{DATA}/sample_layer_bench.json"]
    expect_usage_error("--baseline without '='", ["report"] + bench + ["--baseline", "torch", "--out", html], "NAME=FILE")
    expect_usage_error("--baseline with an empty name", ["report"] + bench + ["--baseline", f"={DATA}/sample_baseline.json",
                                                                             "--out", html], "NAME=FILE")
    expect_usage_error("--baseline of a missing file",
                       ["report"] + bench + ["--baseline", f"torch={tmp}/none.json", "--out", html], "none.json")
    expect_usage_error("--baseline name twice",
                       ["report"] + bench + ["--baseline", f"t={DATA}/sample_baseline.json", "--baseline",
                                             f"t={DATA}/sample_baseline.json", "--out", html], "given twice")
    expect_usage_error("--baseline without --bench",
                       ["report", "--verify", f"{DATA}/sample_verify.json", "--baseline",
                        f"torch={DATA}/sample_baseline.json", "--out", html], "--bench")
    expect_usage_error("--baseline of a verify document",
                       ["report"] + bench + ["--baseline", f"v={DATA}/sample_verify.json", "--out", html],
                       "not a Google Benchmark JSON document")
    expect_usage_error("--baseline of the torch script's --json format",
                       ["report", "--bench", f"{H200}/bench_fused_moe.json", "--baseline",
                        f"torch={H200}/torch_moe_layer.json", "--out", html], "not a Google Benchmark JSON document")
    check("no output after the errors", not os.path.exists(html), str(os.listdir(tmp)))

    rc, out, err = run(["report"] + bench + ["--baseline", f"torch={DATA}/sample_baseline.json", "--out", html])
    check("fixtures with a baseline: exit 0", rc == 0, f"rc={rc} {out!r} {err!r}")
    check("fixtures: the match is reported", "baseline torch: 8 point(s) matched ours, 1 not" in out, out)
    rep = json.load(open(os.path.join(tmp, "r.json"))) if rc == 0 else {}
    base = (rep.get("baselines") or [{}])[0]
    check("fixtures: ours / torch per point", len(base.get("points", [])) == 8 and
          all(abs(p["ratio"] - 1 / 1.1) < 1e-9 for p in base["points"]), json.dumps(base)[:400])
    page = open(html, encoding="utf-8").read() if rc == 0 else ""
    check("fixtures: the first screen and the ratio table", 'id="layer-summary"' in page and 'class="ratios"' in page)

    rc, out, err = run(["report", "--bench", f"{H200}/bench_fused_moe.json", "--bench", f"{H200}/bench_fused_moe_q8.json",
                        "--baseline", f"torch={H200}/torch_moe_layer.gbench.json", "--out", html])
    check("H200 run with its torch anchor: every torch point lines up", rc == 0 and
          "baseline torch: 18 point(s) matched ours, 0 not" in out, f"rc={rc} {out!r} {err!r}")
    rep = json.load(open(os.path.join(tmp, "r.json"))) if rc == 0 else {"bench": {"points": []}}
    mixtral = [p for p in rep["bench"]["points"]
               if p["key"] == "BM_q8_layer/fp8_tensor/mixtral_8x7b" and p["M"] == 4096]
    check("H200: the fp8 layer's floor is at the fp8 peak (from the torch anchor, same card), compute-bound",
          len(mixtral) == 1 and mixtral[0]["floor"]["bound"] == "compute" and mixtral[0]["pct_floor"] > 20,
          json.dumps(mixtral)[:600])

    rc, out, err = run(["report", "--help"])
    check("report --help lists --baseline", rc == 0 and "--baseline" in out, out)

finish("cli_report")
