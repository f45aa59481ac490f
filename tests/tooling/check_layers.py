#!/usr/bin/env python3
"""Checks that no #include runs from a lower floor to a higher one.

Floors, lowest first:
  core/       dtype, fp8, RNG, errors, checker, GPU runtime, warp helpers, file writing,
              and each family's data contract (core/include/moe/contract/)
  kernels/    device code and launchers: core only
  reference/  CPU references: core only
  harness/    families, I/O, CLI: anything below
Usage: check_layers.py [REPO_ROOT]; prints one line per violation, exit 1 if any.
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
ALLOWED = {
    "core": {"core"},
    "kernels": {"core", "kernels"},
    "reference": {"core", "reference"},
    "harness": {"core", "kernels", "reference", "harness"},
}
SEARCH = ["core/include", "harness/include", "harness", "."]
SUFFIXES = {".hpp", ".h", ".cpp", ".cuh", ".hip", ".cu", ".in"}
include_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def floor_of(path: pathlib.Path):
    rel = path.relative_to(root).parts
    return rel[0] if rel and rel[0] in ALLOWED else None


def resolve(src: pathlib.Path, name: str):
    for base in [src.parent] + [root / d for d in SEARCH]:
        cand = (base / name).resolve()
        if cand.is_file():
            return cand
    return None


violations = []
for floor in ALLOWED:
    for src in sorted((root / floor).rglob("*")):
        if not src.is_file() or src.suffix not in SUFFIXES:
            continue
        for lineno, line in enumerate(src.read_text(errors="replace").splitlines(), 1):
            m = include_re.match(line)
            if not m:
                continue
            target = resolve(src, m.group(1))
            where = f"{src.relative_to(root)}:{lineno}"
            if target is None:
                # Generated headers (git_revision.h) live in the build folder: harness only.
                if floor != "harness":
                    violations.append(f"{where}: includes \"{m.group(1)}\", which is not in the source tree")
                continue
            try:
                to = floor_of(target)
            except ValueError:
                to = None
            if to not in ALLOWED[floor]:
                violations.append(f"{where}: {floor}/ includes {target.relative_to(root) if to else target} "
                                  f"({to or 'outside the floors'}); {floor}/ may include only "
                                  f"{', '.join(sorted(ALLOWED[floor]))}")

for v in violations:
    print(v)
print(f"check_layers: {len(violations)} include(s) running up a floor")
sys.exit(1 if violations else 0)
