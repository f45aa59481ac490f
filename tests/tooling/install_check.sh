#!/bin/sh
# `meson install` into a staging folder, then the installed tree moved elsewhere (a
# relocated prefix) and used from an empty folder: the binary must take its model
# table and golden data from <prefix>/share/moe-harness, not from the source tree
# it was built from, and a program built against the installed library with
# pkg-config must compile and run.
# usage: install_check.sh BUILD_DIR
set -eu
build=$1
# An instrumented library (scripts/sanitize.sh) links only with its sanitizer runtime.
sanitize=$(meson introspect "$build" --buildoptions |
           python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "b_sanitize"))')
if [ "$sanitize" != none ]; then
  echo "SKIP: a sanitizer build (b_sanitize=$sanitize): the install check runs in the plain builds"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "install_check: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$tmp/stage" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "meson install failed"; }
prefix=$(meson introspect "$build" --buildoptions |
         python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
libdir=$(meson introspect "$build" --buildoptions |
         python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))')
mv "$tmp/stage$prefix" "$tmp/relocated"
root=$tmp/relocated
for f in bin/moe-harness share/moe-harness/configs/model_configs.json share/moe-harness/configs/tuned_fmoe.csv \
         share/moe-harness/data/moe_align "$libdir/libmoe.a" "$libdir/pkgconfig/moe-harness.pc" \
         include/moe-harness/core/include/moe/check.hpp include/moe-harness/reference/fused_moe/fused_moe_ref.hpp; do
  [ -e "$root/$f" ] || fail "not installed: $f"
done

mkdir "$tmp/work"
cd "$tmp/work"
"$root/bin/moe-harness" list >list.txt || fail "installed moe-harness list failed"
grep -q "^models ($root/share/moe-harness/configs/model_configs.json)" list.txt ||
  fail "list did not read the installed model table: $(grep '^models' list.txt)"

# Keep two golden files in the installed data: exactly two golden cases prove where they came from.
ls "$root/share/moe-harness/data/moe_align"/*.json | tail -n +3 | xargs rm -f
"$root/bin/moe-harness" verify --quick --kernel moe_align --where expect_error=true,false >verify.txt 2>&1 ||
  { cat verify.txt >&2; fail "installed verify --quick failed"; }
grep -q "2 passed, 0 failed" verify.txt || { cat verify.txt >&2; fail "expected the 2 installed golden cases to pass"; }

# A program against the installed library (pkg-config, the prefix redefined to where it now lies).
cat >use.cpp <<'CPP'
#include <cstdio>
#include <vector>
#include "moe/check.hpp"
int main() {
  const std::vector<float> want{1.0f, 2.0f, 3.0f}, got{1.0f, 2.0f, 3.001f};
  moe::Tolerance tol;
  tol.rtol = 1e-3;
  tol.max_rel_l2 = 1e-3;
  const moe::CheckResult r = moe::check_close(got, want, tol);
  std::printf("%s\n", r.passed ? "pass" : r.message.c_str());
  return r.passed ? 0 : 1;
}
CPP
flags=$(PKG_CONFIG_PATH="$root/$libdir/pkgconfig" pkg-config --define-variable=prefix="$root" --cflags --libs moe-harness) ||
  fail "pkg-config moe-harness failed"
c++ -std=c++20 use.cpp -o use $flags -pthread 2>cc.txt || { cat cc.txt >&2; fail "a program against the installed library does not build"; }
res=$(./use) || true
[ "$res" = pass ] || fail "the program against the installed library did not pass its check: $res"
echo "install_check: installed, relocated and used from $root"
