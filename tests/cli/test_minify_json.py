#!/usr/bin/env python3
"""scripts/minify_json.py (run by `meson test`, from the source root): a large indented file is
rewritten compactly with the same values and key order (NaN included), a small one is left as
it is, and a folder holding a file that is not JSON gives exit 2 with nothing rewritten."""
import json
import os
import subprocess
import sys
import tempfile

from checks import check, finish


def run(args):
    return subprocess.run([sys.executable, "scripts/minify_json.py"] + args, capture_output=True, text=True, timeout=60)


with tempfile.TemporaryDirectory() as tmp:
    big = {"context": {"z": 1, "a": [1.5, float("nan"), -0.0, 1e-310]},
           "benchmarks": [{"name": f"BM_{i}", "real_time": i / 7} for i in range(400)]}
    big_path, small_path = os.path.join(tmp, "big.json"), os.path.join(tmp, "small.json")
    with open(big_path, "w") as f:
        json.dump(big, f, indent=2)
    with open(small_path, "w") as f:
        json.dump({"x": 1}, f, indent=2)
    small_text = open(small_path).read()
    size = os.path.getsize(big_path)
    r = run([tmp, "--min-bytes", "1000"])
    check("exit 0", r.returncode == 0, r.stderr)
    back = json.load(open(big_path))
    check("big file smaller", os.path.getsize(big_path) < size)
    check("same values and key order", list(back) == list(big) and list(back["context"]) == ["z", "a"] and
          back["benchmarks"] == big["benchmarks"] and back["context"]["a"][0] == 1.5 and back["context"]["a"][1] != back["context"]["a"][1])
    check("small file untouched", open(small_path).read() == small_text)
    with open(os.path.join(tmp, "zz_bad.json"), "w") as f:
        f.write("{" + " " * 2000 + '"a": 1')
    with open(big_path, "w") as f:
        json.dump(big, f, indent=2)
    r = run([tmp, "--min-bytes", "1000"])
    check("not JSON: exit 2, one line", r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr)
    check("not JSON: nothing rewritten", os.path.getsize(big_path) == size)

finish("minify_json")
