#!/usr/bin/env python3
"""The tracked tree stays small enough to travel to the GPU host (run by `meson test`, from the
source root): the device tool sends the tracked files plus the carried .debs (~2.2 MiB) and
build-ab-patch, at most 64 MiB in all. Tracked files must stay under 60 MiB, and report JSON of
50 kB or more must be stored compact (`scripts/minify_json.py reports`); superseded folders can keep
theirs gzip-compressed (`scripts/archive_reports.py`, reports/README.md)."""
import os
import subprocess
import sys

from checks import check, finish

LIMIT = 60 * 2**20
if not os.path.isdir(".git"):
    print("SKIP: not a git checkout")
    sys.exit(77)
files = subprocess.run(["git", "ls-files", "-z"], capture_output=True, text=True, check=True).stdout.split("\0")
sizes = {f: os.path.getsize(f) for f in files if f and os.path.isfile(f)}
total = sum(sizes.values())
check(f"tracked files {total / 2**20:.1f} MiB <= {LIMIT / 2**20:.0f} MiB", total <= LIMIT,
      "largest: " + ", ".join(f"{f} {s}" for f, s in sorted(sizes.items(), key=lambda x: -x[1])[:5]))
indented = []
for f, s in sizes.items():
    if f.startswith("reports/") and f.endswith(".json") and s >= 50000:
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        if "\n" in text.rstrip("\n"):  # line breaks inside: indented
            indented.append(f)
check("report JSON of 50 kB and more stored compact", not indented,
      f"{len(indented)} file(s), e.g. {indented[:3]}: run scripts/minify_json.py reports")
finish("tree_size")
