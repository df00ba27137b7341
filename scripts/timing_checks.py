"""Timing checks of the visible reconstruction (see
docs/experiments/2026-12-03-real-timing-and-gaps.md).

aps RECORDING: do a recording's APS frame times and its events agree? For each offset, the
  mean correlation, over consecutive frame pairs, of the smoothed APS log change with the
  smoothed net event count between their mid-exposures moved by the offset (`evif
  contrast`'s fit, `rigcal.contrast.pair_slope`); it peaks where frames and events agree,
  whatever a model does.
lag MODEL: does the model's image trail its events? Visible SSIM with the events of one or
  more sub-windows past each frame fed in (the reconstruction's windows moved later by whole
  sub-windows), on the simulated 30 Hz stop-and-go recordings (moving windows only, the
  sensor's threshold told) and on held-out video sequences.

Usage: python scripts/timing_checks.py aps ../shared/data/real_davis/cups [--offsets-ms ...]
       python scripts/timing_checks.py lag models/evif_rt.ts [--pairs DIR] [--video DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from evif_ros.evaluation.metrics import structural_similarity
from evif_ros.evaluation.real_recording import load_recording
from evif_ros.evaluation.stopgo import load_visible_model, run_visible
from evif_ros.rigcal.contrast import pair_slope
from evif_ros.runtime.voxel import voxel_grid
from evif_ros.sim.dvs import DvsConfig
from evif_ros.sim.pairs import PairLibrary
from evif_ros.sim.stopgo import KINDS, LIGHTS, PERIOD_NS, SENSOR_CONTRAST, stopgo_recording
from evif_ros.sim.video import iter_sequences

K = 6


def aps(args: argparse.Namespace) -> None:
    rec = load_recording(Path(args.recording))
    h, w = rec.height, rec.width
    print(f"{args.recording}: {len(rec.frames)} APS frames\n")
    print("| offset (ms) | mean correlation |\n|---|---|")
    for off_ms in args.offsets_ms:
        off = int(round(off_ms * 1e6))
        corr = [pair_slope(f0.image, f1.image,
                           voxel_grid(rec.events, 1, f0.mid_ns + off, f1.mid_ns + off, h, w)[0])[1]
                for f0, f1 in zip(rec.frames[:-1], rec.frames[1:])]
        print(f"| {off_ms:+g} | {np.nanmean(corr):.4f} |")


def shifted_ssim(module, counts: np.ndarray, frames: np.ndarray, lead: int, last: int,
                 first: int) -> list[float]:
    """SSIM of windows ``first..last-1``, each run on the K sub-windows ending ``lead``
    sub-windows after its frame, the state carried from a reset."""
    t, k = counts.shape[0], counts.shape[1]
    shifted = counts.reshape(t * k, *counts.shape[2:])[lead:lead + last * k]
    vis = run_visible(module, shifted.reshape(last, k, *counts.shape[2:]))
    return [structural_similarity(v, f) for v, f in zip(vis[first:], frames[first:last])]


def _field(text: str) -> tuple[str, float]:
    """``NAME=VALUE`` of a ``DvsConfig`` field (numbers; integers where the field is one)."""
    name, _, value = text.partition("=")
    default = getattr(DvsConfig, name, None)
    if default is None or not value:
        raise SystemExit(f"timing_checks: --sensor {text!r}: not NAME=VALUE of a DvsConfig field")
    return name, type(default)(float(value))


def lag(args: argparse.Namespace) -> None:
    leads = range(args.max_lead + 1)
    sub_ms = PERIOD_NS / K / 1e6
    told = load_visible_model(Path(args.model), K, args.sensor_contrast)
    lib = PairLibrary.open(args.pairs)
    print(f"{args.model}: visible SSIM with the reconstruction's windows moved later\n")
    head = " | ".join(f"+{m * sub_ms:.1f} ms" for m in leads)
    print(f"| stop-and-go (30 Hz, moving windows) | {head} |\n|---|" + "---|" * len(leads))
    means = np.zeros(len(leads))
    runs = [(kind, light) for kind in args.kinds.split(",") for light in LIGHTS]
    for kind, light in runs:
        row = [[] for _ in leads]
        for i, name in enumerate(lib.split("test")[:args.images]):
            rec = stopgo_recording(lib.load(name)[0], light, kind, seed=i, sensor={
                "photoreceptor_tau_ns": int(args.tau_ms * 1e6),
                "c_on": args.sensor_contrast, "c_off": args.sensor_contrast,
                **dict(_field(f) for f in args.sensor)})
            last = min(rec.stop_window, rec.counts.shape[0] - 1)
            for m in leads:
                row[m] += shifted_ssim(told, rec.counts, rec.frames, m, last, 6)
        vals = np.array([np.mean(r) for r in row])
        means += vals / len(runs)
        print(f"| {kind} {light} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
    print("| mean | " + " | ".join(f"{v:.4f}" for v in means) + " |")
    if args.no_video:
        return
    module = load_visible_model(Path(args.model), K)
    row = [[] for _ in leads]
    for n, q in enumerate(iter_sequences(Path(args.video), "test")):
        if n >= args.sequences:
            break
        t = q["counts"].shape[0]
        for m in leads:
            row[m] += shifted_ssim(module, q["counts"], q["frames"], m, t - 1, 3)
    print(f"\nheld-out video sequences ({args.sequences}, randomized periods), leads in "
          "sub-windows " + ", ".join(f"+{m}: {np.mean(r):.4f}" for m, r in zip(leads, row)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("aps")
    p.add_argument("recording")
    p.add_argument("--offsets-ms", type=float, nargs="+",
                   default=[-20, -10, -5, 0, 5, 10, 20])
    p.set_defaults(func=aps)
    p = sub.add_parser("lag")
    p.add_argument("model")
    p.add_argument("--pairs", default="../shared/data/roadscene")
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--video", default="data/video_test")
    p.add_argument("--sequences", type=int, default=24)
    p.add_argument("--max-lead", type=int, default=2, help="sub-windows")
    p.add_argument("--tau-ms", type=float, default=0.0,
                   help="the simulated pixels' photoreceptor time constant (0: ideal)")
    p.add_argument("--sensor-contrast", type=float, default=SENSOR_CONTRAST,
                   help="the simulated sensor's threshold (the model is told it)")
    p.add_argument("--sensor", action="append", default=[], metavar="FIELD=VALUE",
                   help="another DvsConfig field of the simulated sensor (repeat), e.g. "
                   "refractory_ns=2000000")
    p.add_argument("--kinds", default=",".join(KINDS), help="stop-and-go kinds to run")
    p.add_argument("--no-video", action="store_true", help="skip the video sequences")
    p.set_defaults(func=lag)
    a = ap.parse_args()
    torch.set_num_threads(2)
    a.func(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
