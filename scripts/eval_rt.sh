#!/usr/bin/env bash
# The rt2 figures (docs/experiments/2026-12-02-model-card-notebook.md) of the real-time model: both held-out splits
# (RoadScene test images; procedural scenes of an unseen seed), with the four baselines on
# blurry and NAFNet-deblurred inputs and the ablation without cross-task enhancement; the
# variant trained with the MI terms and the earlier models for comparison. Run after
# scripts/train_rt.sh. The two splits run side by side; finished reports are kept (resume).
# MODELS (default models) holds the model files scored in the main rows.
# Usage: [MODELS=models] bash scripts/eval_rt.sh [DATA_DIR] [RUN_DIR] [LIMIT_OTHERS] [BASE_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/mix3}
RUN=${2:-runs/rt2ft}
LIMIT=${3:-50}  # test samples for the comparison rows of the earlier models
BASE=${4:-runs/rt2}  # scripts/train_rt.sh's run: the base model before fine-tuning
MODELS=${MODELS:-models}
EVIF=".venv/bin/evif"
# one comparison row: MODEL scored alone into OUT unless done or the model is missing
compare() {
  local split=$1 out=$2 model=$3; shift 3
  [ -f "$out/summary.json" ] || [ ! -f "$model" ] || $EVIF eval --data "$DATA/$split" \
    --out "$out" --model "$model" --only-evif "$@" --quiet > /dev/null
}
one_split() {
  local split=$1 out="$RUN/eval/$1"
  [ -f "$out/summary.json" ] || $EVIF eval --data "$DATA/$split" --out "$out" \
    --model "$MODELS/evif_rt.ts" --ablation "$MODELS/evif_rt_no_enhance.ts" \
    --frame-deblur "$MODELS/frame_deblur.ts" --quiet > /dev/null
  compare "$split" "${out}_line" "$RUN/evif_rt_line.ts"  # motion: one straight shift
  compare "$split" "${out}_nomotion" "$RUN/evif_rt_nomotion.ts"  # without MotionDeconv
  compare "$split" "${out}_base" "$BASE/evif_rt_base.ts"
  compare "$split" "${out}_merged" "$RUN/evif_rt_merged.ts"
  compare "$split" "${out}_sharp" "$RUN/evif_rt_sharp.ts"  # without the intensity-MI steps
  compare "$split" "${out}_mipx" "$RUN/evif_rt_mipx.ts"  # intensity MI, SSIM symmetric
  compare "$split" "${out}_ft" "$RUN/evif_rt_ft.ts"
  compare "$split" "${out}_mi" "$BASE/evif_rt_mi.ts"
  compare "$split" "${out}_rt1" "$RUN/evif_rt1.ts"  # the earlier full-resolution design
  for m in evif_gpu; do
    compare "$split" "${out}_$m" "models/$m.ts" --limit "$LIMIT"
  done
}
one_split test_pairs &
pairs=$!
one_split test_proc
wait "$pairs"
echo "reports under $RUN/eval/; summary: .venv/bin/python scripts/report_models.py $RUN"
