#!/usr/bin/env bash
# Sums the results of the last `meson test` in each build folder given and
# prints "N passed, N failed, N skipped" (from meson-logs/testlog.json).
#   scripts/test_summary.sh BUILD [BUILD...]
set -euo pipefail
pass=0 fail=0 skip=0
for b in "$@"; do
  log="$b/meson-logs/testlog.json"
  [ -f "$log" ] || { echo "test_summary: no $log" >&2; fail=$((fail + 1)); continue; }
  while read -r result; do
    case "$result" in
      OK|EXPECTEDFAIL) pass=$((pass + 1)) ;;
      SKIP) skip=$((skip + 1)) ;;
      *) fail=$((fail + 1)) ;;
    esac
  done < <(grep -o '"result": *"[A-Z]*"' "$log" | sed 's/.*"\([A-Z]*\)"$/\1/')
done
echo "$pass passed, $fail failed, $skip skipped"
