"""Per-frame latency of the inference path at 346x260, by stage (warp + voxelization,
model incl. copies back to host), on CPU or GPU, against a FireNet pass timed in the same
run, with the model's multiply-accumulates per frame.

Run: .venv/bin/python scripts/bench_inference.py [--model models/evif_rt.ts]
     [--device auto] [--frames 30] [--threads 0] [--precision fp32|fp16]
     [--sizes rt2,rt,lite,gpu,paper]   (GMAC per frame of each size, from the model code)
     [--whole-windows]

The windows' events are binned as their packets arrive, as `evif_node` bins them (its
`prebin` parameter, on in config/rig.yaml): what is left when the exposure closes is the last
packet's binning (0.2 ms at 150k events, `bench_voxel.py`), so "voxelize" here is the IR
warp and the copies. `--whole-windows` bins each window at once after it closes (`prebin:
false`, and what `evif eval` and the benchmarks before 2026-12-03 timed): 5-8 ms more.

FireNet (Scheerlinck et al. 2020, random weights) and the model alternate frame by frame,
so both see the same machine load, in the same process (the runtime's allocator settings)
and the same memory layout (channels-last on CPU); the ratio of their p50s is the real-time
yardstick.
End to end (exposure end -> outputs) = the IR frame's arrival delay after its exposure
(from its host stamp) + voxelize + model, for a pipeline that keeps up.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import numpy as np
import torch

from evif_ros.paths import share_file
from evif_ros.runtime.calibration import load_calibration
from evif_ros.runtime.feeder import WindowFeeder
from evif_ros.runtime.inference import EvifRunner
from evif_ros.sim.rig import Rig, rig_windows, synthetic_rig_config


def windows(seconds: float, k: int, calib, prebin: bool = True):
    """Windows of the synthetic rig, through the node's front end (time offset included),
    binned as their packets arrive unless ``prebin`` is False; every window keeps its own
    grid buffer (the node's pool of 6 is enough when windows are released as they are
    run, not when a benchmark holds them all)."""
    rig = Rig(synthetic_rig_config({"scenario": "day", "seed": 3, "aligned": False}))
    buffers = int(seconds * 30) + 8
    return rig_windows(rig.run(seconds), WindowFeeder(calib, k, prebin=prebin,
                                                      max_grids=buffers))


def gmac_per_frame(sizes: list[str], h: int = 260, w: int = 346) -> dict:
    """GMAC of a pass with the recurrent state carried (the node's steady state: from a
    reset state FireNet's ConvGRUs skip half their work)."""
    from evif_ros.learning.cost import count_macs
    from evif_ros.learning.firenet import FireNet
    from evif_ros.learning.pipeline import config_for
    net = FireNet().eval()
    voxel = torch.zeros(1, 5, h, w)
    with torch.no_grad():
        state = net(voxel, [])[1]
    out = {"FireNet": count_macs(net, voxel, state) / 1e9}
    for size in sizes:
        out[size] = pipeline_gmac(config_for(size), h, w)
    return out


def pipeline_gmac(cfg, h: int, w: int) -> float:
    """GMAC of one pass of the pipeline built from ``cfg``, state carried."""
    from evif_ros.learning.cost import count_macs
    from evif_ros.learning.pipeline import EvifPipeline
    model = EvifPipeline(cfg).eval()
    inputs = (torch.zeros(1, 1, h, w), torch.zeros(1, 10, h, w),
              torch.zeros(1, cfg.sub_windows, 10, h, w))
    with torch.no_grad():
        state = model(*inputs, [])[3]
    return count_macs(model, *inputs, state) / 1e9


def model_gmac(runner: EvifRunner, h: int, w: int) -> float:
    """MACs of the loaded model's own configuration (rebuilt eagerly from its metadata)."""
    from evif_ros.learning.pipeline import EvifConfig
    return pipeline_gmac(EvifConfig(**runner.meta["config"]), h, w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    ap.add_argument("--sizes", default="rt2,rt,lite,gpu,paper",
                    help="model sizes whose GMAC per frame to report ('' = none)")
    ap.add_argument("--whole-windows", action="store_true",
                    help="bin each window at once after it closes (prebin: false)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit's notices
    if args.threads:
        torch.set_num_threads(args.threads)
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    model = args.model or share_file("models", "evif_rt.ts")
    runner = EvifRunner(model, calib, args.device, args.precision)
    dev, k = runner.device, runner.k
    wins = windows(args.frames / 30 + 0.1, k, calib, not args.whole_windows)[: args.frames]
    binned = sum(w.grids is not None for w in wins)
    from evif_ros.learning.firenet import FireNet
    firenet = torch.jit.script(FireNet().eval()).to(dev)
    w, h = calib.davis_size
    fire_in = torch.rand(1, 5, h, w, device=dev)
    if runner.channels_last:  # the reference gets the runtime's layout too
        firenet.to(memory_format=torch.channels_last)
        fire_in = fire_in.contiguous(memory_format=torch.channels_last)
    lat = {s: [] for s in ("voxelize", "model", "total", "FireNet pass", "end to end")}
    warm = 2 if dev == "cpu" else 10  # CUDA: cuDNN autotuning and TorchScript profiling runs
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    fire_state: list = []  # carried, as the node carries the model's state
    with torch.no_grad():
        for i, win in enumerate(wins[:warm] + wins):
            t0 = time.perf_counter()
            res = runner.run(win)
            total = (time.perf_counter() - t0) * 1e3
            t1 = time.perf_counter()
            _, fire_state = firenet(fire_in, fire_state)
            sync()
            fire_ms = (time.perf_counter() - t1) * 1e3
            if i >= warm:
                lat["voxelize"].append(res.timings_ms["voxelize"])
                lat["model"].append(res.timings_ms["model"])
                lat["total"].append(total)
                lat["FireNet pass"].append(fire_ms)
                # the frame's own arrival delay after its exposure end (event clock)
                arrival = win.host_ns + calib.time_offset_ns - win.t_start_ns - win.exposure_ns
                lat["end to end"].append(arrival / 1e6 + total)
    name = torch.cuda.get_device_name() if dev.startswith("cuda") else platform.processor() \
        or platform.machine()
    print(f"device: {dev} ({name}), {args.precision}, torch threads {torch.get_num_threads()}, "
          f"model {model} (K={k}), {len(lat['total'])} frames at {w}x{h}, "
          f"{binned} of {len(wins)} binned as their packets arrived")
    print("| stage | p50 (ms) | p95 (ms) |\n|---|---|---|")
    for s, v in lat.items():
        print(f"| {s} | {np.percentile(v, 50):.1f} | {np.percentile(v, 95):.1f} |")
    ratio = np.percentile(lat["total"], 50) / np.percentile(lat["FireNet pass"], 50)
    print(f"per frame / FireNet pass (p50): {ratio:.2f}x")
    p95 = np.percentile(lat["total"], 95)
    print(f"keeps up with a 30 Hz IR camera (p95 <= 33.3 ms): {'yes' if p95 <= 33.3 else 'no'}"
          f" (sustainable {1000 / np.percentile(lat['total'], 50):.1f} frames/s at p50)")
    sizes = [s for s in args.sizes.split(",") if s]
    gmac = gmac_per_frame(sizes) if sizes else {}
    if gmac:
        print("| network | GMAC per frame at 346x260 |\n|---|---|")
        for n, g in gmac.items():
            print(f"| {n} | {g:.2f} |")
    print(json.dumps({"ms": {s: [round(float(np.percentile(v, 50)), 2),
                                 round(float(np.percentile(v, 95)), 2)] for s, v in lat.items()},
                      "ratio_p50": round(float(ratio), 3),
                      "gmac_model": round(model_gmac(runner, h, w), 3),
                      "gmac": {n: round(g, 3) for n, g in gmac.items()}}))


if __name__ == "__main__":
    main()
