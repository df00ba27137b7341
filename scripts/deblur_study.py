"""The IR deblurring learning-curve study of issue 29 (evif_ros/evaluation/deblur_study.py):
every design trained for the same wall-clock budget on one thread, scored on validation
frames; writes OUT/<design>.json (resumable: finished designs are kept), OUT/table.md and
OUT/curves.png.

Usage: python scripts/deblur_study.py [--data data/mix3seq] [--out DIR] [--minutes 8]
       [--designs events-h8,frame-16,...] [--val-every 5] [--device cuda]
(on a GPU give --out a directory of its own: the curves' time axis is that device's)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from evif_ros.evaluation.deblur_study import DESIGNS, Validation, plot, run_design, table
from evif_ros.learning.data import ShardData
from evif_ros.sim.dataset import iter_samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/mix3seq"))
    ap.add_argument("--out", type=Path, default=Path("docs/experiments/2026-12-03-deblur-study"))
    ap.add_argument("--weights", type=Path, default=Path("runs/deblur_study"),
                    help="where the trained networks go (not committed)")
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--designs", default=",".join(DESIGNS))
    ap.add_argument("--val-every", type=int, default=5,
                    help="every Nth sample of the RoadScene test split validates")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the GPU's time axis)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = a.designs.split(",")
    unknown = [n for n in names if n not in DESIGNS]
    if unknown:
        print(f"deblur_study: unknown design(s) {unknown}; known: {', '.join(DESIGNS)}",
              file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    val = Validation(list(iter_samples(a.data / "test_pairs", "test"))[:: a.val_every])
    data = ShardData(a.data, "train")
    print(f"{len(data)} training samples, {len(val.items)} validation frames "
          f"(blurry {val.blurry_psnr():.2f} dB), loaded in {time.time() - t0:.0f} s", flush=True)
    results = []
    for i, name in enumerate(names):
        print(f"[{i + 1}/{len(names)}] {name}", flush=True)
        results.append(run_design(DESIGNS[name], data, val, a.out, a.weights, a.minutes,
                                  progress=lambda m: print("  " + m, flush=True),
                                  device=a.device))
        (a.out / "table.md").write_text(table(results) + "\n")
        plot(results, a.out / "curves.png")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
