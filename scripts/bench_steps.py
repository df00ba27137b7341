"""What the reconstruction's steps cost a slower thermal camera: the runner's time per IR
frame (voxel grids + model, p50) for a 30 Hz window (33.3 ms of events, one step), a 10 Hz
window cut into steps of the span the model was trained at (100 ms, three steps), and the
same 10 Hz window in one step (`recon_step_ms` set past it), called in turn in one process
(the machine's speed drifts between runs). Events are random, at a DAVIS346's busy 1 MEv/s.

Usage: python scripts/bench_steps.py [--model models/evif_rt.ts] [--threads 2] [--calls 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from evif_ros.paths import share_file
from evif_ros.runtime.calibration import Calibration
from evif_ros.runtime.events import EVENT_DTYPE, recon_edges
from evif_ros.runtime.inference import EvifRunner

MS = 1_000_000


def window(w: int, h: int, span_ns: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    n = int(rate * span_ns * 1e-9)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(-span_ns, 0, n)) + 12 * MS  # ending at mid-exposure
    ev["x"], ev["y"], ev["p"] = rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n)
    return ev


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(share_file("models", "evif_rt.ts")))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--rate", type=float, default=1e6, help="events per second")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h, exp = 346, 260, 25 * MS
    calib = Calibration(np.eye(3), (w, h), (w, h), exp)
    rng = np.random.default_rng(0)
    ir = rng.integers(3000, 9000, (h, w)).astype(np.uint16)
    cases = {"30 Hz, 1 step": (EvifRunner(args.model, calib, "cpu"), 33_333_333),
             "10 Hz, steps": (EvifRunner(args.model, calib, "cpu"), 100 * MS),
             "10 Hz, 1 step": (EvifRunner(args.model, calib, "cpu", recon_step_ns=0), 100 * MS)}
    events = {name: window(w, h, span, args.rate, rng) for name, (_, span) in cases.items()}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for call in range(args.calls + 5):  # 5 warm-up calls each: TorchScript optimises first
        for name, (runner, span) in cases.items():
            edges = recon_edges(12 * MS, span, runner.sub_windows_for(span))
            t0 = time.perf_counter()
            runner(ir, events[name], 0, exp, edges, warp=False)
            if call >= 5:
                times[name].append((time.perf_counter() - t0) * 1e3)
    print(f"{args.model}, {args.threads} threads, {args.rate:.0f} events/s, {args.calls} calls")
    print("| window | steps | p50 ms per frame | share of the frame period |")
    print("|---|---|---|---|")
    for name, (runner, span) in cases.items():
        p50 = float(np.median(times[name]))
        print(f"| {name} | {runner.steps_for(span)} | {p50:.1f} | {p50 / (span / MS):.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
