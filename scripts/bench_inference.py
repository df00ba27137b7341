"""Per-frame latency of the inference path at 346x260, by stage (warp + voxelization,
model incl. copies back to host), on CPU or GPU, with the shipped (or a given) model.

Run: .venv/bin/python scripts/bench_inference.py [--model models/evif_lite.ts]
     [--device auto] [--frames 30] [--threads 0]
Reports p50/p95 per stage and whether the pipeline keeps up with a 30 Hz IR camera.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from evif_ros.core.calibration import load_calibration
from evif_ros.core.sync import ExposureSynchronizer, SyncConfig
from evif_ros.inference import EvifRunner
from evif_ros.paths import share_file
from evif_ros.sim.rig import EventChunk, IrFrame, Rig, Trigger, synthetic_rig_config


def windows(seconds: float, k: int, calib):
    sync = ExposureSynchronizer(SyncConfig(exposure_ns=calib.ir_exposure_ns,
                                           latency_ns=calib.ir_latency_ns, sub_windows=k))
    out = []
    rig = Rig(synthetic_rig_config({"scenario": "day", "seed": 3, "aligned": False}))
    for rec in rig.run(seconds):
        if isinstance(rec, EventChunk):
            out += sync.add_events(rec.events)
        elif isinstance(rec, Trigger):
            out += sync.add_trigger(rec.t_ns)
        elif isinstance(rec, IrFrame):
            out += sync.add_frame(rec.counts, rec.host_ns)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    runner = EvifRunner(args.model or share_file("models", "evif_lite.ts"), calib, args.device,
                        args.precision)
    dev, k = runner.device, runner.k
    wins = windows(args.frames / 30 + 0.1, k, calib)[: args.frames]
    lat = {s: [] for s in ("voxelize", "model", "total")}
    warm = 2 if dev == "cpu" else 10  # CUDA: cuDNN autotuning and TorchScript profiling runs
    for i, w in enumerate(wins[:warm] + wins):
        t0 = time.perf_counter()
        res = runner(w.image, w.events, w.t_start_ns, w.exposure_ns, w.recon_edges_ns)
        total = (time.perf_counter() - t0) * 1e3
        if i >= warm:
            lat["voxelize"].append(res.timings_ms["voxelize"])
            lat["model"].append(res.timings_ms["model"])
            lat["total"].append(total)
    name = torch.cuda.get_device_name() if dev.startswith("cuda") else platform.processor() \
        or platform.machine()
    print(f"device: {dev} ({name}), {args.precision}, torch threads {torch.get_num_threads()}, "
          f"model K={k}, {len(lat['total'])} frames at 346x260")
    print("| stage | p50 (ms) | p95 (ms) |\n|---|---|---|")
    for s, v in lat.items():
        print(f"| {s} | {np.percentile(v, 50):.1f} | {np.percentile(v, 95):.1f} |")
    p95 = np.percentile(lat["total"], 95)
    print(f"keeps up with a 30 Hz IR camera (p95 <= 33.3 ms): {'yes' if p95 <= 33.3 else 'no'}"
          f" (sustainable {1000 / np.percentile(lat['total'], 50):.1f} frames/s at p50)")
    print(json.dumps({s: [round(float(np.percentile(v, 50)), 2),
                          round(float(np.percentile(v, 95)), 2)] for s, v in lat.items()}))


if __name__ == "__main__":
    main()
