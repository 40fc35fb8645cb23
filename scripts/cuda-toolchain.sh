#!/usr/bin/env bash
# Sets up a CUDA 13.0 build toolchain from PyPI wheels (nvcc, headers, cuBLAS,
# cuRAND, cudart, NVRTC) plus a link-only libcuda stub, so that a crate using
# candle's `cuda` feature compiles and links on a machine with no GPU and no
# system CUDA. The binary it builds runs on a machine with an NVIDIA driver
# that supports CUDA 13.0 (driver 580+) and a GPU of the compute capability it
# was built for, with the CUDA 13 runtime libraries on LD_LIBRARY_PATH.
#
# usage:  source scripts/cuda-toolchain.sh   (from anywhere; it sets variables in your shell)
# then:   cargo build --release --features cuda ...
# The compute capability: $CUDA_COMPUTE_CAP if you set it, else what
# `nvidia-smi --query-gpu=compute_cap` says where there is a GPU, else 90
# (H100/H200; an RTX 30xx is 86, an RTX 40xx 89).
# The toolchain lives in $CUDA_TOOLCHAIN_DIR (default ~/.cache/cuda13-toolchain),
# outside the repository. Idempotent: a second run only sets the variables.
# Needs: python3 with venv and pip, gcc, cargo, and the network (pip and `cargo fetch`,
# which this script runs for the cudarc source the stub is made from).
#
# Safe to source: the work runs in a bash process of its own (its `set -e` stays there),
# and a failure returns non-zero without closing your shell.

# The build, in a bash process of its own: `set -e` works there even though its caller
# tests its status (in the caller's shell, an `if` would switch `set -e` off).
_timbrel_cuda_build() {
  bash -s -- "$1" "$2" <<'BUILD'
set -euo pipefail
root=$1
repo=$2
  [ -f "$root/.ready" ] && exit 0
  mkdir -p "$root"
  python3 -m venv "$root/venv"
  "$root/venv/bin/pip" install -q nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14 \
    nvidia-curand==10.4.0.35 nvidia-cuda-nvrtc==13.0.88
  cu13=$(echo "$root"/venv/lib/python3*/site-packages/nvidia/cu13)
  mkdir -p "$root/cuda/lib64/stubs"
  ln -sfn "$cu13/bin" "$root/cuda/bin"; ln -sfn "$cu13/include" "$root/cuda/include"; ln -sfn "$cu13/nvvm" "$root/cuda/nvvm"
  for f in "$cu13"/lib/*.so.* "$cu13"/lib/*.a; do ln -sfn "$f" "$root/cuda/lib64/"; done
  for l in cublas cublasLt cudart curand nvrtc; do ln -sfn "$(ls "$cu13"/lib/lib$l.so.* | head -1)" "$root/cuda/lib64/lib$l.so"; done
  # libcuda.so comes with the driver, not the toolkit: link against an empty
  # stub with the same soname; the real driver library is loaded at run time.
  # The stub's symbols come from cudarc's source, which `cargo fetch` brings.
  (cd "$repo" && cargo fetch --locked)
  registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
  src=$(ls -d "$registry"/*/cudarc-0.19.*/src/driver/sys/mod.rs 2>/dev/null | sort -V | tail -1)
  if [ -z "$src" ]; then
    echo "cudarc 0.19 source not found under $registry after cargo fetch" >&2
    exit 1
  fi
  grep -ohE 'pub unsafe fn cu[A-Za-z0-9_]+\(' "$src" | sed 's/pub unsafe fn //;s/(//' | sort -u \
    | awk '{print "void "$1"(void){}"}' > "$root/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/cuda/lib64/stubs/libcuda.so" "$root/libcuda_stub.c"
  touch "$root/.ready"
BUILD
}

# The compute capability of GPU 0 as nvcc wants it ("8.6" -> 86), if nvidia-smi can say.
_timbrel_cuda_cap() {
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .\r'
}

_timbrel_cuda_root=${CUDA_TOOLCHAIN_DIR:-$HOME/.cache/cuda13-toolchain}
_timbrel_cuda_repo=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
if _timbrel_cuda_build "$_timbrel_cuda_root" "$_timbrel_cuda_repo"; then
  _timbrel_cuda_detected=$(_timbrel_cuda_cap)
  if [ -z "${CUDA_COMPUTE_CAP:-}" ]; then
    if [ -n "$_timbrel_cuda_detected" ]; then
      CUDA_COMPUTE_CAP=$_timbrel_cuda_detected
    else
      CUDA_COMPUTE_CAP=90
      echo "no GPU seen (nvidia-smi): building for compute capability 9.0 (H100/H200); set CUDA_COMPUTE_CAP for another" >&2
    fi
  fi
  export CUDA_HOME=$_timbrel_cuda_root/cuda CUDA_PATH=$_timbrel_cuda_root/cuda \
    PATH=$_timbrel_cuda_root/cuda/bin:$PATH CUDARC_CUDA_VERSION=13000 CUDA_COMPUTE_CAP
  echo "CUDA 13.0 toolchain ready at $CUDA_HOME (compute capability $CUDA_COMPUTE_CAP)"
  unset _timbrel_cuda_root _timbrel_cuda_repo _timbrel_cuda_detected
else
  echo "the CUDA toolchain could not be set up (see above)" >&2
  unset _timbrel_cuda_root _timbrel_cuda_repo
  # `return` when sourced (the shell stays), `exit` when run.
  return 1 2>/dev/null || exit 1
fi
