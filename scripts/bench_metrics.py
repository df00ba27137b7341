"""Time the six VIF metrics for N frames at 346x260 (Table 1 evaluation cost).

Run: .venv/bin/python scripts/bench_metrics.py [--frames 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evif_ros.evaluation.metrics import all_metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    a, b, f = (rng.uniform(0, 255, (260, 346)) for _ in range(3))
    t0 = time.perf_counter()
    for _ in range(args.frames):
        all_metrics(a, b, f)
    wall = time.perf_counter() - t0
    print(f"{args.frames} frames at 346x260: {wall:.1f} s ({wall / args.frames * 1e3:.1f} ms "
          "per frame for CE, EN, MI, AG, SSIM, Q_CB)")


if __name__ == "__main__":
    main()
