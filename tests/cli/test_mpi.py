#!/usr/bin/env python3
"""moe-harness under mpirun (MPI build): `verify` and `bench` ranks take shard
rank/size and rank 0 merges and writes --json; the merged results must equal
the unsharded run. Run by `meson test` when the build found MPI and mpirun.

usage: test_mpi.py path/to/moe-harness path/to/mpirun
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

EXE = os.path.abspath(sys.argv[1])
MPIRUN = sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
MPI = [MPIRUN, "-np", "2", "--oversubscribe", "--allow-run-as-root"]
env = dict(os.environ, OMPI_MCA_plm_rsh_agent="", PRTE_MCA_plm_ssh_agent="")
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
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

failed = [r for r in results if not r[1]]
for i, (name, ok, detail) in enumerate(results, 1):
    print(f"{'ok' if ok else 'not ok'} {i} - {name}")
    if not ok:
        print("   " + detail.replace("\n", "\n   "))
print(f"mpi: {len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
