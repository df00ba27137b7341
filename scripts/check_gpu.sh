#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one go (CI has none): every shipped model file
# loads with the machine's torch (often not this project's pinned one), the shipped model on CUDA
# against the CPU (scripts/check_cuda.py), its latency in fp32 and fp16
# (scripts/bench_inference.py), and the training path on the GPU: a small sequence dataset,
# stages 1-3 (stage 3 with every fusion weight) and the export, each stage's speed logged.
# Usage: bash scripts/check_gpu.sh [OUT_DIR]
# Environment: PY (python with torch+CUDA and numpy, opencv, PyYAML, tqdm; default python3),
# ITERS (iterations per training stage, default 60).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/check_gpu}
PY=${PY:-python3}
ITERS=${ITERS:-60}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
status=0
step() { echo "== $1"; }
step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
step "every shipped model file loads with this torch"
for f in models/*.ts; do
  if $PY -c "import sys, torch; torch.jit.load(sys.argv[1], map_location='cuda')" "$f" \
      2> "$OUT/load.err"; then echo "loads: $f"; else echo "FAILS: $f: $(tail -1 "$OUT/load.err")"; status=1; fi
done
rm -f "$OUT/load.err"
step "CUDA against CPU"
$PY scripts/check_cuda.py --json "$OUT/cuda_vs_cpu.json" | tee "$OUT/cuda_vs_cpu.md" || status=1
for p in fp32 fp16; do
  step "latency $p"
  $PY scripts/bench_inference.py --device cuda --frames 60 --precision "$p" --sizes "" \
    | tee "$OUT/bench_$p.md" || status=1
done
step "training on the GPU ($ITERS iterations per stage)"
D=$(mktemp -d)
EVIF="$PY -m evif_ros.apps.cli"
W=$(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))
T="--size rt2 --device cuda --batch 32 --crop 128 --workers $W --iters $ITERS --quiet"
{
  $EVIF dataset --out "$D/data" --split train --samples 96 --seed 5 --randomize-dvs \
    --warmup-frames 2 --workers "$W" --quiet &&
  $EVIF train --data "$D/data" --out "$D/run" --stage 1 --lr 1e-3 $T &&
  $EVIF train --data "$D/data" --out "$D/run" --stage 2 --init "$D/run/stage1.pt" --lr 5e-4 $T &&
  $EVIF train --data "$D/data" --out "$D/run" --stage 3 --init "$D/run/stage2.pt" --lr 2e-4 \
    --fusion salient --fusion-weights 2,0,0,1,4,0.5,2 --freeze-tasks --no-mi $T &&
  $EVIF export --checkpoint "$D/run/stage3.pt" --out "$D/run/evif.ts"
} 2>&1 | tee "$OUT/train.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
for s in 1 2 3; do  # seconds per iteration over each stage's last half (after start-up)
  f="$D/run/stage$s.csv"
  [ -f "$f" ] && awk -F, -v s="$s" 'NR > 1 { t[NR] = $3; n = NR }
    END { h = int((n + 1) / 2); printf "stage %s: %d iterations, %.3f s/iteration (batch 32)\n",
          s, n - 1, (t[n] - t[h]) / (n - h) }' "$f" | tee -a "$OUT/train.log"
done
rm -rf "$D"
echo "check_gpu: $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
