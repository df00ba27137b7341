"""Voxel-grid throughput on one core: MEv/s for 10 M events at 346x260.

Run: .venv/bin/python scripts/bench_voxel.py [--events 10000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from evif_ros.core.events import make_events  # noqa: E402
from evif_ros.core.voxel import polarity_voxel_grid, scer, voxel_grid  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, w, h = args.events, 346, 260
    ev = make_events(rng.integers(0, w, n), rng.integers(0, h, n),
                     np.sort(rng.integers(0, 1_000_000_000, n)), rng.integers(0, 2, n))
    t0, t1 = 0, 1_000_000_000
    cases = {
        "e2vid 5 bins": lambda: voxel_grid(ev, 5, t0, t1, h, w),
        "e2vid 5 bins + normalize": lambda: voxel_grid(ev, 5, t0, t1, h, w, normalize=True),
        "polarity 5x2": lambda: polarity_voxel_grid(ev, 5, t0, t1, h, w),
        "scer 6": lambda: scer(ev, 6, t0, t1, h, w),
    }
    print(f"| grid | {n / 1e6:.0f} M events: best of {args.repeat} (s) | MEv/s |")
    print("|---|---|---|")
    for name, fn in cases.items():
        best = min(_timed(fn) for _ in range(args.repeat))
        print(f"| {name} | {best:.3f} | {n / best / 1e6:.1f} |")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
