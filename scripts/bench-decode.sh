#!/usr/bin/env bash
# Runs `timbrel bench decode` for the issue's configurations, each REPEATS times, and
# prints min / median / max of samples_per_s (this machine's figures vary from run to
# run with whatever else the host is doing; BENCHMARKS.md quotes the median and best).
#
#   scripts/bench-decode.sh [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-5}
timbrel=${TIMBREL:-target/release/timbrel}
[ -x "$timbrel" ] || cargo build --release --locked -p app
run() {
    local label=$1; shift
    local values=()
    for _ in $(seq "$repeats"); do
        values+=("$("$timbrel" bench decode "$@" | sed -n 's/^samples_per_s=//p')")
    done
    printf '%s\n' "${values[@]}" | sort -n | awk -v label="$label" '
        { v[NR] = $1 }
        END { printf "%-28s min %7d  median %7d  max %7d samples/s\n", label, v[1], v[int((NR + 1) / 2)], v[NR] }'
}
run "small b1"            --preset small --batch 1 --samples 16384
run "small b1 (1 thread)" --preset small --batch 1 --samples 16384 --threads 1
run "small b16"           --preset small --batch 16 --samples 8192
run "small b16 (1 thread)" --preset small --batch 16 --samples 8192 --threads 1
run "nsynth b1"           --preset nsynth --batch 1 --samples 512
run "nsynth b16"          --preset nsynth --batch 16 --samples 512
