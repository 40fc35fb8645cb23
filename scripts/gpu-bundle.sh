#!/usr/bin/env bash
# Builds what a GPU check needs, on a machine without a GPU, into gpu/ (git-ignored):
# the `timbrel` binary and the tensor decoder's test binary, both with candle's `cuda`
# feature, stripped and gzipped (a stripped CUDA timbrel is ~85 MB; gzipped ~30 MB), and
# run-on-gpu.sh, which unpacks them there, puts the CUDA 13 libraries of the machine's
# PyTorch on the loader path, runs the equivalence tests on the GPU and the decoding and
# training benchmarks, and writes everything to $OUT (or ./gpu-out).
#
#   scripts/gpu-bundle.sh          # then, on the GPU machine: bash gpu/run-on-gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cuda-toolchain.sh
source scripts/cuda-toolchain.sh
export CARGO_TARGET_DIR=target-cuda
cargo build --release --locked --features cuda -p app
test_bin=$(cargo test --release --locked --features cuda -p autoencoder --test tensor_decoder \
    --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*tensor_decoder[^"]*\)".*/\1/p' | tail -1)
[ -x "$test_bin" ] || { echo "the tensor decoder's test binary was not built" >&2; exit 1; }
mkdir -p gpu
strip -o gpu/timbrel target-cuda/release/timbrel
strip -o gpu/tensor_decoder "$test_bin"
gzip -f -6 gpu/timbrel gpu/tensor_decoder
cat > gpu/run-on-gpu.sh <<'EOF'
#!/usr/bin/env bash
# Runs on the GPU machine (see scripts/gpu-bundle.sh).
set -uo pipefail
cd "$(dirname "$0")"
out=${OUT:-gpu-out}
mkdir -p "$out" bin
for f in timbrel tensor_decoder; do gunzip -c "$f.gz" > "bin/$f" && chmod +x "bin/$f"; done
lib=$(python3 -c "import nvidia, os; print(os.path.join(os.path.dirname(nvidia.__path__[0]), 'nvidia', 'cu13', 'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH=${lib:+$lib:}${LD_LIBRARY_PATH:-}
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
bin/tensor_decoder --nocapture > "$out/tensor_decoder.txt" 2>&1
echo "tests exit $?" >> "$out/tensor_decoder.txt"
for preset_batch in "small 1" "small 16" "small-pitched 16" "small 256" "small-pitched 1024" "small 1024" "small 4096" "nsynth 16" "nsynth 256"; do
    set -- $preset_batch
    echo "== $1 batch $2" >> "$out/bench.txt"
    timeout 300 bin/timbrel bench decode --device cuda --preset "$1" --batch "$2" --samples 2048 >> "$out/bench.txt" 2>&1
done
for batch in 8 32; do
    echo "== bench train small batch $batch" >> "$out/bench.txt"
    timeout 300 bin/timbrel bench train --device cuda --preset small-pitched --batch "$batch" >> "$out/bench.txt" 2>&1
done
cat "$out"/*.txt
EOF
chmod +x gpu/run-on-gpu.sh
ls -la gpu
