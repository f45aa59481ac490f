#!/usr/bin/env python3
"""scripts/ab_bench.sh prepare / unpack (run by `meson test`, from the source root; no GPU).

In a throw-away clone of this checkout: one commit and one uncommitted change past REV, then
`prepare REV` must write the patch and `unpack` must rebuild REV's files in build-ab-src (the
committed and the uncommitted change both undone, reports/ left out); an unknown revision, or
unpack without a patch, is one line on stderr with exit 2. A binary file changed since REV is
left out of the patch and named (the old tree keeps this tree's copy); AB_NAME=x keeps the A/B
in build-ab-patch-x / build-ab-src-x; a bad AB_NAME is exit 2. `env` with a bad setting, ROUNDS or
a missing bench binary is exit 2 with one line (its runs need a GPU host's .debs: not run here).
"""
import os
import subprocess
import sys
import tempfile

from checks import check, finish

SRC = os.getcwd()
if not os.path.isdir(os.path.join(SRC, ".git")):
    print("SKIP: not a git checkout")
    sys.exit(77)


def sh(args, cwd, **kw):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, **kw)


def git(args, cwd):
    return sh(["git", "-c", "user.email=t@example.com", "-c", "user.name=t"] + args, cwd)


with tempfile.TemporaryDirectory() as tmp:
    repo = os.path.join(tmp, "clone")
    r = git(["clone", "-q", "--shared", SRC, repo], tmp)
    check("clone", r.returncode == 0, r.stderr)
    # This checkout's script (it may be uncommitted here), committed in the clone with REV.
    with open(os.path.join(SRC, "scripts/ab_bench.sh")) as f:
        script = f.read()
    with open(os.path.join(repo, "scripts/ab_bench.sh"), "w") as f:
        f.write(script)
    git(["commit", "-qam", "rev"], repo)
    rev = git(["rev-parse", "--short", "HEAD"], repo).stdout.strip()
    old_readme = git(["show", "HEAD:README.md"], repo).stdout
    old_meson = git(["show", "HEAD:meson.build"], repo).stdout
    with open(os.path.join(repo, "README.md"), "a") as f:
        f.write("committed after REV\n")
    git(["commit", "-qam", "new"], repo)
    with open(os.path.join(repo, "meson.build"), "a") as f:
        f.write("# not committed\n")

    r = sh(["bash", "scripts/ab_bench.sh", "prepare", rev], repo)
    check("prepare REV: exit 0", r.returncode == 0, r.stderr)
    patch = os.path.join(repo, "build-ab-patch/old.patch")
    check("prepare writes the patch and the revision",
          os.path.isfile(patch) and open(os.path.join(repo, "build-ab-patch/revision")).read().strip() == rev)
    with open(os.path.join(repo, "reports/README-ab-test.md"), "w") as f:  # a new file under reports/: left out
        f.write("x\n")
    git(["add", "reports/README-ab-test.md"], repo)
    r = sh(["bash", "scripts/ab_bench.sh", "prepare", rev], repo)
    check("the patch leaves reports/ out", r.returncode == 0 and "diff --git a/reports/" not in open(patch).read(), r.stderr)
    r = sh(["bash", "scripts/ab_bench.sh", "unpack"], repo)
    check("unpack: exit 0", r.returncode == 0, r.stderr)
    src = os.path.join(repo, "build-ab-src")
    check("unpack: REV's committed file", open(os.path.join(src, "README.md")).read() == old_readme)
    check("unpack: the uncommitted change undone too", open(os.path.join(src, "meson.build")).read() == old_meson)
    check("unpack: the revision recorded", open(os.path.join(src, ".ab-revision")).read().strip() == rev)
    check("unpack: no reports/, .git or build dirs", not any(
        os.path.exists(os.path.join(src, d)) for d in ("reports", ".git", "build-ab-patch", "build-ab-src")))

    # A binary file changed after REV, under AB_NAME=bin.
    with open(os.path.join(repo, "data-ab-test.bin"), "wb") as f:
        f.write(bytes(range(256)))
    git(["add", "data-ab-test.bin"], repo)
    git(["commit", "-qm", "binary"], repo)
    env = dict(os.environ, AB_NAME="bin")
    r = sh(["bash", "scripts/ab_bench.sh", "prepare", rev], repo, env=env)
    named_patch = os.path.join(repo, "build-ab-patch-bin/old.patch")
    check("prepare with a binary file: exit 0, the file named", r.returncode == 0 and "data-ab-test.bin" in r.stdout,
          r.stdout + r.stderr)
    check("AB_NAME: its own patch, without the binary file",
          os.path.isfile(named_patch) and "data-ab-test.bin" not in open(named_patch).read())
    r = sh(["bash", "scripts/ab_bench.sh", "unpack"], repo, env=env)
    named_src = os.path.join(repo, "build-ab-src-bin")
    check("AB_NAME unpack: REV's files in its own tree, this tree's binary file kept",
          r.returncode == 0 and open(os.path.join(named_src, "README.md")).read() == old_readme and
          os.path.isfile(os.path.join(named_src, "data-ab-test.bin")), r.stderr)
    r = sh(["bash", "scripts/ab_bench.sh", "prepare", rev], repo, env=dict(os.environ, AB_NAME="a b"))
    check("a bad AB_NAME: exit 2, one line", r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr)

    r = sh(["bash", "scripts/ab_bench.sh", "prepare", "no-such-revision"], repo)
    check("prepare of an unknown revision: exit 2, one line", r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1,
          r.stderr)
    sh(["rm", "-rf", "build-ab-patch"], repo)
    r = sh(["bash", "scripts/ab_bench.sh", "unpack"], repo)
    check("unpack without a patch: exit 2, one line", r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1,
          r.stderr)

    # env OLD NEW BENCH FILTER [ROUNDS]: bad settings, rounds or a missing binary are exit 2, one line.
    for args, what in ((["X=1", "bad", "fake", "f"], "a setting without '='"),
                       (["1X=1", "X=", "fake", "f"], "a bad variable name"),
                       (["X=1", "X=", "fake", "f", "0"], "ROUNDS 0"),
                       (["X=1", "X=", "no-such-bench", "f"], "a missing bench binary"),
                       (["X=1", "X="], "too few arguments")):
        r = sh(["bash", "scripts/ab_bench.sh", "env"] + args, repo, env=dict(os.environ, MOE_BUILD=os.path.join(tmp, "b")))
        check(f"env with {what}: exit 2, one line", r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1,
              r.stderr)

finish("ab_bench")
