#!/usr/bin/env bash
# Trains (or continues training) the Parallel WaveNet student in assets/default-model/student
# (run 19 since session 19; assets/default-model/student/MODEL.md).
#
#   scripts/train-default-student.sh [--steps N ...]
#
# The student and its own encoder learn from the notes' spectra (the multi-resolution
# spectral loss and, weighted 8, the power loss): flows of 10 and 10 layers, width 32, an
# encoder of 10 layers, width 32, the 16-harmonic excitation at each note's f0 with 12
# sub-partials, their bank and the sub-partials measured into the frames, a 48-band
# measured envelope it is trained through; 8 crops of 4,096 samples a step. Data: every
# melodic FluidR3 program at five velocities (11,724 notes), FluidR3's drum kits and the 14
# Hydrogen kits' real recordings, 13 % of the instruments held out (19: 16 melodic, 3
# kits). Options given on a resume (`--steps`, loss weights) change the run's from there.
#
# Renders its data into data/ once (FluidR3 and the Hydrogen kits are installed if
# missing: Debian's fluid-soundfont-gm, hydrogen-drumkits); runs at nice 19, appending
# its output to data/train-default-student.out; Ctrl-C (kill -INT) writes a checkpoint,
# and the next run resumes it exactly. A checkpoint rewrites the folder's weights,
# `train/` and `train_log.jsonl`: commit them only as ARCHITECTURE.md's checkpoint policy
# says.
set -euo pipefail
cd "$(dirname "$0")/.."
student=assets/default-model/student
timbrel=${TIMBREL:-target/release/timbrel}
font=/usr/share/sounds/sf2/FluidR3_GM.sf2
kits=/usr/share/hydrogen/data/drumkits
log=data/train-default-student.out
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
if [ -f "$student/train/state.json" ]; then
    exec nice -n 19 "$timbrel" train-student --out "$student" --resume --quiet "$@" >>"$log" 2>&1
fi
# A fresh run (the committed state gone): run 19's recipe, with the 48 bands it was
# switched to at step 10,386 from the start.
exec nice -n 19 "$timbrel" train-student \
    --data data/fluidr3-12k --data data/fluidr3-drums --data data/hydrogen --out "$student" \
    --flows 10,10 --width 32 --encoder-layers 10 --encoder-width 32 \
    --steps 40000 --batch 8 --crop 4096 --lr 1e-3 --warmup 100 --unpitched-share 0.05 \
    --power-weight 8 --subpartials 12 --subpartial-bank --measured-subpartials --bank-weight 1 \
    --sub-octave-share 0.3 --envelope-bands 48 --through-envelope --held-out-share 0.13 \
    --checkpoint-every 100 --validate-every 100 --free-run-every 100 --free-run-notes 16 \
    --quiet "$@" >>"$log" 2>&1
