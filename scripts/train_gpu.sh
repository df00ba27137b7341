#!/usr/bin/env bash
# Reproduces models/evif_gpu.ts (the `gpu` size) on one NVIDIA GPU, on RoadScene image
# pairs mixed with the procedural world; see models/cards/evif_gpu.md.
# Usage: bash scripts/train_gpu.sh PAIRS_DIR [DATA_DIR] [RUN_DIR]
# Environment: PY (python with torch+CUDA and this repo's requirements; default .venv),
# DEVICE (cuda), S1/S2/S3 (iterations per stage), LIMIT_MIN (minutes per stage, 0 = none),
# N_TRAIN (training samples). Every step resumes: rerun the same command after a stop.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:?usage: bash scripts/train_gpu.sh PAIRS_DIR [DATA_DIR] [RUN_DIR]}
DATA=${2:-data/gpu}
RUN=${3:-runs/gpu}
PY=${PY:-.venv/bin/python}
EVIF="$PY -m evif_ros.apps.cli"
CORES=$(nproc)
S1=${S1:-3000} S2=${S2:-6000} S3=${S3:-600} LIMIT_MIN=${LIMIT_MIN:-0}
MIX="--pairs $PAIRS --procedural-fraction 0.3 --randomize-dvs --workers $CORES --quiet"
[ -f "$DATA/train.json" ] || $EVIF dataset --out "$DATA" --split train --samples "${N_TRAIN:-4000}" --seed 21 $MIX
# held out: RoadScene test images, and procedural scenes of a seed never trained on
[ -f "$DATA/test_pairs/test.json" ] || $EVIF dataset --out "$DATA/test_pairs" --split test --samples 200 --seed 22 --pairs "$PAIRS" --workers "$CORES" --quiet
[ -f "$DATA/test_proc/test.json" ] || $EVIF dataset --out "$DATA/test_proc" --split test --samples 200 --seed 23 --workers "$CORES" --quiet
T="--size gpu --device ${DEVICE:-cuda} --workers $((CORES > 2 ? CORES - 2 : 1)) --batch 32 --crop 128 --time-limit $LIMIT_MIN --quiet"
$EVIF train --data "$DATA" --out "$RUN/full" --stage 1 --iters "$S1" --lr 5e-4 $T
$EVIF train --data "$DATA" --out "$RUN/full" --stage 2 --init "$RUN/full/stage1.pt" --iters "$S2" --decay-from $((S2 / 3)) --lr 5e-4 $T
$EVIF train --data "$DATA" --out "$RUN/full" --stage 3 --init "$RUN/full/stage2.pt" --iters "$S3" --no-mi --freeze-tasks $T
$EVIF export --checkpoint "$RUN/full/stage3.pt" --out "$RUN/evif_gpu.ts"
