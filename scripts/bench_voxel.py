"""Voxel-grid throughput on one core: MEv/s for 10 M events at 346x260, then the network
inputs of one exposure window (exposure grid + K sub-window grids), p50 milliseconds over
consecutive windows: the runtime's `WindowVoxelizer` (one buffer kept between windows), one
pass into fresh arrays (`window_voxels`, training), one grid at a time, and one E2VID grid
of the same events; then binned as 1 ms packets arrive (the node's way, `begin`/`add`):
the time spent over all packets and the time left when the exposure closes (its last
packet).

Run: .venv/bin/python scripts/bench_voxel.py [--events 10000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from evif_ros.runtime.events import make_events  # noqa: E402
from evif_ros.runtime.voxel import (  # noqa: E402
    WindowVoxelizer,
    polarity_voxel_grid,
    scer,
    voxel_grid,
    window_voxels,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--window-repeat", type=int, default=21, help="windows timed per row")
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
    windows(args.window_repeat)


def windows(repeat: int) -> None:
    """ms per exposure window (25 ms exposure, K sub-windows over [start - 12.5 ms, mid))."""
    rng = np.random.default_rng(1)
    w, h, t0, exp = 346, 260, 1_000_000_000, 25_000_000
    print("\n| events | K | kept buffer (ms) | one pass, fresh arrays (ms) | grid by grid (ms) "
          "| one E2VID grid, 5 bins (ms) | as packets arrive: all (ms) | left at close (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (150_000, 1_500_000):
        t = np.sort(rng.integers(t0 - exp, t0 + exp, n))
        ev = make_events(rng.integers(0, w, n), rng.integers(0, h, n), t,
                         rng.integers(0, 2, n))
        for k in (6, 20):
            print(_window_row(ev, k, repeat))


def _window_row(ev, k: int, repeat: int) -> str:
    w, h, t0, exp = 346, 260, 1_000_000_000, 25_000_000
    edges = np.linspace(t0 - exp // 2, t0 + exp // 2, k + 1).astype(np.int64)

    def grid_by_grid():
        polarity_voxel_grid(ev, 5, t0, t0 + exp, h, w)
        np.stack([polarity_voxel_grid(ev, 5, int(a), int(b), h, w)
                  for a, b in zip(edges[:-1], edges[1:])])
    vox = WindowVoxelizer(h, w, k)
    kept = _p50(lambda: vox(ev, t0, exp, edges), repeat)
    one = _p50(lambda: window_voxels(ev, t0, exp, edges, h, w), repeat)
    old = _p50(grid_by_grid, max(repeat // 4, 1))
    e2v = _p50(lambda: voxel_grid(ev, 5, t0 - exp // 2, t0 + exp, h, w), repeat)
    cuts = np.searchsorted(ev["t"], np.arange(int(ev["t"][0]), int(ev["t"][-1]) + 1_000_000,
                                              1_000_000))
    packets = [ev[a:b] for a, b in zip(cuts[:-1], cuts[1:]) if b > a]

    def as_packets_arrive():
        vox.begin(t0, exp, edges)
        for p in packets[:-1]:
            vox.add(p)
        t = time.perf_counter()
        vox.add(packets[-1])
        vox.grids()
        return time.perf_counter() - t
    runs = [(_timed(as_packets_arrive), as_packets_arrive()) for _ in range(repeat)]
    inc = float(np.median([a for a, _ in runs]))
    last = float(np.median([b for _, b in runs]))
    return (f"| {ev.size:,} | {k} | {kept * 1e3:.1f} | {one * 1e3:.1f} | {old * 1e3:.1f} | "
            f"{e2v * 1e3:.1f} | {inc * 1e3:.1f} | {last * 1e3:.2f} |")


def _p50(fn, repeat: int) -> float:
    return float(np.median([_timed(fn) for _ in range(repeat)]))


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
