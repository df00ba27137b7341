"""Timing checks of the visible reconstruction (see
docs/experiments/2026-12-03-real-timing-and-gaps.md and 2026-12-03-event-latency.md).

aps RECORDING: do a recording's APS frame times and its events agree? Two model-free
  curves over offsets: (1) the mean correlation, over consecutive frame pairs, of the
  smoothed APS log change with the smoothed net event count between their mid-exposures
  moved by the offset (`evif contrast`'s threshold fit, `rigcal.contrast.pair_slope`):
  broad, and biased where a recording keeps only each exposure's events (a simulated one
  made like `cups`, whose truth is 0, peaks at +5 to +10 ms); (2) the event latency
  estimate's (`evaluation.latency`, what `evif contrast` reports): the event count around
  each mid-exposure plus the offset against the frame's edges, which peaks at the delay.
lag MODEL: does the model's image trail its events? Visible SSIM with the events of one or
  more sub-windows past each frame fed in (the reconstruction's windows moved later by whole
  sub-windows), on the simulated 30 Hz stop-and-go recordings (moving windows only, the
  sensor's threshold told) and on held-out video sequences.
like MODEL: the same offsets as `evif eval-real --aps-offset-ms`, on a simulated recording
  made like `cups` (the synthetic rig, its APS exposed 104 ms every 122.3 ms, a 0.46
  threshold, and with --gaps only the events inside the exposures kept): where do EVIF and
  leaky event integration peak when the frames' times are known to be right? Both peaking
  later on the real recording than here says the offset is the recording's (its events or
  its frame times), not something a model does with real events. --tau-ms gives the
  simulated pixels a latency (a photoreceptor time constant), which `evif contrast`'s
  latency estimate (printed) should find and the scores' peak follow.

Usage: python scripts/timing_checks.py aps ../shared/data/real_davis/cups [--offsets-ms ...]
       python scripts/timing_checks.py lag models/evif_rt.ts [--pairs DIR] [--video DIR]
       python scripts/timing_checks.py like models/evif_rt.ts [--gaps] [--scenario day]
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
    from evif_ros.evaluation.latency import estimate_latency

    print(f"{args.recording}: {len(rec.frames)} APS frames\n")
    offsets = np.array(args.offsets_ms) * 1e6
    lat = estimate_latency(rec.events, [(f.image, f.mid_ns) for f in rec.frames], h, w,
                           args.recording, offsets_ns=offsets)
    print("| offset (ms) | log change vs net events | event count vs edges |\n|---|---|---|")
    for off_ms, edge in zip(args.offsets_ms, lat.correlations):
        off = int(round(off_ms * 1e6))
        corr = [pair_slope(f0.image, f1.image,
                           voxel_grid(rec.events, 1, f0.mid_ns + off, f1.mid_ns + off, h, w)[0])[1]
                for f0, f1 in zip(rec.frames[:-1], rec.frames[1:])]
        print(f"| {off_ms:+g} | {np.nanmean(corr):.4f} | {edge:.4f} |")
    print(f"\nlatency estimate: {lat.summary()}")


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


def like(args: argparse.Namespace) -> None:
    from evif_ros.evaluation.latency import estimate_latency
    from evif_ros.evaluation.real import evaluate_recording
    from evif_ros.evaluation.real_recording import ApsFrame, RealRecording
    from evif_ros.runtime.events import merge_sorted
    from evif_ros.sim.aps import ApsConfig
    from evif_ros.sim.rig import ApsFrame as RigAps
    from evif_ros.sim.rig import EventChunk, Rig, RigConfig

    exposure, period = 104_000_000, 122_300_000  # `cups`' frames
    c = args.sensor_contrast
    # a fixed exposure: the gain scaled from the auto-exposed ~5 ms frames' so the frames
    # are not clipped
    cfg = RigConfig(scenario=args.scenario, seed=args.seed,
                    aps=ApsConfig(rate_hz=1e9 / period, gain_dn=ApsConfig.gain_dn * 5e6 / exposure,
                                  min_exposure_ns=exposure, max_exposure_ns=exposure),
                    dvs=DvsConfig(c_on=c, c_off=c, photoreceptor_tau_ns=int(args.tau_ms * 1e6)))
    chunks, frames = [], []
    for r in Rig(cfg).run(args.duration):
        if isinstance(r, EventChunk):
            chunks.append(r.events)
        elif isinstance(r, RigAps):
            frames.append(ApsFrame(r.image, r.t_ns, r.t_ns + r.exposure_ns))
    ev = merge_sorted(*chunks)
    if args.gaps:  # only the events inside the exposures, as `cups` holds them
        keep = np.zeros(ev.size, bool)
        for f in frames:
            a, b = np.searchsorted(ev["t"], [f.start_ns, f.end_ns])
            keep[a:b] = True
        ev = ev[keep]
    rec = RealRecording(Path(f"rig:{args.scenario}"), ev, frames[1:], 346, 260)
    print(f"simulated `{args.scenario}`, {len(rec.frames)} APS frames of 104 ms, C = {c:g}"
          f"{', events inside the exposures only' if args.gaps else ''}"
          f"{f', {args.tau_ms:g} ms photoreceptors' if args.tau_ms else ''}")
    lat = estimate_latency(rec.events, [(f.image, f.mid_ns) for f in rec.frames], 260, 346)
    print(f"`evif contrast`'s latency estimate: {lat.summary()}\n")
    print("| offset (ms) | EVIF | leaky integration |\n|---|---|---|")
    out = Path(args.out)
    for off_ms in args.offsets_ms:
        r = evaluate_recording(Path(args.model), rec, out / f"{off_ms:+g}", progress=False,
                               contrast=c, aps_offset_ns=int(round(off_ms * 1e6)))
        print(f"| {off_ms:+g} | {r.summary('evif')[0]:.3f} | "
              f"{r.summary('integration')[0]:.3f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("aps")
    p.add_argument("recording")
    p.add_argument("--offsets-ms", type=float, nargs="+",
                   default=[-20, -10, -5, 0, 5, 10, 15, 20, 25, 30, 40])
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
    p = sub.add_parser("like")
    p.add_argument("model")
    p.add_argument("--scenario", default="day")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=3.0, help="seconds")
    p.add_argument("--sensor-contrast", type=float, default=0.46)
    p.add_argument("--gaps", action="store_true", help="keep only the exposures' events")
    p.add_argument("--tau-ms", type=float, default=0.0,
                   help="the simulated pixels' photoreceptor time constant (0: ideal)")
    p.add_argument("--offsets-ms", type=float, nargs="+", default=[-10, 0, 10, 20, 30])
    p.add_argument("--out", default="runs/timing_like", help="eval-real's outputs per offset")
    p.set_defaults(func=like)
    a = ap.parse_args()
    torch.set_num_threads(2)
    a.func(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
