#!/usr/bin/env bash
# Measures run 19 (scripts/train-student-run19.sh) as MODEL.md reports it: the EMA weights
# of its last checkpoint, copied first (the run may go on beside), whole 4 s notes,
# free-running, on its own held-out split (64 notes of its 16 melodic instruments with 24
# blends; 24 notes of its 3 Hydrogen kits) and on the 72 TimGM6mb notes that
# scripts/eval-default-student.sh renders (run that first), with 24 blends:
#
#   scripts/eval-student-run19.sh [more `timbrel eval` flags, e.g. --seed 1]
#
# Reports go to stdout and, with the renders, to data/eval-student-run19/ (replaced on
# every run). Runs at nice 10.
set -euo pipefail
cd "$(dirname "$0")/.."
timbrel=${TIMBREL:-target/release/timbrel}
run=data/student-run19
out=data/eval-student-run19
[ -x "$timbrel" ] || cargo build --release --locked -p app
if [ ! -f "$run/train/state.json" ] || [ ! -f data/timgm/examples.json ]; then
    echo "train run 19 first (scripts/train-student-run19.sh) and render data/timgm (scripts/eval-default-student.sh)" >&2
    exit 1
fi
rm -rf "$out"
mkdir -p "$out/model/train"
cp "$run/student.json" "$run/weights.safetensors" "$out/model/"
cp "$run/train/state.json" "$out/model/train/"
echo "step $(grep -o '"step": *[0-9]*' "$out/model/train/state.json" | tail -1 | grep -o '[0-9]*$')"
eval_on() {
    local name=$1
    shift
    echo "== $name"
    nice -n 10 "$timbrel" eval --model "$out/model" --decoder parallel --quiet \
        --out "$out/$name" --force "$@"
}
# --notes given (e.g. `--seed 1 --notes 1`: another draw of blends): it replaces the sets'.
melodic=(--notes 64)
drums=(--notes 24)
timgm=(--notes 72)
for arg in "$@"; do
    if [ "$arg" = --notes ]; then
        melodic=()
        drums=()
        timgm=()
    fi
done
eval_on fluidr3 --data data/fluidr3-12k --held-out --blends 24 "${melodic[@]}" "$@"
eval_on hydrogen --data data/hydrogen --held-out "${drums[@]}" "$@"
eval_on timgm --data data/timgm --blends 24 "${timgm[@]}" "$@"
