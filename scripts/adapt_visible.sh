#!/usr/bin/env bash
# Adapts the shipped reconstruction to one event sensor: given its contrast threshold C (what
# `evif contrast RECORDING` measures from a recording with APS frames), simulates 1,280
# training sequences whose sensors' ON thresholds span C / 1.27 to C x 1.27 (the generic
# recipe draws 0.1-0.6), fine-tunes the visible reconstruction of models/evif_rt.ts on them
# for 1,200 iterations with the step scaled by each sequence's threshold (as the node scales
# it when told C), and exports MODEL with the contrast reference the runtime scales by.
# On 2 cores: about 5 min of data, 33 min of training. Resumable: rerun the same command.
# Run the result with the rig calibration's davis_contrast set to C. INIT (default
# models/evif_rt.ts) is the file adapted. The default models/evif_rt.ts since 2026-12-04 is
# the previous default adapted to a DAVIS346 at C = 0.46 (what `evif contrast` measures on
# ../shared/data/real_davis/cups):
#   git show 0e5d8eb:models/evif_rt.ts > runs/rt4_before.ts
#   INIT=runs/rt4_before.ts bash scripts/adapt_visible.sh 0.46 runs/c046 models/evif_rt.ts
# (models/cards/evif_rt.md; docs/experiments/2026-12-04-threshold-adapted.md: 600 iterations
# there, 1,200 in the file shipped since, chosen on the held-out simulated split;
# docs/experiments/2026-12-04-adapted-longer.md)
# SEQUENCES, ITERS, DATA_ARGS and TRAIN_ARGS (more options of video-dataset and train-visible)
# make a smaller run, as the test of this script does.
set -euo pipefail
cd "$(dirname "$0")/.."
USAGE="usage: bash scripts/adapt_visible.sh C RUN_DIR MODEL_OUT [PHOTOS_DIR]"
C=${1:?$USAGE}
RUN=${2:?$USAGE}
MODEL=${3:?$USAGE}
PHOTOS=${4:-../shared/data/photos}
INIT=${INIT:-models/evif_rt.ts}
SEQUENCES=${SEQUENCES:-1280}
ITERS=${ITERS:-1200}
EVIF=.venv/bin/evif
REF=0.29  # the threshold the step is scaled against in training, stored for the runtime
read -r LO HI < <(.venv/bin/python -c "c = float('$C'); print(f'{c / 1.27:.2f} {c * 1.27:.2f}')")
DATA="$RUN/data"
# both resume: the dataset skips the shards it has, training starts from its checkpoint
# shellcheck disable=SC2086  # DATA_ARGS / TRAIN_ARGS are option lists
$EVIF video-dataset --photos "$PHOTOS" --out "$DATA" --split train --sequences "$SEQUENCES" \
  --seed 41 --contrast "$LO" "$HI" --workers 2 --quiet ${DATA_ARGS:-}
# shellcheck disable=SC2086
$EVIF train-visible --data "$DATA" --out "$RUN/visible" --init "$INIT" --iters "$ITERS" \
  --lr 1e-4 --advect --advect-support 2 --structure 0.5 --contrast-ref "$REF" --threads 2 \
  --quiet ${TRAIN_ARGS:-}
$EVIF export --checkpoint "$RUN/visible/visible.pt" --out "$MODEL"
.venv/bin/python scripts/contrast_ref.py --model "$MODEL" --set "$REF"
echo "adapted to C = $C (training thresholds $LO-$HI): $MODEL; run it with davis_contrast $C"
