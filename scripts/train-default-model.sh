#!/usr/bin/env bash
# Trains (or continues training) the default model shipped in assets/default-model.
#
#   scripts/train-default-model.sh [--device cuda] [--steps N]
#
# Runs at nice 19 (it is meant to run in the background while other work goes on) and
# appends what `timbrel train` prints to data/train-default-model.out (every step and
# check is also in assets/default-model/train_log.jsonl). Ctrl-C (or kill -INT) writes a
# checkpoint and stops; the next run resumes it exactly.
#
# The data is rendered deterministically from FluidR3_GM (Debian: fluid-soundfont-gm)
# into data/fluidr3 (git-ignored; the same notes every time), then `timbrel train`
# starts, or resumes the committed checkpoint in assets/default-model. Extra arguments
# go to `timbrel train` (with --resume: --steps to extend, --lr, --device).
#
# The spread: all 120 instrument programs of General MIDI (0-119; 120-127 are sound
# effects), so every NSynth family is present; pitches 24-96 (C1-C7), where nearly
# every instrument sounds (beyond, many programs are silent or out of range); NSynth's
# five velocities, so loudness and brightness changes are learned; 6000 notes drawn at
# random from that grid of 43,800, which is more than CPU training can visit. And 600
# unpitched notes of FluidR3's eight drum kits (bank 128, keys 35-81), so that the
# model also learns sounds without a pitch (they get no excitation).
#
# The model: the small-pitched preset (a 16-harmonic excitation at each note's f0 into
# every gated layer); 5 % of crops are trained without it so that a model given no pitch
# still plays; every 50 steps 16 held-out notes are decoded free-running (1 s each) and
# their pitch accuracy and log-mel distance logged. See assets/default-model/MODEL.md.
set -euo pipefail
cd "$(dirname "$0")/.."
model=assets/default-model
data=data/fluidr3
drums=data/fluidr3-drums
font=/usr/share/sounds/sf2/FluidR3_GM.sf2
timbrel=${TIMBREL:-target/release/timbrel}
log=data/train-default-model.out

if [ ! -f "$font" ]; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq fluid-soundfont-gm
fi
[ -x "$timbrel" ] || cargo build --release --locked -p app
mkdir -p data
if [ ! -f "$data/examples.json" ]; then
    "$timbrel" dataset render --soundfont "$font" --out "$data" --quiet \
        --programs 0-119 --pitches 24-96 --velocities 25,50,75,100,127 --sample 6000 --seed 1
fi
if [ ! -f "$drums/examples.json" ]; then
    "$timbrel" dataset render --soundfont "$font" --out "$drums" --quiet --drum-kits \
        --programs 0,8,16,24,25,32,40,48 --pitches 35-81 --velocities 25,50,75,100,127 \
        --sample 600 --seed 1
fi
if [ -f "$model/train/state.json" ]; then
    exec nice -n 19 "$timbrel" train --out "$model" --resume --quiet "$@" >>"$log" 2>&1
fi
exec nice -n 19 "$timbrel" train --data "$data" --data "$drums" --out "$model" \
    --preset small-pitched --force \
    --steps 20000 --batch 8 --crop 6144 --lr 1e-3 --warmup 100 --unpitched-share 0.05 \
    --checkpoint-every 50 --validate-every 50 --free-run-every 50 --free-run-notes 16 \
    --quiet "$@" >>"$log" 2>&1
