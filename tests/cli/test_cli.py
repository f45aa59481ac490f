#!/usr/bin/env python3
"""Command-line tests of the built moe-harness binary (run by `meson test`).

usage: test_cli.py path/to/moe-harness

Checks exit codes (0 ok, 2 bad input), that errors are one line on stderr, and
that JSON outputs are valid and written atomically.
"""
import json
import os
import subprocess
import sys
import tempfile

EXE = os.path.abspath(sys.argv[1])
results = []  # (name, ok, detail)


def run(args, cwd=None, timeout=600):
    p = subprocess.run([EXE] + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def err_lines(stderr):
    return [l for l in stderr.splitlines() if l.strip()]


def expect_usage_error(name, args, must_mention):
    rc, out, err = run(args)
    lines = err_lines(err)
    detail = f"rc={rc} stdout={out!r} stderr={err!r}"
    check(f"{name}: exit 2", rc == 2, detail)
    check(f"{name}: exactly one line on stderr", len(lines) == 1, detail)
    check(f"{name}: nothing on stdout", out == "", detail)
    check(f"{name}: message names {must_mention!r}", lines and must_mention in lines[-1], detail)
    return lines


# --help / --version
rc, out, err = run(["--help"])
check("--help: exit 0", rc == 0, err)
check("--help: usage and every command listed",
      "Usage" in out and all(c in out for c in ("devices", "list", "verify")), out)
rc, out, err = run(["--version"])
check("--version: exit 0 and prints the version", rc == 0 and out.startswith("moe-harness "), out + err)
rc, out, err = run(["verify", "--help"])
check("verify --help: exit 0 and lists --json", rc == 0 and "--json" in out, out + err)

# Usage errors: one line, exit 2.
lines = expect_usage_error("unknown option", ["--bogus"], "--bogus")
check("unknown option: not reported as a missing subcommand",
      lines and "subcommand is required" not in lines[0].lower(), str(lines))
expect_usage_error("unknown option after a command", ["list", "--bogus"], "--bogus")
expect_usage_error("malformed value", ["--device", "x", "list"], "--device")
expect_usage_error("out-of-range value", ["--device", "-1", "list"], "--device")
expect_usage_error("missing value", ["list", "--device"], "--device")
expect_usage_error("malformed seed", ["verify", "--seed", "abc"], "--seed")
expect_usage_error("unknown command", ["nosuch"], "nosuch")
expect_usage_error("no command", [], "command")

# verify --kernel nosuch: exit 2, and the last line names the kernel (a
# "no GPU on this machine" notice may come first).
rc, out, err = run(["verify", "--kernel", "nosuch", "--json", ""])
lines = err_lines(err)
check("verify --kernel nosuch: exit 2", rc == 2, f"rc={rc} {err!r}")
check("verify --kernel nosuch: names the kernel", lines and "nosuch" in lines[-1], err)

# list
rc, out, err = run(["list"])
check("list: exit 0", rc == 0, err)
check("list: kernels, dtypes, distributions", all(s in out for s in ("kernels:", "dtypes:", "bf16", "routing")), out)

with tempfile.TemporaryDirectory() as tmp:
    # devices --no-measure: works with or without a GPU and says which.
    dj = os.path.join(tmp, "devices.json")
    rc, out, err = run(["devices", "--no-measure", "--json", dj])
    check("devices --no-measure: exit 0", rc == 0, out + err)
    check("devices --no-measure: names the backend", "backend:" in out, out)
    plain = ("no GPU" in out) or ("GPU 0:" in out)
    check("devices --no-measure: says plainly whether there is a GPU", plain, out)
    try:
        doc = json.load(open(dj))
        check("devices --json: valid JSON with backend and devices",
              "backend" in doc and isinstance(doc.get("devices"), list), str(doc))
        check("devices --json: device list matches the text",
              (len(doc["devices"]) == 0) == ("no GPU" in out), out)
    except Exception as e:  # noqa: BLE001
        check("devices --json: valid JSON", False, repr(e))

    # verify --json: valid JSON, written atomically into a new folder.
    vj = os.path.join(tmp, "sub", "dir", "out.json")
    rc, out, err = run(["verify", "--quick", "--json", vj], cwd=tmp)
    # Exit 0 when every case passed or skipped, 1 when one failed (whether the
    # kernels pass is for their own tests; here the exit code must agree with
    # the JSON summary below).
    check("verify --quick: exit 0 or 1", rc in (0, 1), f"rc={rc}\n{out}\n{err[-4000:]}")
    check("verify: summary line on stdout", "passed" in out and "failed" in out, out)
    try:
        with open(vj) as f:
            text = f.read()
        doc = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        s = doc.get("summary", {})
        check("verify --json: valid strict JSON with a summary",
              all(k in s for k in ("passed", "failed", "skipped")) and isinstance(doc.get("cases"), list), text[:500])
        check("verify --json: summary counts match the cases",
              s.get("passed", -1) + s.get("failed", -1) + s.get("skipped", -1) == len(doc.get("cases", [])), str(s))
        check("verify: exit code agrees with the summary", rc == (1 if s.get("failed", 0) > 0 else 0),
              f"rc={rc} summary={s}")
        if rc == 1:
            print("note: verify reported failing cases:\n" +
                  "\n".join(l for l in err.splitlines() if " FAIL " in l))
        check("verify --json: backend recorded", doc.get("backend") in ("none", "cuda", "hip"), str(doc.get("backend")))
    except Exception as e:  # noqa: BLE001
        check("verify --json: valid JSON", False, repr(e))
    left = [f for f in os.listdir(os.path.dirname(vj)) if f != "out.json"]
    check("verify --json: no temporary file left behind", left == [], str(left))
    # Running again replaces the file (rename over an existing file).
    rc2, _, err2 = run(["verify", "--quick", "--json", vj], cwd=tmp)
    check("verify --json: second run replaces the file", rc2 == rc and os.listdir(os.path.dirname(vj)) == ["out.json"],
          err2[-2000:])

failed = [r for r in results if not r[1]]
for i, (name, ok, detail) in enumerate(results, 1):
    print(f"{'ok' if ok else 'not ok'} {i} - {name}")
    if not ok:
        print("   " + detail.replace("\n", "\n   "))
print(f"cli: {len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
