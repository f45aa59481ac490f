#!/usr/bin/env python3
"""Sharded verify, bench or tune over several GPUs of one host, without MPI
(or with it: --mpi), checked against the single-process run.

  scripts/multi_gpu.py [-n N] [--out DIR] [--timeout S] [--compare-single] [--mpi]
                       [--harness PATH] [--mpirun PATH] [--mpirun-arg ARG ...]
                       verify|bench|tune [moe-harness arguments ...]

Without --mpi it starts N processes `moe-harness COMMAND ARGS --shard i/N`,
process i on GPU i % G of the G GPUs that `nvidia-smi -L` lists
(CUDA_VISIBLE_DEVICES=HIP_VISIBLE_DEVICES=that GPU, so the process and the
benchmark executables it starts see it as device 0; no pinning without GPUs),
each under --timeout with its own log, then merges the shards' JSON with
`moe-harness merge` (verify, bench; --allow-partial when a shard wrote none,
recorded as partial). tune shards write their rows into one table, a copy of
the --tuned-config table (default configs/tuned_fmoe.csv) at DIR/tuned.csv
(the harness locks it around each row's update); copy it back to keep it.

--mpi runs `mpirun -np N [--mpirun-arg ...] moe-harness COMMAND ARGS` instead:
each rank takes shard rank/size on GPU local_rank, writes DIR/merged.rank<r>.json
and rank 0 writes DIR/merged.json.

--compare-single also runs the single-process run (same binary, arguments and
seed; GPU 0) and checks the results case for case: verify the same case names
and verdicts, bench the same benchmark names (times only reported), tune the
same row keys in the tables (and for --dry-run the same listing); it prints the
wall-time ratio sharded / single.

DIR (default multi-gpu-<UTC time>) gets the JSONs, one log per process,
summary.json and README.md (commands, GPU <-> shard map, exit codes, timings).
Exit 0 when every process, the merge and the comparison succeeded; 1 otherwise;
2 for bad arguments.
"""
import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
COMMANDS = ("verify", "bench", "tune")
# Columns of a tuned row that are measured or chosen by timing, not its key.
TUNED_MEASURED = {"impl", "splitK", "pad_m", "pad_n", "block_m", "block_n", "block_k", "warps", "stages",
                  "persistent", "us", "err"}


def usage_error(msg):
    print(f"multi_gpu.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def find_harness(explicit):
    if explicit:
        return os.path.abspath(explicit)
    for cand in (os.path.join(SOURCE_DIR, "build", "harness", "cli", "moe-harness"), shutil.which("moe-harness")):
        if cand and os.access(cand, os.X_OK):
            return cand
    usage_error("no moe-harness found (build/harness/cli/moe-harness or PATH); pass --harness")


def list_gpus():
    """`nvidia-smi -L` lines, [] without nvidia-smi or GPUs."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        p = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in p.stdout.splitlines() if line.startswith("GPU ")] if p.returncode == 0 else []


def option_value(args, name):
    """The value of `name V` or `name=V` in args, else None."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return None


def without_option(args, name):
    out, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a == name:
            skip = True
            continue
        if not a.startswith(name + "="):
            out.append(a)
    return out


def start(cmd, log_path, env):
    log = open(log_path, "w")
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    # Own session: a timeout kills the process and every child it started.
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return {"proc": proc, "log": log, "start": time.monotonic()}


def wait_all(runs, timeout_s):
    """Waits for every run, killing those past timeout_s. Sets rc, timed_out, wall_s."""
    pending = list(runs)
    while pending:
        for r in list(pending):
            rc = r["proc"].poll()
            elapsed = time.monotonic() - r["start"]
            if rc is None and elapsed > timeout_s:
                try:
                    os.killpg(r["proc"].pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                rc = r["proc"].wait()
                r["timed_out"] = True
            if rc is not None:
                r["rc"] = rc
                r["wall_s"] = round(elapsed, 3)
                r.setdefault("timed_out", False)
                r["log"].write(f"\n[multi_gpu.py: exit {rc}{', killed after the timeout' if r['timed_out'] else ''}]\n")
                r["log"].close()
                pending.remove(r)
        if pending:
            time.sleep(0.05)


def run_one(cmd, log_path, env, timeout_s):
    r = start(cmd, log_path, env)
    wait_all([r], timeout_s)
    return r


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def tuned_keys(path):
    """Row keys (every column but the measured ones) of a tuned-config CSV."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return sorted(tuple((k, v) for k, v in row.items() if k not in TUNED_MEASURED) for row in csv.DictReader(f))


def dry_run_blocks(text):
    """A tune --dry-run listing as its point blocks (a point line and its candidates)."""
    blocks, cur = [], None
    for line in text.splitlines():
        if line.startswith("tune --dry-run:") or line.startswith("$ ") or line.startswith("[multi_gpu.py"):
            continue
        if line.startswith("  ["):
            if cur is not None:
                cur.append(line)
        elif " M=" in line:
            cur = [line]
            blocks.append(cur)
    return sorted("\n".join(b) for b in blocks)


def compare(command, args, out, merged, single, shard_logs, single_log):
    """Case-for-case comparison of the sharded and the single run: (ok, detail dict)."""
    if command == "verify":
        a = merged.get("cases", []) if merged else None
        b = single.get("cases", []) if single else None
        if a is None or b is None:
            return False, {"error": "a result file is missing"}
        ka = [(c["kernel"], c["name"], c["status"]) for c in a]
        kb = [(c["kernel"], c["name"], c["status"]) for c in b]
        diff = [f"{x} vs {y}" for x, y in zip(ka, kb) if x != y][:10]
        return ka == kb, {"cases": [len(ka), len(kb)], "first_differences": diff,
                          "summary": [merged.get("summary"), single.get("summary")]}
    if command == "bench":
        if merged is None or single is None:
            return False, {"error": "a result file is missing"}

        def times(doc):
            t = {}
            for b in doc.get("benchmarks", []):
                if b.get("run_type", "iteration") == "iteration" or b.get("aggregate_name") == "median":
                    t.setdefault(b.get("run_name", b["name"]), b.get("real_time"))
            return t
        ta, tb = times(merged), times(single)
        names_a = [b["name"] for b in merged.get("benchmarks", [])]
        names_b = [b["name"] for b in single.get("benchmarks", [])]
        return names_a == names_b, {
            "benchmarks": [len(names_a), len(names_b)],
            "only_sharded": sorted(set(names_a) - set(names_b))[:10],
            "only_single": sorted(set(names_b) - set(names_a))[:10],
            "times": [{"name": n, "sharded": ta.get(n), "single": tb.get(n)} for n in sorted(set(ta) | set(tb))]}
    # tune
    if "--dry-run" in args:
        sharded = []
        for log in shard_logs:
            sharded += dry_run_blocks(open(log).read())
        single_blocks = dry_run_blocks(open(single_log).read())
        return sorted(sharded) == single_blocks, {"points": [len(sharded), len(single_blocks)]}
    ka, kb = tuned_keys(os.path.join(out, "tuned.csv")), tuned_keys(os.path.join(out, "tuned-single.csv"))
    return ka == kb, {"rows": [len(ka), len(kb)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--shards", type=int, help="processes (default: the GPUs nvidia-smi -L lists)")
    ap.add_argument("--out", help="output folder (default multi-gpu-<UTC time>)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per process (default 3600)")
    ap.add_argument("--compare-single", action="store_true", help="also run one process and compare")
    ap.add_argument("--mpi", action="store_true", help="one mpirun -np N instead of N processes")
    ap.add_argument("--harness", help="moe-harness binary (default build/harness/cli/moe-harness, else PATH)")
    ap.add_argument("--mpirun", default="mpirun", help="mpirun to use with --mpi")
    ap.add_argument("--mpirun-arg", action="append", default=[],
                    help="extra mpirun argument (repeatable; e.g. --mpirun-arg=--oversubscribe)")
    ap.add_argument("command", choices=COMMANDS)
    ap.add_argument("args", nargs=argparse.REMAINDER, help="moe-harness arguments of the command")
    o = ap.parse_args()

    harness = find_harness(o.harness)
    gpus = list_gpus()
    n = o.shards if o.shards is not None else len(gpus)
    if n < 1:
        usage_error("no GPU listed by nvidia-smi -L: give the number of processes with -n")
    if o.timeout <= 0:
        usage_error("--timeout must be positive")
    for owned in ("--shard", "--json"):
        if option_value(o.args, owned) is not None or owned in o.args:
            usage_error(f"{owned} is set by multi_gpu.py")
    mpirun = shutil.which(o.mpirun) if o.mpi else None
    if o.mpi and not mpirun:
        usage_error(f"--mpi: {o.mpirun} not found (install openmpi-bin)")
    out = os.path.abspath(o.out or time.strftime("multi-gpu-%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(out, exist_ok=True)

    args = list(o.args)
    single_args = list(o.args)
    if o.command == "tune":
        # Every tune process writes into a copy of the table; the single run into its own copy.
        table = option_value(args, "--tuned-config") or os.path.join(SOURCE_DIR, "configs", "tuned_fmoe.csv")
        for name in ("tuned.csv", "tuned-single.csv"):
            dst = os.path.join(out, name)
            if os.path.exists(table):
                shutil.copyfile(table, dst)
            elif os.path.exists(dst):
                os.remove(dst)
        args = without_option(args, "--tuned-config") + ["--tuned-config", os.path.join(out, "tuned.csv")]
        single_args = without_option(single_args, "--tuned-config") + [
            "--tuned-config", os.path.join(out, "tuned-single.csv")]
    wants_json = o.command in ("verify", "bench")

    base_env = dict(os.environ)
    summary = {"tool": "scripts/multi_gpu.py", "command": o.command, "args": o.args, "shards": n,
               "mode": "mpirun" if o.mpi else "processes", "harness": harness, "gpus": gpus,
               "timeout_s": o.timeout, "out": out}
    try:
        v = subprocess.run([harness, "--version"], capture_output=True, text=True, timeout=60)
        summary["harness_version"] = v.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        summary["harness_version"] = None
    ok = True

    t0 = time.monotonic()
    shard_logs = []
    if o.mpi:
        cmd = [mpirun, "-np", str(n)] + o.mpirun_arg + [harness, o.command] + args
        if wants_json:
            cmd += ["--json", os.path.join(out, "merged.json")]
        log = os.path.join(out, "mpirun.log")
        r = run_one(cmd, log, base_env, o.timeout)
        shard_logs.append(log)
        summary["processes"] = [{"what": f"mpirun -np {n}", "gpu": "local rank", "command": cmd, "log": "mpirun.log",
                                 "exit": r["rc"], "timed_out": r["timed_out"], "wall_s": r["wall_s"]}]
        ok = ok and r["rc"] == 0
    else:
        runs = []
        for i in range(n):
            env = dict(base_env)
            gpu = None
            if gpus:
                gpu = i % len(gpus)
                env["CUDA_VISIBLE_DEVICES"] = env["HIP_VISIBLE_DEVICES"] = str(gpu)
            cmd = [harness, o.command] + args + ["--shard", f"{i}/{n}"]
            if wants_json:
                cmd += ["--json", os.path.join(out, f"shard{i}.json")]
            log = os.path.join(out, f"shard{i}.log")
            shard_logs.append(log)
            r = start(cmd, log, env)
            r.update({"shard": f"{i}/{n}", "gpu": gpu, "command": cmd, "log_name": f"shard{i}.log"})
            runs.append(r)
        wait_all(runs, o.timeout)
        summary["processes"] = [{"what": f"shard {r['shard']}", "gpu": r["gpu"] if r["gpu"] is not None else "none",
                                 "gpu_name": gpus[r["gpu"]] if r["gpu"] is not None else None,
                                 "command": r["command"], "log": r["log_name"], "exit": r["rc"],
                                 "timed_out": r["timed_out"], "wall_s": r["wall_s"]} for r in runs]
        # verify exits 1 for a failed case and still writes its file: the shard ran.
        ok = ok and all(r["rc"] == 0 for r in runs)
    summary["sharded_wall_s"] = round(time.monotonic() - t0, 3)

    merged = None
    if wants_json and not o.mpi:
        files = [os.path.join(out, f"shard{i}.json") for i in range(n)]
        present = [f for f in files if load_json(f) is not None]
        missing = [os.path.basename(f) for f in files if f not in present]
        if present:
            cmd = [harness, "merge"] + present + ["--out", os.path.join(out, "merged.json")]
            if missing:
                cmd.append("--allow-partial")
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            summary["merge"] = {"command": cmd, "exit": p.returncode, "output": (p.stdout + p.stderr).strip(),
                                "missing": missing, "partial": bool(missing)}
            # merge exits 1 when a merged verify case failed: the merge itself worked.
            ok = ok and p.returncode == 0 and not missing
        else:
            summary["merge"] = {"command": None, "exit": None, "missing": missing, "partial": True,
                                "output": "no shard wrote its results file"}
            ok = False
    if wants_json:
        merged = load_json(os.path.join(out, "merged.json"))

    if o.compare_single:
        env = dict(base_env)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = env["HIP_VISIBLE_DEVICES"] = "0"
        cmd = [harness, o.command] + single_args
        if wants_json:
            cmd += ["--json", os.path.join(out, "single.json")]
        r = run_one(cmd, os.path.join(out, "single.log"), env, o.timeout)
        single = load_json(os.path.join(out, "single.json")) if wants_json else None
        same, detail = compare(o.command, o.args, out, merged, single, shard_logs, os.path.join(out, "single.log"))
        ratio = summary["sharded_wall_s"] / r["wall_s"] if r["wall_s"] > 0 else None
        summary["single"] = {"command": cmd, "gpu": 0 if gpus else "none", "log": "single.log", "exit": r["rc"],
                             "timed_out": r["timed_out"], "wall_s": r["wall_s"]}
        summary["comparison"] = dict(detail, same=same, wall_ratio_sharded_over_single=ratio)
        ok = ok and same and not r["timed_out"]

    summary["ok"] = ok
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    write_readme(out, summary)

    for p in summary["processes"]:
        state = "timeout" if p["timed_out"] else f"exit {p['exit']}"
        print(f"multi_gpu: {p['what']} (gpu {p['gpu']}): {state}, {p['wall_s']:.1f} s, log {p['log']}")
    if "merge" in summary:
        m = summary["merge"]
        print(f"multi_gpu: merge: exit {m['exit']}{' (partial: missing ' + ', '.join(m['missing']) + ')' if m['partial'] else ''}")
    if "comparison" in summary:
        c = summary["comparison"]
        ratio = c["wall_ratio_sharded_over_single"]
        print(f"multi_gpu: single run: exit {summary['single']['exit']}, {summary['single']['wall_s']:.1f} s; "
              f"results {'the same' if c['same'] else 'DIFFERENT'}; wall time sharded / single = "
              f"{'n/a' if ratio is None else f'{ratio:.2f}'}")
    print(f"multi_gpu: {'ok' if ok else 'FAILED'}; results in {out} (summary.json, README.md)")
    return 0 if ok else 1


def write_readme(out, s):
    lines = [f"# moe-harness {s['command']} over {s['shards']} shard(s) ({s['mode']})", "",
             f"Harness: `{s['harness']}` ({s.get('harness_version')}). Arguments: `{' '.join(s['args'])}`.",
             f"Verdict: {'ok' if s['ok'] else 'FAILED'}. Per-process timeout {s['timeout_s']} s.", "",
             "## GPUs (nvidia-smi -L)", ""]
    lines += [f"- {g}" for g in s["gpus"]] or ["- none listed (no nvidia-smi or no GPU): processes not pinned"]
    lines += ["", "## Processes", "", "| process | GPU | exit | wall s | log |", "|---|---|---|---|---|"]
    for p in s["processes"]:
        lines.append(f"| {p['what']} | {p['gpu']} | {'timeout' if p['timed_out'] else p['exit']} | {p['wall_s']} | {p['log']} |")
    lines += ["", "Commands:", ""] + [f"    {' '.join(p['command'])}" for p in s["processes"]]
    if "merge" in s:
        m = s["merge"]
        lines += ["", f"Merge: exit {m['exit']}{', partial (missing ' + ', '.join(m['missing']) + ')' if m['partial'] else ''}: "
                  f"{m['output']}"]
    if "comparison" in s:
        c = s["comparison"]
        lines += ["", "## Against the single-process run", "",
                  f"Single run: exit {s['single']['exit']}, {s['single']['wall_s']} s, log single.log.",
                  f"Same results: {c['same']}. Wall time sharded / single: {c['wall_ratio_sharded_over_single']}."]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
