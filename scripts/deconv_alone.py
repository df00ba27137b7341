"""The event-guided motion deconvolution alone (evif_ros.learning.motion, no network) on a
dataset split: IR PSNR of the blurry frame and of the deconvolved one, kept wherever the
deconvolution keeps it ("everywhere", EvifConfig.motion_gate False) and only near the
exposure's events ("near events", the gate the deblurring network applied until
2026-12-03), for the paper's blur (lag 0) and a microbolometer's lag; per scenario. Scored
as `evif eval` scores IR PSNR (8-bit, the blurry frame's 0.5-99.5 % range).

Usage: python scripts/deconv_alone.py --data data/microbolometer/test_pairs [--split test]
       [--limit 200] [--every 1] [--lag-ms 0 8 10] [--exposure-ms 25]
       [--border 2 5] [--lam-scale 1 0.5] [--tile 144 --stride 64]

--border N...: also deconvolve up to the frame's border, the blur of what lies outside it
modelled (MotionDeconv(border_iters=N), EvifConfig.motion_border), with each N, and each
weight of --lam-scale (the regularisation lam_short / lam, both scaled).

--tile: also deconvolve overlapping tiles each with their own motion (local paths, for
roll and parallax), blended with a squared-sine window.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from evif_ros.evaluation.deblur_study import Validation, frame_psnr, scenario_table
from evif_ros.learning.deblur import event_gate
from evif_ros.learning.motion import MotionDeconv
from evif_ros.sim.dataset import iter_samples


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    starts = list(range(0, length - tile + 1, stride))
    return starts if starts[-1] == length - tile else starts + [length - tile]


def tiled(md: MotionDeconv, x: torch.Tensor, v: torch.Tensor, tile: int, stride: int
          ) -> torch.Tensor:
    """Each tile deconvolved with its own motion, blended by a squared-sine window."""
    ramp = np.maximum(np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2, 1e-3)
    win = torch.from_numpy(np.outer(ramp, ramp).astype(np.float32))
    acc, total = torch.zeros_like(x), torch.zeros_like(x)
    for y0 in tile_starts(x.shape[2], tile, stride):
        for x0 in tile_starts(x.shape[3], tile, stride):
            cut = (slice(None), slice(None), slice(y0, y0 + tile), slice(x0, x0 + tile))
            acc[cut] += md(x[cut], v[cut])[0] * win
            total[cut] += win
    return acc / total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a split directory (test_pairs)")
    ap.add_argument("--split", default="test", help="its shards' prefix (test or train)")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--every", type=int, default=1, help="score every N-th sample")
    ap.add_argument("--border", type=int, nargs="*", default=[])
    ap.add_argument("--lam-scale", type=float, nargs="+", default=[1.0])
    ap.add_argument("--lag-ms", type=float, nargs="+", default=[0.0])
    ap.add_argument("--exposure-ms", type=float, default=25.0)
    ap.add_argument("--tile", type=int, default=0)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if not a.data.is_dir():
        print(f"deconv_alone: {a.data}: no such directory", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    methods = {f"lag {lag:g} ms": MotionDeconv(7, curved=True, lag=lag / a.exposure_ms)
               for lag in a.lag_ms}
    bordered = {f"lag {lag:g} ms, to the border, {n} steps"
                + (f", lam x{k:g}" if k != 1.0 else ""):
                MotionDeconv(7, curved=True, lag=lag / a.exposure_ms, border_iters=n,
                             lam=0.3 * k, lam_short=0.1 * k)
                for lag in a.lag_ms for n in a.border for k in a.lam_scale}
    scores: dict[str, list[float]] = {"blurry": []}
    scenarios: list[str] = []
    times: dict[str, list[float]] = {}  # s per frame, estimate and deconvolution
    t0 = time.time()
    with torch.no_grad():
        for i, s in enumerate(iter_samples(a.data, a.split)):
            if i >= a.limit:
                break
            if i % a.every:
                continue
            x, counts, ref, h, w, blurry = Validation([s]).items[0]
            v = torch.log1p(counts)  # as the network takes them
            gate = event_gate(v)
            scenarios.append(s["scenario"])
            scores["blurry"].append(blurry)
            for name, md in methods.items():
                t1 = time.perf_counter()
                out = {"everywhere": md(x, v)[0]}
                times.setdefault(f"{name}, everywhere", []).append(time.perf_counter() - t1)
                out["near events"] = x + gate * (out["everywhere"] - x)
                if a.tile:
                    out[f"tiles {a.tile}/{a.stride}"] = tiled(md, x, v, a.tile, a.stride)
                for kind, y in out.items():
                    scores.setdefault(f"{name}, {kind}", []).append(
                        frame_psnr(y[0, 0, :h, :w].numpy(), ref))
            for name, md in bordered.items():
                t1 = time.perf_counter()
                y = md(x, v)[0]
                times.setdefault(name, []).append(time.perf_counter() - t1)
                scores.setdefault(name, []).append(frame_psnr(y[0, 0, :h, :w].numpy(), ref))
            if len(scenarios) % 50 == 0:
                print(f"{len(scenarios)} samples, {len(scenarios) / (time.time() - t0):.1f}/s",
                      file=sys.stderr)
    print(f"{a.data} ({a.split}), {len(scenarios)} samples\n")
    print(scenario_table(scores, scenarios, "deconvolution"))
    print(f"\nms per frame (the events' path and the deconvolution, p50, {a.threads} "
          "thread(s), the frame padded as the pipeline pads it):\n")
    for name, t in times.items():
        print(f"- {name}: {1000 * float(np.median(t)):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
