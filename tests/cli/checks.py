"""The record of a CLI test script: check() notes each named check, finish()
prints them (ok / not ok N - name, the detail of each failure) and exits 1 if
any failed. Imported by the tests/cli/test_*.py scripts (their folder is on
sys.path when run as scripts)."""
import sys

results = []  # (name, ok, detail)


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def finish(suite):
    failed = [r for r in results if not r[1]]
    for i, (name, ok, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok:
            print("   " + str(detail).replace("\n", "\n   "))
    print(f"{suite}: {len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)
