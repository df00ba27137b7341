#!/usr/bin/env bash
# Makes models/evif_rt.ts with the real-sensor reconstruction (size rt4), in two steps, each
# resumable (rerun the same command after a stop):
#  1. rt3: the rt2 pipeline shipped until 2026-12-02 with image feedback in its
#     reconstruction, retrained on long visible-only event sequences from photographs
#     (evif video-dataset / train-visible; 1,200 iterations, about 40 min on 2 cores);
#  2. rt4: that reconstruction with the event advection of its kept image (--advect, events
#     supported by 2 neighbours) and the structure loss, 1,000 iterations (about 27 min);
#     then its fusion network fine-tuned on top (400 iterations, 4 min); the deblurring
#     network is kept.
# Since 2026-12-04 the default is that file adapted to a DAVIS346's contrast threshold as a
# third step (scripts/adapt_visible.sh, whose header gives the command).
# See models/cards/evif_rt.md. Usage: bash scripts/train_visible.sh [PHOTOS_DIR] [PAIRS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${1:-../shared/data/photos}
PAIRS=${2:-../shared/data/roadscene}
# the rt2 file shipped until 2026-12-02 (models/evif_rt.ts at 444caa9), from git history
INIT=${INIT:-runs/rt2_shipped.ts}
[ -f "$INIT" ] || { mkdir -p "$(dirname "$INIT")" && git show 444caa9:models/evif_rt.ts > "$INIT"; }
RT3=${RT3:-runs/rt3}
RUN=${RUN:-runs/rt4b}
EVIF=.venv/bin/evif
# 1280 training sequences of 24 windows (~17 min on one core), 96 held-out ones
[ -f data/video/train.json ] && [ "$(ls data/video/train-*.npz | wc -l)" -ge 80 ] || \
  $EVIF video-dataset --photos "$PHOTOS" --out data/video --split train --sequences 1280 --seed 31 --quiet
[ -f data/video_test/test.json ] && [ "$(ls data/video_test/test-*.npz | wc -l)" -ge 6 ] || \
  $EVIF video-dataset --photos "$PHOTOS" --out data/video_test --split test --sequences 96 --seed 32 --quiet
# the pipeline data the fusion is fine-tuned on (as scripts/finetune_rt.sh makes it)
[ -f data/mix3seq/train.json ] || $EVIF dataset --out data/mix3seq --split train --samples 480 --seed 21 --pairs "$PAIRS" --procedural-fraction 0.3 --randomize-dvs --warmup-frames 2 --quiet
# 1. rt3: image feedback (L1 + SSIM)
$EVIF train-visible --data data/video --out "$RT3/visible" --init "$INIT" --iters 1200 --threads 2 --quiet
# 2. rt4: advection + structure loss, from rt3's reconstruction
$EVIF train-visible --data data/video --out "$RUN/visible" --init "$RT3/visible/visible.pt" --iters 1000 --lr 2e-4 --advect --advect-support 2 --structure 0.5 --threads 2 --quiet
$EVIF export --checkpoint "$RUN/visible/visible.pt" --out "$RUN/evif_rt4_visible.ts"
# fusion on top of the new visible half: the shipped fusion recipe's weights (finetune_rt.sh,
# fusion_vis), the task networks fixed
$EVIF train --data data/mix3seq --out "$RUN/fusion" --stage 3 --init "$RUN/visible/visible.pt" --iters 400 --lr 2e-4 --fusion salient --fusion-weights ssim=3,int=1,grad=4,mi_px=0.25,mi_px_vis=0.75 --freeze-tasks --no-mi --size rt4 --batch 8 --crop 128 --threads 2 --quiet
$EVIF export --checkpoint "$RUN/fusion/stage3.pt" --out "$RUN/evif_rt4.ts"
echo "trained; evaluate with: bash scripts/eval_visible.sh $RUN/evif_rt4.ts"
