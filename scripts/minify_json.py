#!/usr/bin/env python3
"""Rewrite JSON files under the given folders (or the given files) without indentation.

Report folders keep every run's JSON (benchmarks, verify, reports), and the device tool sends
the whole tracked tree to the GPU host, at most 64 MiB: Google Benchmark's indented output is
about 30 % whitespace. Only files of at least --min-bytes are rewritten; each is parsed, written
compactly and parsed back, and must give the same values (key order kept). Read one with
`python3 -m json.tool FILE`. Exit 2 on a file that is not JSON (nothing rewritten then).
"""
import argparse
import json
import math
import os
import sys


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help="folders (searched for *.json) or JSON files")
    ap.add_argument("--min-bytes", type=int, default=50000, help="leave smaller files as they are (default 50000)")
    a = ap.parse_args()
    files = []
    for p in a.paths:
        if os.path.isdir(p):
            files += [os.path.join(d, f) for d, _, fs in os.walk(p) for f in sorted(fs) if f.endswith(".json")]
        elif os.path.isfile(p):
            files.append(p)
        else:
            print(f"minify_json: no file or folder {p}", file=sys.stderr)
            return 2
    todo = []
    for f in files:
        if os.path.getsize(f) < a.min_bytes:
            continue
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        try:
            data = json.loads(text)
        except ValueError as e:
            print(f"minify_json: {f}: not JSON ({e})", file=sys.stderr)
            return 2
        out = json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"
        if len(out) < len(text):
            if not same(data, json.loads(out)):
                print(f"minify_json: {f}: the compact form reads differently", file=sys.stderr)
                return 2
            todo.append((f, out, len(text.encode())))
    saved = 0
    for f, out, before in todo:
        tmp = f + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(out)
        os.replace(tmp, f)
        saved += before - len(out.encode())
    print(f"minify_json: {len(todo)} file(s) rewritten, {saved} bytes saved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
