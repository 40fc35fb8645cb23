#!/usr/bin/env bash
# Trains (or continues training) the default model shipped in assets/default-model.
#
#   scripts/train-default-model.sh [--device cuda] [--steps N]
#
# The data is rendered deterministically from FluidR3_GM (Debian: fluid-soundfont-gm)
# into data/fluidr3 (git-ignored; the same notes every time), then `timbrel train`
# starts, or resumes the committed checkpoint in assets/default-model. Extra arguments
# go to `timbrel train` (with --resume: --steps to extend, --device).
#
# The spread: all 120 instrument programs of General MIDI (0-119; 120-127 are sound
# effects), so every NSynth family is present; pitches 24-96 (C1-C7), where nearly
# every instrument sounds (beyond, many programs are silent or out of range); NSynth's
# five velocities, so loudness and brightness changes are learned; 6000 notes drawn at
# random from that grid of 43,800, which is more than CPU training can visit.
set -euo pipefail
cd "$(dirname "$0")/.."
model=assets/default-model
data=data/fluidr3
font=/usr/share/sounds/sf2/FluidR3_GM.sf2
timbrel=${TIMBREL:-target/release/timbrel}

if [ ! -f "$font" ]; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq fluid-soundfont-gm
fi
[ -x "$timbrel" ] || cargo build --release --locked -p app
if [ ! -f "$data/examples.json" ]; then
    "$timbrel" dataset render --soundfont "$font" --out "$data" \
        --programs 0-119 --pitches 24-96 --velocities 25,50,75,100,127 --sample 6000 --seed 1
fi
if [ -f "$model/train/state.json" ]; then
    exec "$timbrel" train --out "$model" --resume "$@"
fi
exec "$timbrel" train --data "$data" --out "$model" --preset small --steps 20000 \
    --batch 8 --crop 6144 --lr 6e-4 --warmup 100 --checkpoint-every 20 --validate-every 20 "$@"
