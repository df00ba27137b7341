"""Synthetic-rig speed and physics per scenario (no file I/O): simulated seconds per wall
second, event rate, and blurry-IR PSNR against the sharp ground truth.

Run: .venv/bin/python scripts/bench_sim.py [--duration 1.0] [--seed 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evif_ros.sim.recording import psnr_counts
from evif_ros.sim.rig import EventChunk, IrFrame, Rig, RigConfig
from evif_ros.sim.scenarios import SCENARIOS
from evif_ros.sim.thermal import SYNTHETIC_IR_TO_DAVIS, ThermalConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    thermal = ThermalConfig(ir_to_davis=tuple(map(tuple, SYNTHETIC_IR_TO_DAVIS)))
    print("| scenario | sub-frame rate (Hz) | MEv/s | blurry-IR PSNR (dB) | sim s / wall s |")
    print("|---|---|---|---|---|")
    for name in SCENARIOS:
        rig = Rig(RigConfig(scenario=name, seed=args.seed, thermal=thermal))
        n, psnr = 0, []
        t0 = time.perf_counter()
        for rec in rig.run(args.duration):
            if isinstance(rec, EventChunk):
                n += rec.events.size
            elif isinstance(rec, IrFrame):
                psnr.append(psnr_counts(rec.counts, rec.sharp_counts))
        wall = time.perf_counter() - t0
        print(f"| {name} | {rig.render_hz:.0f} | {n / args.duration / 1e6:.2f} | "
              f"{np.mean(psnr):.1f} | {args.duration / wall:.2f} |", flush=True)


if __name__ == "__main__":
    main()
