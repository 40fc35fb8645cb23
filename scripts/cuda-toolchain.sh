#!/usr/bin/env bash
# Sets up a CUDA 13.0 build toolchain from PyPI wheels (nvcc, headers, cuBLAS,
# cuRAND, cudart, NVRTC) plus a link-only libcuda stub, so that a crate using
# candle's `cuda` feature compiles and links on a machine with no GPU and no
# system CUDA. The binary it builds runs on a machine with an NVIDIA driver
# that supports CUDA 13.0 (driver 580+) and a compute capability 9.0 GPU
# (H100/H200), with the CUDA 13 runtime libraries on LD_LIBRARY_PATH.
#
# usage:  source scripts/cuda-toolchain.sh   (from the project root)
# then:   cargo build --release --features cuda ...
# The toolchain lives in $CUDA_TOOLCHAIN_DIR (default ~/.cache/cuda13-toolchain),
# outside the repository. Idempotent: a second run only sets the variables.
# Needs: python3 with venv and pip, gcc, cargo (for the cudarc source).
set -e
root=${CUDA_TOOLCHAIN_DIR:-$HOME/.cache/cuda13-toolchain}
if [ ! -f "$root/.ready" ]; then
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
  src=$(ls -d "$HOME"/.cargo/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs 2>/dev/null | sort -V | tail -1)
  if [ -z "$src" ]; then
    echo "cudarc source not found: run 'cargo fetch' in a crate that depends on candle-core with the cuda feature, then source this again" >&2
    return 1 2>/dev/null || exit 1
  fi
  grep -ohE 'pub unsafe fn cu[A-Za-z0-9_]+\(' "$src" | sed 's/pub unsafe fn //;s/(//' | sort -u \
    | awk '{print "void "$1"(void){}"}' > "$root/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/cuda/lib64/stubs/libcuda.so" "$root/libcuda_stub.c"
  touch "$root/.ready"
fi
export CUDA_HOME=$root/cuda CUDA_PATH=$root/cuda PATH=$root/cuda/bin:$PATH CUDARC_CUDA_VERSION=13000 CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
echo "CUDA 13.0 toolchain ready at $CUDA_HOME (compute capability $CUDA_COMPUTE_CAP)"
