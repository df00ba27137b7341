#!/usr/bin/env bash
# Reproduces models/evif_lite.ts and the figures of models/MODEL_CARD.md on 2 CPU cores.
# Usage: bash scripts/train_lite.sh [DATA_DIR] [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/synth}
RUN=${2:-runs/lite}
EVIF=.venv/bin/evif
[ -f "$DATA/train.json" ] || $EVIF dataset --out "$DATA" --split train --samples 1600 --seed 1
[ -f "$DATA/test.json" ] || $EVIF dataset --out "$DATA" --split test --samples 200 --seed 2
$EVIF train --data "$DATA" --out "$RUN/full" --stage 1 --size lite --iters 1200 --threads 1
# the full model and the ablation without cross-task enhancement, same budget, side by side
$EVIF train --data "$DATA" --out "$RUN/full" --stage 2 --init "$RUN/full/stage1.pt" --iters 3800 --decay-from 1400 --lr 1e-3 --threads 1 --quiet &
full_pid=$!
$EVIF train --data "$DATA" --out "$RUN/no_enhance" --stage 2 --init "$RUN/full/stage1.pt" --iters 3800 --decay-from 1400 --lr 1e-3 --threads 1 --no-enhance
wait "$full_pid"  # a bare `wait` returns 0 even when the full run failed
$EVIF train --data "$DATA" --out "$RUN/full" --stage 3 --init "$RUN/full/stage2.pt" --iters 300 --threads 2 --no-mi --freeze-tasks
$EVIF train-frame-deblur --data "$DATA" --out models/frame_deblur.ts
$EVIF export --checkpoint "$RUN/full/stage3.pt" --out models/evif_lite.ts
$EVIF export --checkpoint "$RUN/no_enhance/stage2.pt" --out models/evif_lite_no_enhance.ts
$EVIF eval --data "$DATA" --out "$RUN/eval"
