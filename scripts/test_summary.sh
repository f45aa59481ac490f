#!/usr/bin/env bash
# Sums the results of the last `meson test` in each build folder given (from
# meson-logs/testlog.json), names each skipped test with its reason (the first
# line it printed), and ends with "N passed, N failed, N skipped".
#   scripts/test_summary.sh BUILD [BUILD...]
set -euo pipefail
exec python3 - "$@" <<'PY'
import json, os, sys
passed = failed = skipped = 0
for build in sys.argv[1:]:
    log = os.path.join(build, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        print(f"test_summary: no {log} (meson test did not run there)")
        failed += 1
        continue
    with open(log) as f:
        for line in f:
            if not line.strip():
                continue
            t = json.loads(line)
            r = t.get("result", "")
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
                why = next((l for l in (t.get("stdout") or "").splitlines() if l.strip()), "no reason printed")
                print(f"  skipped in {build}: {t.get('name', '?')}: {why.strip()}")
            else:
                failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
