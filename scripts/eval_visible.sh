#!/usr/bin/env bash
# The visible reconstruction's figures of models/cards/evif_rt.md: real recordings (structure
# score against APS frames), stop-and-go and slow pans (SSIM over time, against the model
# shipped before and the APS frame), and the transfer to other sensor sizes and exposure
# lengths (visible SSIM on the held-out splits of scripts/sensor_splits.sh and of
# scripts/finetune_rt.sh). Usage: bash scripts/eval_visible.sh MODEL [OLD_MODEL] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: bash scripts/eval_visible.sh MODEL [OLD_MODEL] [OUT]}
OLD=${2:-}
OUT=${3:-models/eval/visible}
EVIF=.venv/bin/evif
REAL=${REAL:-../shared/data/real_davis}
PAIRS=${PAIRS:-../shared/data/roadscene}
mkdir -p "$OUT"
$EVIF eval-real "$REAL/cups" --model "$MODEL" --out "$OUT/real_cups" --quiet
# as a node calibrated for that sensor runs: its threshold and its events' latency, what
# `evif contrast ../shared/data/real_davis/cups` measures (0.459, +22.7 ms)
$EVIF eval-real "$REAL/cups" --model "$MODEL" --contrast 0.46 --event-latency-ms 22.7 \
  --out "$OUT/real_cups_calibrated" --quiet
$EVIF eval-real "$REAL/dv_sample_davis346.aedat4" --model "$MODEL" --out "$OUT/real_dv" --quiet
[ -n "$OLD" ] && $EVIF eval-real "$REAL/cups" --model "$OLD" --out "$OUT/real_cups_old" --quiet
models=(--model "new=$MODEL")
[ -n "$OLD" ] && models+=(--model "old=$OLD")
$EVIF eval-stopgo "${models[@]}" --pairs "$PAIRS" --out "$OUT/stopgo" --images 2 --quiet
echo "| split | sensor | exposure | visible SSIM (EVIF) | APS frame | event integration |" > "$OUT/transfer.md"
echo "|---|---|---|---|---|---|" >> "$OUT/transfer.md"
for d in data/mix3seq/test_pairs data/sensors/*; do
  name=$(basename "$d")
  $EVIF eval --data "$d" --only-evif --model "$MODEL" --out "runs/eval_visible/$name" --quiet > /dev/null
  .venv/bin/python - "$d" "runs/eval_visible/$name/summary.json" >> "$OUT/transfer.md" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1] + "/test.json"))["config"]
t3 = json.load(open(sys.argv[2]))["table3"]
print(f"| {sys.argv[1]} | {cfg['width']}x{cfg['height']} | {cfg['exposure_ns'] / 1e6:g} ms | "
      f"{t3['EVIF']:.3f} | {t3['APS frame (blurry)']:.3f} | {t3['event integration (leaky)']:.3f} |")
PY
done
# the same exposures' split pairs with the state carried over 3 earlier frames, as the node
# runs (`evif eval --carry`), and from a reset state for comparison
echo "| split | exposure, IR period | visible SSIM, state carried | from a reset state | APS frame |" > "$OUT/transfer_carried.md"
echo "|---|---|---|---|---|" >> "$OUT/transfer_carried.md"
for d in data/sensors_seq/*; do
  name=$(basename "$d")
  for mode in carry reset; do
    flag=(); [ "$mode" = carry ] && flag=(--carry)
    $EVIF eval --data "$d" --only-evif "${flag[@]}" --model "$MODEL" \
      --out "runs/eval_visible/seq_${name}_$mode" --quiet > /dev/null
  done
  .venv/bin/python - "$d" runs/eval_visible/seq_"$name" >> "$OUT/transfer_carried.md" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1] + "/test.json"))["config"]
t3 = {m: json.load(open(f"{sys.argv[2]}_{m}/summary.json"))["table3"] for m in ("carry", "reset")}
print(f"| {sys.argv[1]} | {cfg['exposure_ns'] / 1e6:g} ms, {cfg['frame_period_ns'] / 1e6:.1f} ms | "
      f"{t3['carry']['EVIF']:.3f} | {t3['reset']['EVIF']:.3f} | "
      f"{t3['carry']['APS frame (blurry)']:.3f} |")
PY
done
cat "$OUT/real_cups/summary.md" "$OUT/real_cups_calibrated/summary.md" "$OUT/transfer.md" \
  "$OUT/transfer_carried.md" "$OUT/stopgo/stopgo.md"
