#!/usr/bin/env bash
# Installs the Python module from this checkout with pip into a temporary venv
# (--system-site-packages: Debian's numpy, pytest, meson-python, pybind11; offline,
# no build isolation) and runs tests/python against the installed copy, from a
# folder outside the checkout. Prints the wall time of each step.
#
#   scripts/python_check.sh [pytest options...]
#
# Env: PYTHON (default /usr/bin/python3: the interpreter with numpy and pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
# meson-python 0.12 writes its native file into the source folder: remove it
# unless it was there before.
native=$root/.mesonpy-native-file.ini
keep_native=0
[ -e "$native" ] && keep_native=1
cleanup() {
  rm -rf "$tmp"
  [ "$keep_native" = 1 ] || rm -f "$native"
}
trap cleanup EXIT

t0=$(date +%s)
"$py" -m venv --system-site-packages "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --no-build-isolation --no-index --no-deps --quiet "$root"
t1=$(date +%s)
echo "python_check: pip install: $((t1 - t0)) s"

cd "$tmp"
installed=$("$tmp/venv/bin/python" -c 'import moe_harness; print(moe_harness.__file__)')
case "$installed" in
  "$tmp"/venv/*) echo "python_check: testing $installed" ;;
  *) echo "python_check: imported $installed, not the installed copy" >&2; exit 1 ;;
esac
PYTHONDONTWRITEBYTECODE=1 "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider "$@" "$root/tests/python"
t2=$(date +%s)
echo "python_check: pytest: $((t2 - t1)) s; total $((t2 - t0)) s"
