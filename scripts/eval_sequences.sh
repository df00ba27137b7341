#!/usr/bin/env bash
# The shipped model on consecutive exposures, as the node runs it: one simulated recording
# per scenario (a RoadScene test image at the default motion scale, misaligned IR camera),
# scored against the recording's ground truth with the recurrent state carried from
# exposure to exposure and reset per exposure (`evif eval --bag`: ground_truth.md).
# MODEL (default: the shipped models/evif_rt.ts) is scored into <scenario>/eval_<its name>.
# Usage: [MODEL=file.ts] bash scripts/eval_sequences.sh PAIRS_DIR [OUT_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:?usage: bash scripts/eval_sequences.sh PAIRS_DIR [OUT_DIR] [SECONDS]}
OUT=${2:-runs/sequences}
SECONDS_RIG=${3:-1.0}
EVIF=.venv/bin/evif
MODEL=${MODEL:-models/evif_rt.ts}
EVAL="eval_$(basename "$MODEL" .ts)"
mkdir -p "$OUT"
# a test-split image (the models never trained on it), the same for every scenario
IMAGE=$(.venv/bin/python -c "from evif_ros.sim.pairs import PairLibrary; print(PairLibrary.open('$PAIRS').split('test')[0])")
for scn in day night hdr fast; do
  rec="$OUT/$scn"
  [ -d "$rec/rig" ] || $EVIF simulate --pairs "$PAIRS" --image "$IMAGE" --scenario "$scn" \
    --duration "$SECONDS_RIG" --seed 5 --out "$rec" --quiet > /dev/null
  [ -f "$rec/$EVAL/ground_truth.md" ] || $EVIF eval --bag "$rec/rig" --out "$rec/$EVAL" \
    --model "$MODEL" --methods average --quiet > /dev/null
  echo "## $scn ($IMAGE, $MODEL)"; echo; cat "$rec/$EVAL/ground_truth.md"; echo
done | tee "$OUT/sequences_$(basename "$MODEL" .ts).md"
