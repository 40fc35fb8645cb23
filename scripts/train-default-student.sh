#!/usr/bin/env bash
# Trains (or continues training) the Parallel WaveNet student in assets/default-model/student.
#
#   scripts/train-default-student.sh [--steps N] [--power-weight W ...]
#
# The student and its own encoder learn from the notes' spectra (the multi-resolution
# spectral loss and, weighted 8, the power loss; no teacher term while the teacher is
# weak): flows of 10 and 10 layers, width 32, an encoder of 10 layers, width 32, the
# 16-harmonic excitation at each note's f0, 8 crops of 4096 samples per step; since
# session 11 also 12 sub-partials with their bank and its match term, and since session
# 12 the sub-partials measured into the frames (a resume keeps them; the fresh start
# below is the original recipe: add --subpartials 12 --subpartial-bank
# --measured-subpartials for today's). Loss weights
# given on a resume change the run's from there on. Same data as the default model (scripts/train-default-model.sh
# renders it); runs at nice 19 and appends its output to data/train-default-student.out;
# Ctrl-C (kill -INT) writes a checkpoint, and the next run resumes it exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
student=assets/default-model/student
timbrel=${TIMBREL:-target/release/timbrel}
log=data/train-default-student.out
[ -x "$timbrel" ] || cargo build --release --locked -p app
if [ ! -f data/fluidr3/examples.json ] || [ ! -f data/fluidr3-drums/examples.json ]; then
    echo "render the data first: scripts/train-default-model.sh does (then stop it)" >&2
    exit 1
fi
mkdir -p data
if [ -f "$student/train/state.json" ]; then
    exec nice -n 19 "$timbrel" train-student --out "$student" --resume --quiet "$@" >>"$log" 2>&1
fi
exec nice -n 19 "$timbrel" train-student --data data/fluidr3 --data data/fluidr3-drums \
    --out "$student" --flows 10,10 --width 32 --encoder-layers 10 --encoder-width 32 \
    --steps 20000 --batch 8 --crop 4096 --lr 1e-3 --warmup 100 --unpitched-share 0.05 \
    --power-weight 8 \
    --checkpoint-every 100 --validate-every 100 --free-run-every 100 --free-run-notes 16 \
    --quiet "$@" >>"$log" 2>&1
