#!/usr/bin/env bash
# Held-out simulated test splits on other sensor sizes and exposure lengths (RoadScene test
# images), for the visible reconstruction's transfer figures in the model card; the
# 346x260 / 25 ms reference is data/mix3seq/test_pairs (scripts/finetune_rt.sh).
# Usage: bash scripts/sensor_splits.sh [PAIRS_DIR]   (resumable)
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-../shared/data/roadscene}
EVIF=.venv/bin/evif
split() {  # OUT SAMPLES SEED W H EXPOSURE_MS [more `evif dataset` options]
  [ -f "$1/test.json" ] && [ "$(ls "$1"/test-*.npz 2>/dev/null | wc -l)" -ge $(( ($2 + 31) / 32 )) ] || \
    $EVIF dataset --out "$1" --split test --samples "$2" --seed "$3" --pairs "$PAIRS" --sensor "$4" "$5" --exposure-ms "$6" --workers 1 --quiet "${@:7}"
}
split data/sensors/s240x180_25ms 100 41 240 180 25
split data/sensors/s346x260_10ms 100 42 346 260 10
split data/sensors/s346x260_100ms 64 43 346 260 100
split data/sensors/s640x480_25ms 64 44 640 480 25
# sequence samples (3 earlier frames, one IR period apart) for `evif eval --carry`: the state
# carried as the node carries it; a 100 ms exposure at 10 Hz against 25 ms at 30 Hz
split data/sensors_seq/s346x260_100ms 64 43 346 260 100 --frame-period-ms 100 --warmup-frames 3
split data/sensors_seq/s346x260_25ms 64 45 346 260 25 --frame-period-ms 33.333333 --warmup-frames 3
