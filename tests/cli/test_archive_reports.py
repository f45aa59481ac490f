#!/usr/bin/env python3
"""scripts/archive_reports.py (run by `meson test`, from the source root): a large JSON file in a
nested folder becomes a .json.gz that decompresses to the same bytes (the .json gone, the header
without a time, so two runs give equal bytes), a small one and other files stay as they are, and
a path that is not a folder gives exit 2, one line, with nothing written."""
import gzip
import json
import os
import subprocess
import sys
import tempfile

from checks import check, finish


def run(args):
    return subprocess.run([sys.executable, "scripts/archive_reports.py"] + args, capture_output=True, text=True,
                          timeout=60)


def make(root):
    os.makedirs(os.path.join(root, "sub"))
    big = json.dumps({"benchmarks": [{"name": f"BM_{i}", "real_time": i / 7} for i in range(400)]}).encode()
    with open(os.path.join(root, "sub", "big.json"), "wb") as f:
        f.write(big)
    with open(os.path.join(root, "small.json"), "w") as f:
        f.write('{"x": 1}')
    with open(os.path.join(root, "notes.txt"), "w") as f:
        f.write("x" * 5000)
    return big


with tempfile.TemporaryDirectory() as tmp:
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    big = make(a)
    make(b)
    r = run([a, "--min-bytes", "1000"])
    check("exit 0, one file counted", r.returncode == 0 and "1 file(s) compressed" in r.stdout, r.stdout + r.stderr)
    gz = os.path.join(a, "sub", "big.json.gz")
    check("the large file became .json.gz with the same bytes inside",
          os.path.isfile(gz) and not os.path.exists(os.path.join(a, "sub", "big.json"))
          and gzip.decompress(open(gz, "rb").read()) == big, os.listdir(os.path.join(a, "sub")))
    check("smaller than before", os.path.getsize(gz) < len(big) / 3, os.path.getsize(gz))
    check("the small JSON and other files untouched",
          open(os.path.join(a, "small.json")).read() == '{"x": 1}' and os.path.getsize(os.path.join(a, "notes.txt")) == 5000)
    r = run([b, "--min-bytes", "1000"])
    check("the same input gives the same bytes (no time in the header)",
          open(gz, "rb").read() == open(os.path.join(b, "sub", "big.json.gz"), "rb").read())
    c = os.path.join(tmp, "c")
    make(c)
    r = run([c, os.path.join(tmp, "missing"), "--min-bytes", "1000"])
    check("a missing folder: exit 2, one line, nothing written",
          r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "missing" in r.stderr
          and os.path.isfile(os.path.join(c, "sub", "big.json")) and not os.path.exists(os.path.join(c, "sub", "big.json.gz")),
          f"rc={r.returncode} err={r.stderr!r}")

finish("archive_reports")
