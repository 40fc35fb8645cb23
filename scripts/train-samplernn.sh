#!/usr/bin/env bash
# Trains (or continues training) a SampleRNN on the default model's data, for the
# comparison with the WaveNet default at equal CPU time (issue: SampleRNN).
#
#   scripts/train-samplernn.sh [--steps N]
#
# The `samplernn` preset (tiers of 16 and 4 samples, GRUs of 256, the small encoder, the
# 16-harmonic excitation), 8 crops of 6144 samples a step, truncated BPTT over 512, the
# same data, held-out split and free-running checks as the default model. The model goes
# to data/samplernn (not shipped); runs at nice 19 and appends its output to
# data/train-samplernn.out; Ctrl-C (kill -INT) writes a checkpoint, and the next run
# resumes it exactly. Compare with `timbrel eval --model data/samplernn --data data/fluidr3
# --notes 16 --held-out` against the WaveNet default's figures at the same train_secs.
set -euo pipefail
cd "$(dirname "$0")/.."
model=data/samplernn
timbrel=${TIMBREL:-target/release/timbrel}
log=data/train-samplernn.out
[ -x "$timbrel" ] || cargo build --release --locked -p app
if [ ! -f data/fluidr3/examples.json ] || [ ! -f data/fluidr3-drums/examples.json ]; then
    echo "render the data first: scripts/train-default-model.sh does (then stop it)" >&2
    exit 1
fi
if [ -f "$model/train/state.json" ]; then
    exec nice -n 19 "$timbrel" train --out "$model" --resume --quiet "$@" >>"$log" 2>&1
fi
exec nice -n 19 "$timbrel" train --data data/fluidr3 --data data/fluidr3-drums \
    --out "$model" --preset samplernn --steps 20000 --batch 8 --crop 6144 --lr 1e-3 \
    --warmup 100 --unpitched-share 0.05 --checkpoint-every 50 --validate-every 50 \
    --free-run-every 200 --free-run-notes 16 --quiet "$@" >>"$log" 2>&1
