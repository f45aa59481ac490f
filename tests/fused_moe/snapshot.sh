#!/usr/bin/env bash
# Writes .fmoe_snap/: the committed tree (git archive HEAD) plus this family's
# registration lines in the shared meson/families files where HEAD lacks them,
# and the .debs, so a device call builds committed code only -- never another
# engineer's half-written working files. Run from anywhere; .fmoe_snap is
# listed in .git/info/exclude (local) so it never gets committed.
#   bash tests/fused_moe/snapshot.sh && (device) cd .fmoe_snap && bash scripts/gpu_host.sh exec ...
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.fmoe_snap/' .git/info/exclude 2>/dev/null || echo '/.fmoe_snap/' >> .git/info/exclude
rm -rf .fmoe_snap && mkdir .fmoe_snap
git archive HEAD | tar -x -C .fmoe_snap
cp -r .debs .fmoe_snap/
python3 - <<'PY'
import re
root = ".fmoe_snap/"
def ensure(path, needle, after_pat, line):
    s = open(root + path).read()
    if needle in s:
        return
    m = re.search(after_pat, s, re.M)
    assert m, (path, after_pat)
    s = s[:m.end()] + "\n" + line + s[m.end():]
    open(root + path, "w").write(s)
ensure("kernels/meson.build", "subdir('fused_moe')", r"^subdir\('moe_align'\)$", "subdir('fused_moe')")
ensure("reference/meson.build", "subdir('fused_moe')", r"^subdir\('moe_align'\)$", "subdir('fused_moe')")
ensure("tests/meson.build", "subdir('fused_moe')", r"^subdir\('core'\)$", "subdir('fused_moe')")
ensure("bench/meson.build", "'fused_moe'", r"^benches \+= \{'memory'.*$", "benches += {'fused_moe': files('bench_fused_moe.cpp')}")
ensure("harness/meson.build", "family_fused_moe.cpp", r"^  'src/families.cpp',$", "  'src/family_fused_moe.cpp',")
s = open(root + "harness/src/families.cpp").read()
if "KernelFamily make_fused_moe_family();" not in s:
    s = s.replace("std::vector<KernelFamily> families_list() {", "KernelFamily make_fused_moe_family();\n\nstd::vector<KernelFamily> families_list() {", 1)
if "v.push_back(make_fused_moe_family());" not in s:
    s = s.replace("  return v;\n}", "  v.push_back(make_fused_moe_family());\n  return v;\n}", 1)
open(root + "harness/src/families.cpp", "w").write(s)
PY
git rev-parse --short=12 HEAD > .fmoe_snap/.fmoe_rev
echo "snapshot of $(cat .fmoe_snap/.fmoe_rev) in .fmoe_snap ($(du -sh .fmoe_snap | cut -f1))"
