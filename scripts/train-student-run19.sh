#!/usr/bin/env bash
# Trains (or continues) run 19, the candidate to replace the default student (see
# assets/default-model/student/MODEL.md, "Session 17"): the whole recipe of the shipped
# student from step 0 (measured sub-partials, their bank, the measured envelope, trained
# through it), on twice the FluidR3 notes, FluidR3's drum kits and the Hydrogen kits' real
# recordings, with 13 % of the instruments held out (19: 16 melodic, 3 kits).
#
#   scripts/train-student-run19.sh [--steps N ...]
#
# Renders its data into data/ once (FluidR3 and the Hydrogen kits are installed if
# missing: Debian's fluid-soundfont-gm, hydrogen-drumkits); trains into data/student-run19
# (outside the repository until it wins) at nice 19, appending its output to
# data/student-run19.out; Ctrl-C (kill -INT) writes a checkpoint, and the next run
# resumes it exactly.
set -euo pipefail
cd "$(dirname "$0")/.."
timbrel=${TIMBREL:-target/release/timbrel}
font=/usr/share/sounds/sf2/FluidR3_GM.sf2
kits=/usr/share/hydrogen/data/drumkits
out=data/student-run19
log=data/student-run19.out
[ -x "$timbrel" ] || cargo build --release --locked -p app
if [ ! -f "$font" ] || [ ! -d "$kits" ]; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq fluid-soundfont-gm hydrogen-drumkits
fi
mkdir -p data
if [ ! -f data/fluidr3-12k/examples.json ]; then
    "$timbrel" dataset render --soundfont "$font" --out data/fluidr3-12k --quiet \
        --programs 0-119 --pitches 24-96 --velocities 25,50,75,100,127 --sample 12000 --seed 2
fi
if [ ! -f data/fluidr3-drums/examples.json ]; then
    "$timbrel" dataset render --soundfont "$font" --out data/fluidr3-drums --quiet --drum-kits \
        --programs 0,8,16,24,25,32,40,48 --pitches 35-81 --velocities 25,50,75,100,127 \
        --sample 600 --seed 1
fi
if [ ! -f data/hydrogen/examples.json ]; then
    "$timbrel" dataset pack --pack "$kits" --out data/hydrogen --unpitched --quiet
fi
if [ -f "$out/train/state.json" ]; then
    exec nice -n 19 "$timbrel" train-student --out "$out" --resume --quiet "$@" >>"$log" 2>&1
fi
exec nice -n 19 "$timbrel" train-student \
    --data data/fluidr3-12k --data data/fluidr3-drums --data data/hydrogen --out "$out" \
    --flows 10,10 --width 32 --encoder-layers 10 --encoder-width 32 \
    --steps 40000 --batch 8 --crop 4096 --lr 1e-3 --warmup 100 --unpitched-share 0.05 \
    --power-weight 8 --subpartials 12 --subpartial-bank --measured-subpartials --bank-weight 1 \
    --sub-octave-share 0.3 --envelope-bands 24 --through-envelope --held-out-share 0.13 \
    --checkpoint-every 100 --validate-every 100 --free-run-every 100 --free-run-notes 16 \
    --quiet "$@" >>"$log" 2>&1
