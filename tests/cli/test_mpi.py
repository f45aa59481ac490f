#!/usr/bin/env python3
"""moe-harness under mpirun (MPI build): `verify` and `bench` ranks take shard
rank/size and rank 0 merges and writes --json; the merged results must equal
the unsharded run; `tune --dry-run` lists the unsharded points. A rank that
fails (MOE_TEST_FAIL_SHARD) or hangs (MOE_TEST_HANG_SHARD, MOE_MPI_TIMEOUT_S)
ends the job with an explicit error and a nonzero exit, leaves the other
rank's file intact and no half-written merged file. Run by `meson test` when
the build found MPI and mpirun.

usage: test_mpi.py path/to/moe-harness path/to/mpirun
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from checks import check, finish

EXE = os.path.abspath(sys.argv[1])
MPIRUN = sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
MPI = [MPIRUN, "-np", "2", "--oversubscribe", "--allow-run-as-root"]
env = dict(os.environ, OMPI_MCA_plm_rsh_agent="", PRTE_MCA_plm_ssh_agent="")


def run(cmd, cwd, extra_env=None, timeout=600):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=dict(env, **(extra_env or {})))
    return p.returncode, p.stdout, p.stderr


def key(doc):
    return [(c["kernel"], c["name"], c["status"], c.get("index")) for c in doc["cases"]]


with tempfile.TemporaryDirectory() as tmp:
    one = os.path.join(tmp, "one.json")
    two = os.path.join(tmp, "mpi.json")
    rc1, out1, err1 = run([EXE, "verify", "--quick", "--kernel", "moe_align", "--json", one], tmp)
    rc2, out2, err2 = run(MPI + [EXE, "verify", "--quick", "--kernel", "moe_align", "--json", two], tmp)
    check("mpirun -np 2 verify: same exit code as one process", rc1 == rc2, f"{rc1} {rc2}\n{out2}\n{err2[-3000:]}")
    check("mpirun -np 2 verify: rank 0 wrote the merged file", os.path.exists(two), out2 + err2[-3000:])
    if os.path.exists(two) and os.path.exists(one):
        a, b = json.load(open(one)), json.load(open(two))
        check("mpirun verify: merged cases equal the unsharded run", key(a) == key(b), json.dumps(b)[:1000])
        check("mpirun verify: merged summary equals the unsharded one", a["summary"] == b["summary"],
              f"{a['summary']} {b['summary']}")
        check("mpirun verify: 2 ranks recorded", b.get("mpi", {}).get("ranks") == 2 and b.get("shards", {}).get("count") == 2,
              json.dumps({k: b.get(k) for k in ("mpi", "shards")}))
    check("mpirun verify: each rank reports its shard", "[rank 0/2]" in err2 and "[rank 1/2]" in err2, err2[-2000:])
    rc, out, err = run(MPI + [EXE, "verify", "--quick", "--kernel", "moe_align", "--shard", "0/2", "--json", ""], tmp)
    check("mpirun verify --shard: refused (exit 2)", rc == 2 and "--shard" in err, err[-1000:])

    # A rank whose work throws: it still reaches the exchange; rank 0 writes the
    # other rank's results with the failure listed, and the job exits nonzero.
    VQ = [EXE, "verify", "--quick", "--kernel", "moe_align"]
    for bad in (1, 0):
        out_f = os.path.join(tmp, f"fail{bad}.json")
        good = 1 - bad
        rc, out, err = run(MPI + VQ + ["--json", out_f], tmp, {"MOE_TEST_FAIL_SHARD": str(bad)}, timeout=120)
        check(f"mpirun verify, rank {bad} fails: nonzero exit", rc != 0, f"{rc}\n{out}\n{err[-2000:]}")
        check(f"mpirun verify, rank {bad} fails: rank 0 names the failed rank and its error",
              f"mpi: 1 of 2 rank(s) failed (rank {bad}: injected failure of shard {bad}/2" in err, err[-2000:])
        rank_good = os.path.join(tmp, f"fail{bad}.rank{good}.json")
        check(f"mpirun verify, rank {bad} fails: rank {good}'s own file is whole, its shard",
              os.path.exists(rank_good) and json.load(open(rank_good)).get("shard") == {"index": good, "count": 2},
              str(os.listdir(tmp)))
        check(f"mpirun verify, rank {bad} fails: no file of the failed rank",
              not os.path.exists(os.path.join(tmp, f"fail{bad}.rank{bad}.json")), str(os.listdir(tmp)))
        if os.path.exists(out_f):
            m = json.load(open(out_f))
            check(f"mpirun verify, rank {bad} fails: merged file holds rank {good}'s cases and lists rank {bad}",
                  m["mpi"]["failed"][0]["rank"] == bad and m["shards"] == {"count": 2, "present": 1}
                  and all(c["index"] % 2 == good for c in m["cases"]) and m["cases"], json.dumps(m["mpi"]))
        else:
            check(f"mpirun verify, rank {bad} fails: merged file written", False, str(os.listdir(tmp)))
    # A rank that hangs: the other rank's watchdog ends the job (MOE_MPI_TIMEOUT_S).
    hang = os.path.join(tmp, "hang.json")
    t0 = time.monotonic()
    try:
        rc, out, err = run(MPI + VQ + ["--json", hang], tmp, {"MOE_TEST_HANG_SHARD": "1", "MOE_MPI_TIMEOUT_S": "3"},
                           timeout=90)
        hung = False
    except subprocess.TimeoutExpired:
        hung, rc, err = True, None, ""
    check("mpirun verify, rank 1 hangs: the job ends (no hang)", not hung and time.monotonic() - t0 < 60,
          f"{time.monotonic() - t0:.0f} s")
    check("mpirun verify, rank 1 hangs: nonzero exit and one explicit timeout line",
          rc not in (0, None) and "mpi: the exchange of verify results not complete after 3 s (MOE_MPI_TIMEOUT_S)" in err,
          f"{rc}\n{err[-2000:]}")
    check("mpirun verify, rank 1 hangs: rank 0's own file is whole, no merged file",
          json.load(open(os.path.join(tmp, "hang.rank0.json")))["shard"]["index"] == 0 and not os.path.exists(hang),
          str(os.listdir(tmp)))
    rc, out, err = run(MPI + VQ + ["--json", ""], tmp, {"MOE_MPI_TIMEOUT_S": "soon"})
    check("mpirun: MOE_MPI_TIMEOUT_S not a number: exit 2 naming it", rc == 2 and "MOE_MPI_TIMEOUT_S='soon'" in err,
          err[-1000:])

    # tune --dry-run under mpirun: rank 0 prints the listing of the unsharded run.
    T = [EXE, "tune", "--dry-run", "-M", "1", "-M", "64", "-M", "4096"]
    rc1, out1, _ = run(T, tmp)
    rc2, out2, err2 = run(MPI + T, tmp)
    check("mpirun tune --dry-run: the unsharded listing", rc1 == 0 and rc2 == 0 and out1 == out2 and "M=4096" in out1,
          f"{rc1} {rc2}\n{out2[:2000]}\n{err2[-1000:]}")
    rc, out, err = run(MPI + T, tmp, {"MOE_TEST_FAIL_SHARD": "1"})
    check("mpirun tune, rank 1 fails: nonzero exit naming it", rc != 0 and "rank 1: injected failure" in err, err[-1000:])

    # bench under mpirun, with stand-in executables.
    fb = os.path.join(tmp, "fb")
    os.mkdir(fb)
    for fam in ("fakea", "fakeb"):
        shutil.copy(os.path.join(HERE, "fake_bench.py"), os.path.join(fb, "bench_" + fam))
        os.chmod(os.path.join(fb, "bench_" + fam), 0o755)
    bone = os.path.join(tmp, "b1.json")
    btwo = os.path.join(tmp, "b2.json")
    rc1, _, e1 = run([EXE, "bench", "--bench-dir", fb, "--json", bone], tmp)
    rc2, o2, e2 = run(MPI + [EXE, "bench", "--bench-dir", fb, "--json", btwo], tmp)
    check("mpirun -np 2 bench: exit 0", rc1 == 0 and rc2 == 0, f"{rc1} {rc2}\n{e1[-1000:]}\n{o2}\n{e2[-2000:]}")
    if os.path.exists(bone) and os.path.exists(btwo):
        a, b = json.load(open(bone)), json.load(open(btwo))
        check("mpirun bench: merged benchmarks equal the unsharded run",
              [(x["name"], x["real_time"]) for x in a["benchmarks"]] == [(x["name"], x["real_time"]) for x in b["benchmarks"]],
              json.dumps(b["benchmarks"])[:1000])
        devs = {json.load(open(btwo))["contexts"][f]["moe_device_index"] for f in ("fakea", "fakeb")}
        check("mpirun bench: executables got MOE_DEVICE = local rank", devs <= {"0", "1"}, str(devs))
    bfail = os.path.join(tmp, "bfail.json")
    rc, o2, e2 = run(MPI + [EXE, "bench", "--bench-dir", fb, "--json", bfail], tmp, {"MOE_TEST_FAIL_SHARD": "1"},
                     timeout=120)
    bmerged = json.load(open(bfail)) if os.path.exists(bfail) else {}
    check("mpirun bench, rank 1 fails: nonzero exit, rank 0's file and the merged file with rank 1 listed",
          rc != 0 and os.path.exists(os.path.join(tmp, "bfail.rank0.json"))
          and bmerged.get("mpi", {}).get("failed", [{}])[0].get("rank") == 1 and bmerged.get("benchmarks"),
          f"{rc}\n{e2[-2000:]}")

finish("mpi")
