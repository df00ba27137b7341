#!/usr/bin/env bash
# Makes models/evif_hq.ts (the quality tier, size hq) and its same-budget ablation without
# the cross-task enhancement, from the shipped file's reconstruction (kept frozen):
#  stage 2: the 1.1 M-parameter deblurring network behind the curved motion deconvolution
#           ($S2 iterations, batch 8 of 128 px crops cut from the frames deconvolved whole,
#           cosine decay over the second half);
#  stage 3: the fusion network alone, from the shipped file's fusion (all but the projection
#           of the wider deblurring feature), $S3 iterations with its fusion objective.
# Both variants run side by side on one thread each. Resumable: run the same command again.
# See models/cards/evif_hq.md. Usage: bash scripts/train_hq.sh [PAIRS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-../shared/data/roadscene}
RUN=${RUN:-runs/hq}
S2=${S2:-1500}
S3=${S3:-600}
DEVICE=${DEVICE:-cpu}
EVIF=.venv/bin/evif
[ -f data/mix3seq/train.json ] || $EVIF dataset --out data/mix3seq --split train --samples 480 --seed 21 --pairs "$PAIRS" --procedural-fraction 0.3 --randomize-dvs --warmup-frames 2 --quiet
T="--size hq --batch 8 --crop 128 --threads 1 --device $DEVICE --quiet"
variant() {  # $1: run directory, $2: extra flags (--no-enhance for the ablation)
  $EVIF train --data data/mix3seq --out "$1" --stage 2 --init-recon models/evif_rt.ts --freeze-recon --iters "$S2" --lr 4e-4 --decay-from $((S2 / 2)) $2 $T
  $EVIF train --data data/mix3seq --out "$1" --stage 3 --init "$1/stage2.pt" --init-fusion models/evif_rt.ts --iters "$S3" --lr 5e-4 --decay-from $((S3 / 2)) --fusion salient --fusion-weights ssim=3,int=1,grad=4,mi_px=0.25,mi_px_vis=0.75 --freeze-tasks --no-mi $2 $T
  $EVIF export --checkpoint "$1/stage3.pt" --out "$1/evif_hq.ts"
}
variant "$RUN/full" "" &
variant "$RUN/no_enhance" "--no-enhance"
wait
echo "next: cp $RUN/full/evif_hq.ts models/evif_hq.ts; evif eval --data data/mix3seq/test_pairs --model models/evif_hq.ts --out OUT"
