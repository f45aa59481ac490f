#!/usr/bin/env python3
"""Store the large JSON files of older report folders gzip-compressed (name.json -> name.json.gz).

The device tool sends the whole tracked tree to the GPU host, so tracked files must stay under
60 MiB (tests/cli/test_tree_size.py), and each run's report adds its benchmark JSON. Folders
whose figures later runs have superseded keep their evidence as .json.gz (about a tenth of the
size); read one with `zcat F.json.gz`, or give `moe-harness compare` `<(zcat F.json.gz)`.
Files of at least --min-bytes are compressed (level 9, no name or time in the header, so the
bytes do not depend on when), checked to decompress to the same bytes, and then the .json is
removed. Exit 2 for a path that is not a folder (nothing written then).

  scripts/archive_reports.py reports/h100-aab0b50 reports/h200-807f197 ...
"""
import argparse
import gzip
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="report folders (searched recursively for *.json)")
    ap.add_argument("--min-bytes", type=int, default=100000, help="leave smaller files as they are (default 100000)")
    a = ap.parse_args()
    bad = [f for f in a.folders if not os.path.isdir(f)]
    if bad:
        print(f"archive_reports: not a folder: {bad[0]}", file=sys.stderr)
        return 2
    files = [os.path.join(d, f) for p in a.folders for d, _, fs in os.walk(p) for f in sorted(fs)
             if f.endswith(".json") and os.path.getsize(os.path.join(d, f)) >= a.min_bytes]
    before = after = 0
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        packed = gzip.compress(data, compresslevel=9, mtime=0)
        if gzip.decompress(packed) != data:
            print(f"archive_reports: {f}: the compressed file does not give the same bytes back", file=sys.stderr)
            return 1
        with open(f + ".gz", "wb") as fh:
            fh.write(packed)
        os.remove(f)
        before += len(data)
        after += len(packed)
    print(f"archive_reports: {len(files)} file(s) compressed, {before / 2**20:.1f} -> {after / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
