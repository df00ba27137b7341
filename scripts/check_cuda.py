"""The inference path on a GPU against the CPU: scripts/bench_inference.py's windows of the
synthetic rig through ``EvifRunner`` (the node's, `evif eval`'s and the benchmark's code
path) on the CPU and on CUDA in fp32 and fp16, the recurrent state carried, and the largest
differences of the published images.

Run (on a machine with CUDA): python3 scripts/check_cuda.py [--model models/evif_rt.ts]
     [--seconds 1.0] [--json OUT.json]
Exit status 1 when CUDA is missing or an fp32 output differs from the CPU's by more than
``--tolerance`` (8-bit levels for fused/visible, 16-bit counts / 256 for the IR).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from bench_inference import windows as bench_windows  # scripts/ is on the path when run

from evif_ros.paths import share_file
from evif_ros.runtime.calibration import load_calibration
from evif_ros.runtime.inference import EvifRunner

OUTPUTS = ("fused", "visible", "ir_deblurred")


def run_all(runner: EvifRunner, windows: list) -> list[dict]:
    runner.reset()
    return [{k: getattr(runner.run(w), k) for k in OUTPUTS} for w in windows]


def differences(a: list[dict], b: list[dict]) -> dict:
    """Per output: the largest absolute difference over all frames and pixels (IR in
    8-bit levels, counts / 256) and the share of pixels that differ at all."""
    out = {}
    for k in OUTPUTS:
        d = np.stack([np.abs(x[k].astype(np.int64) - y[k].astype(np.int64))
                      for x, y in zip(a, b)])
        if k == "ir_deblurred":
            d = d / 256.0
        out[k] = {"max": float(d.max()), "mean": float(d.mean()),
                  "differing": float((d > 0).mean())}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(share_file("models", "evif_rt.ts")))
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--tolerance", type=float, default=2.0)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("check_cuda: CUDA is not available on this machine", file=sys.stderr)
        return 1
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    cpu = EvifRunner(args.model, calib, device="cpu")
    windows = list(bench_windows(args.seconds, cpu.k, calib))
    ref = run_all(cpu, windows)
    report = {"model": args.model, "windows": len(windows), "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name()}
    worst = 0.0
    for precision in ("fp32", "fp16"):
        gpu = EvifRunner(args.model, calib, device="cuda", precision=precision)
        report[precision] = differences(ref, run_all(gpu, windows))
        if precision == "fp32":
            worst = max(v["max"] for v in report[precision].values())
    print(f"{len(windows)} windows of the synthetic rig, {args.model}, {report['gpu']}, "
          f"torch {torch.__version__}; CUDA against CPU (8-bit levels; IR counts / 256):")
    print("| precision | output | max |diff| | mean |diff| | pixels differing |")
    print("|---|---|---|---|---|")
    for precision in ("fp32", "fp16"):
        for k, v in report[precision].items():
            print(f"| {precision} | {k} | {v['max']:.2f} | {v['mean']:.4f} | "
                  f"{100 * v['differing']:.2f} % |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if worst > args.tolerance:
        print(f"check_cuda: fp32 on CUDA differs from the CPU by {worst:.2f} > "
              f"{args.tolerance}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
