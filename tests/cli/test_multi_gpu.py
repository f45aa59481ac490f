#!/usr/bin/env python3
"""scripts/multi_gpu.py on a CPU build: shards of `verify --quick` as separate
processes (and under mpirun where it exists), merged and compared with the
single-process run; a failing shard and a hanging shard (the harness's test
hooks MOE_TEST_FAIL_SHARD / MOE_TEST_HANG_SHARD) give a nonzero exit, the other
shard's file intact and a summary naming them; tune --dry-run shards list the
same points as one process.

usage: test_multi_gpu.py path/to/moe-harness [path/to/mpirun]
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from checks import check, finish

EXE = os.path.abspath(sys.argv[1])
MPIRUN = sys.argv[2] if len(sys.argv) > 2 else ""
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "multi_gpu.py")
env = dict(os.environ, OMPI_MCA_plm_rsh_agent="", PRTE_MCA_plm_ssh_agent="")


def launch(args, extra_env=None, timeout=60):
    p = subprocess.run([sys.executable, SCRIPT, "--harness", EXE] + args, capture_output=True, text=True,
                       timeout=timeout, env=dict(env, **(extra_env or {})))
    return p.returncode, p.stdout + p.stderr


def summary(out):
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)


VQ = ["verify", "--quick", "--kernel", "moe_align"]
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "ok")
    rc, text = launch(["-n", "2", "--out", out, "--compare-single"] + VQ)
    check("2 shards + --compare-single: exit 0", rc == 0, text)
    if rc == 0:
        s = summary(out)
        check("summary: both shards exit 0, merge exit 0, results the same",
              [p["exit"] for p in s["processes"]] == [0, 0] and s["merge"]["exit"] == 0 and s["comparison"]["same"],
              json.dumps(s)[:2000])
        check("summary: wall-time ratio reported", "wall time sharded / single" in text
              and s["comparison"]["wall_ratio_sharded_over_single"] is not None, text)
        merged = json.load(open(os.path.join(out, "merged.json")))
        single = json.load(open(os.path.join(out, "single.json")))
        check("merged.json equals single.json case for case",
              [(c["name"], c["status"]) for c in merged["cases"]] == [(c["name"], c["status"]) for c in single["cases"]],
              "")
        check("README.md, logs written", all(os.path.exists(os.path.join(out, f))
                                             for f in ("README.md", "shard0.log", "shard1.log", "single.log")),
              str(os.listdir(out)))

    out = os.path.join(tmp, "fail")
    rc, text = launch(["-n", "2", "--out", out] + VQ, {"MOE_TEST_FAIL_SHARD": "1"})
    s = summary(out)
    check("a failing shard: exit 1, its exit code reported, merge partial",
          rc == 1 and [p["exit"] for p in s["processes"]] == [0, 1] and s["merge"]["partial"]
          and "shard1.json" in s["merge"]["missing"], text)
    check("a failing shard: the other shard's file is whole",
          json.load(open(os.path.join(out, "shard0.json")))["shard"] == {"index": 0, "count": 2}, str(os.listdir(out)))
    check("a failing shard: its log holds the error",
          "injected failure of shard 1/2" in open(os.path.join(out, "shard1.log")).read(), "")

    out = os.path.join(tmp, "hang")
    t0 = time.monotonic()
    rc, text = launch(["-n", "2", "--out", out, "--timeout", "3"] + VQ, {"MOE_TEST_HANG_SHARD": "1"})
    s = summary(out)
    check("a hanging shard: killed after --timeout, exit 1, reported as timeout",
          rc == 1 and s["processes"][1]["timed_out"] and not s["processes"][0]["timed_out"]
          and time.monotonic() - t0 < 30 and "timeout" in text, text)

    out = os.path.join(tmp, "tune")
    rc, text = launch(["-n", "2", "--out", out, "--compare-single", "tune", "--dry-run", "-M", "1", "-M", "64"])
    s = summary(out) if os.path.exists(os.path.join(out, "summary.json")) else {}
    check("tune --dry-run, 2 shards: the same points as one process",
          rc == 0 and s["comparison"]["same"] and s["comparison"]["points"][0] > 2, text)

    rc, text = launch(["-n", "2", "--out", os.path.join(tmp, "bad")] + VQ + ["--json", "x.json"])
    check("--json among the harness arguments: exit 2", rc == 2 and "--json is set by multi_gpu.py" in text, text)

    if MPIRUN:
        out = os.path.join(tmp, "mpi")
        rc, text = launch(["-n", "2", "--out", out, "--mpi", "--mpirun", MPIRUN, "--mpirun-arg=--oversubscribe",
                           "--mpirun-arg=--allow-run-as-root", "--compare-single"] + VQ)
        check("--mpi: exit 0, merged by rank 0, the same as one process",
              rc == 0 and summary(out)["comparison"]["same"] and os.path.exists(os.path.join(out, "merged.rank1.json")),
              text)

finish("multi_gpu")
