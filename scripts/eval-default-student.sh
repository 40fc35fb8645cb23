#!/usr/bin/env bash
# Measures the shipped student (assets/default-model/student) as its MODEL.md reports it,
# on notes it never trained on, whole 4 s notes, free-running:
#
#   scripts/eval-default-student.sh [more `timbrel eval` flags, e.g. --seed 1]
#   scripts/eval-default-student.sh --seed 1 --notes 1   # another draw of blends, quickly
#
# - fluidr3: 64 notes of the 16 melodic FluidR3 programs its training run held out (the
#   data scripts/train-default-student.sh renders into data/fluidr3-12k), with 24 blends
#   (two held-out notes of two instruments at one pitch, mixed 50/50);
# - hydrogen: 24 notes of the 3 Hydrogen kits it held out (data/hydrogen; drums, not
#   scored on pitch);
# - timgm: 72 notes of 24 General MIDI programs (every fifth, 0-115; pitches C2-C6 in
#   half-octaves; velocities 75, 100, 127; drawn with seed 1) rendered from TimGM6mb, a
#   SoundFont the project never trains on (Debian: timgm6mb-soundfont, installed here if
#   missing; note that default-GM.sf2 may be FluidR3 itself), into data/timgm once; with
#   24 blends.
#
# Each report (text) goes to stdout and, with the reconstructions, the blends and
# eval.json, to data/eval-default-student/{fluidr3,hydrogen,timgm}/ (replaced on every
# run). Runs at nice 10: above the background training (nice 19), below anything
# interactive.
set -euo pipefail
cd "$(dirname "$0")/.."
model=assets/default-model
timbrel=${TIMBREL:-target/release/timbrel}
timgm_font=/usr/share/sounds/sf2/TimGM6mb.sf2
out=data/eval-default-student

[ -x "$timbrel" ] || cargo build --release --locked -p app
if [ ! -f data/fluidr3-12k/examples.json ] || [ ! -f data/hydrogen/examples.json ]; then
    echo "render the training data first: scripts/train-default-student.sh does (then stop it)" >&2
    exit 1
fi
if [ ! -f "$timgm_font" ]; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq timgm6mb-soundfont
fi
mkdir -p data
if [ ! -f data/timgm/examples.json ]; then
    "$timbrel" dataset render --soundfont "$timgm_font" --out data/timgm --quiet \
        --programs 0,5,10,15,20,25,30,35,40,45,50,55,60,65,70,75,80,85,90,95,100,105,110,115 \
        --pitches 36,42,48,54,60,66,72,78,84 --velocities 75,100,127 --sample 72 --seed 1
fi
eval_on() {
    local name=$1
    shift
    echo "== $name"
    nice -n 10 "$timbrel" eval --model "$model" --decoder parallel --quiet \
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
