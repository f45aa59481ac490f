#!/bin/sh
# -Dgpu=auto and -Dnvcc_arch=auto as meson.build decides them, against a stand-in
# nvidia-smi first on PATH (the real one needs a GPU):
#   a Hopper (compute capability 9.0)  -> backend cuda, arch sm_90a (the wgmma tiles)
#   an Ampere (8.0)                    -> cuda, sm_80
#   nvidia-smi -L failing (no driver)  -> backend none
# Each case is one `meson setup` of the source tree into a temporary folder.
# usage: gpu_auto_check.sh SOURCE_ROOT     (SKIP, exit 77, without nvcc)
set -eu
src=$1
nvcc=$(command -v nvcc || true)
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
if [ -z "$nvcc" ]; then
  echo "SKIP: nvcc not found (PATH or /usr/local/cuda/bin): the CUDA auto-detection cannot be configured"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "gpu_auto_check: $*" >&2; exit 1; }

# case: compute capability (empty: `nvidia-smi -L` fails), expected backend, expected arch line
check() {
  cc=$1 want_gpu=$2 want_arch=$3
  bin=$tmp/bin-$cc
  mkdir -p "$bin"
  cat >"$bin/nvidia-smi" <<EOF
#!/bin/sh
[ -z "$cc" ] && { echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver" >&2; exit 9; }
case "\$*" in
  *compute_cap*) echo "$cc" ;;
  *-L*) echo "GPU 0: NVIDIA Stand-in (UUID: GPU-00000000-0000-0000-0000-000000000000)" ;;
  *) echo "stand-in nvidia-smi: \$*" ;;
esac
EOF
  chmod +x "$bin/nvidia-smi"
  log=$tmp/setup-$cc.log
  PATH="$bin:$(dirname "$nvcc"):$PATH" meson setup "$tmp/build-$cc" "$src" -Dgpu=auto -Dnvcc_arch=auto \
    -Dpython=disabled -Dmpi=disabled >"$log" 2>&1 || { cat "$log" >&2; fail "meson setup failed (compute capability '$cc')"; }
  grep -q "GPU backend: $want_gpu" "$log" || { grep -i "backend\|arch" "$log" >&2; fail "compute capability '$cc': expected backend $want_gpu"; }
  if [ -n "$want_arch" ]; then
    grep -q "nvcc arch (auto): $want_arch\$" "$log" || { grep -i "arch" "$log" >&2; fail "compute capability '$cc': expected arch $want_arch"; }
  fi
  echo "ok: compute capability '${cc:-none}' -> backend $want_gpu${want_arch:+, $want_arch}"
}

check 9.0 cuda sm_90a
check 8.0 cuda sm_80
check "" none ""
