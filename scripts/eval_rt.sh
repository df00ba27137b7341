#!/usr/bin/env bash
# The figures of models/MODEL_CARD.md for the shipped real-time model: both held-out splits
# (RoadScene test images; procedural scenes of an unseen seed), with the four baselines on
# blurry and NAFNet-deblurred inputs, the ablations (without cross-task enhancement; without
# the MI terms) and the earlier models for comparison. Run after scripts/train_rt.sh.
# Usage: bash scripts/eval_rt.sh [DATA_DIR] [RUN_DIR] [LIMIT_OTHERS]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/mix}
RUN=${2:-runs/rt}
LIMIT=${3:-50}  # test samples for the comparison rows of the other models
EVIF=".venv/bin/evif"
for split in test_pairs test_proc; do
  $EVIF eval --data "$DATA/$split" --out "$RUN/eval/$split" --model models/evif_rt.ts \
    --ablation "$RUN/evif_rt_no_enhance.ts" --frame-deblur models/frame_deblur.ts --quiet
  $EVIF eval --data "$DATA/$split" --out "$RUN/eval/${split}_no_mi" \
    --model "$RUN/evif_rt_no_mi.ts" --only-evif --quiet
  for m in evif_lite evif_gpu; do
    $EVIF eval --data "$DATA/$split" --out "$RUN/eval/${split}_$m" --model "models/$m.ts" \
      --only-evif --limit "$LIMIT" --quiet
  done
done
echo "reports under $RUN/eval/; summary: .venv/bin/python scripts/report_models.py $RUN"
