"""``evif simulate``, ``evif dataset``, ``evif sim-report``: the synthetic rig's recordings,
training samples and its sanity report."""

from __future__ import annotations

import argparse
from pathlib import Path

from evif_ros.apps.commands.argtypes import (
    COUNT,
    FRACTION,
    NATURAL,
    NONNEGATIVE,
    POSITIVE,
    SEED,
    number,
)
from evif_ros.errors import EvifError


def _simulate(args: argparse.Namespace) -> None:
    from evif_ros.sim.recording import simulate_recording
    from evif_ros.sim.rig import RigConfig
    from evif_ros.sim.thermal import SYNTHETIC_IR_TO_DAVIS, ThermalConfig

    if args.duration <= 0:
        raise EvifError(f"--duration must be positive, got {args.duration}")
    if args.scenario == "calibration":
        return _simulate_calibration(args)
    thermal = ThermalConfig(tau_ms=args.ir_tau_ms)
    if not args.aligned:
        thermal = ThermalConfig(tau_ms=args.ir_tau_ms,
                                ir_to_davis=tuple(map(tuple, SYNTHETIC_IR_TO_DAVIS)))
    cfg = RigConfig(scenario=args.scenario, seed=args.seed, thermal=thermal,
                    missed_pulse_prob=args.missed_pulses, dropped_frame_prob=args.dropped_frames,
                    pairs_dir=str(Path(args.pairs).resolve()) if args.pairs else "",
                    image=args.image, motion_scale=args.motion_scale)
    stats = simulate_recording(Path(args.out), args.duration, cfg, progress=not args.quiet)
    if stats.image:
        print(f"scene: image pair {stats.image} of {args.pairs}")
    print(f"wrote {args.out}/rig.mcap and {args.out}/davis.aedat4: {stats.events} events "
          f"({stats.event_rate_mev_s:.2f} MEv/s, {stats.on_events / max(stats.events, 1):.0%} ON), "
          f"{stats.ir_frames} IR frames, {stats.aps_frames} APS frames; simulated "
          f"{stats.sim_speed:.2f} s per wall second")
    if args.preview:
        from evif_ros.sim.preview import bag_preview
        png = Path(args.out) / "preview.png"
        bag_preview(Path(args.out) / "rig", png, thermal.exposure_ns)
        print(f"wrote {png}")


def _simulate_calibration(args: argparse.Namespace) -> None:
    from evif_ros.sim.calibration import CalibrationRigConfig, simulate_calibration

    cfg = CalibrationRigConfig(duration_s=args.duration, seed=args.seed,
                               aps_exposure_ns=int(round(args.aps_exposure_ms * 1e6)),
                               # a frame's exposure ends before the next one starts
                               aps_rate_hz=min(30.0, 1000.0 / (1.1 * args.aps_exposure_ms)),
                               events=not args.no_events)
    st = simulate_calibration(Path(args.out), cfg, progress=not args.quiet)
    print(f"wrote {args.out}/rig.mcap: a heated checkerboard moved by hand, {st.aps_frames} "
          f"APS frames ({args.aps_exposure_ms:g} ms), {st.ir_frames} thermal frames, "
          f"{st.ir_frames} triggers, {st.events} events; true parameters in "
          f"{args.out}/ground_truth.yaml and {args.out}/ground_truth_calibration.yaml "
          f"({st.wall_s:.0f} s)")


def _dataset(args: argparse.Namespace) -> None:
    from evif_ros.sim.dataset import DatasetConfig, write_dataset

    cfg = DatasetConfig(pairs_dir=str(Path(args.pairs).resolve()) if args.pairs else "",
                        procedural_fraction=args.procedural_fraction,
                        randomize_dvs=args.randomize_dvs, motion_scale=args.motion_scale,
                        warmup_frames=args.warmup_frames,
                        frame_period_ns=int(round(1e6 * args.frame_period_ms)),
                        width=args.sensor[0], height=args.sensor[1],
                        exposure_ns=int(round(1e6 * args.exposure_ms)),
                        ir_tau_ms=tuple(args.ir_tau_ms))
    paths = write_dataset(Path(args.out), args.split, args.samples, args.seed,
                          shard_size=args.shard_size, workers=args.workers, cfg=cfg,
                          progress=not args.quiet)
    print(f"{args.split}: {args.samples} samples in {len(paths)} shards under {args.out}")


def _sim_report(args: argparse.Namespace) -> None:
    if args.pairs:
        return _sim_report_pairs(args)
    from evif_ros.sim.preview import bag_preview
    from evif_ros.sim.recording import simulate_recording
    from evif_ros.sim.rig import RigConfig
    from evif_ros.sim.thermal import SYNTHETIC_IR_TO_DAVIS, ThermalConfig

    out = Path(args.out)
    thermal = ThermalConfig(ir_to_davis=tuple(map(tuple, SYNTHETIC_IR_TO_DAVIS)))
    print("| scenario | events | MEv/s | ON share | IR frames | blurry-IR PSNR (dB) | "
          "APS pixels < 16 DN | sim s / wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.scenarios:
        st = simulate_recording(out / name, args.duration,
                                RigConfig(scenario=name, seed=args.seed, thermal=thermal),
                                progress=False)
        bag_preview(out / name / "rig", out / name / "preview.png", thermal.exposure_ns)
        psnr = sum(st.ir_psnr_db) / max(len(st.ir_psnr_db), 1)
        dark = sum(st.aps_underexposed) / max(len(st.aps_underexposed), 1)
        print(f"| {name} | {st.events} | {st.event_rate_mev_s:.2f} | "
              f"{st.on_events / max(st.events, 1):.0%} | {st.ir_frames} | {psnr:.1f} | "
              f"{dark:.0%} | {st.sim_speed:.2f} |", flush=True)
    print(f"previews: {out}/<scenario>/preview.png")


def _sim_report_pairs(args: argparse.Namespace) -> None:
    from evif_ros.sim.report import compare_sources, markdown, preview_grid

    if args.samples <= 0:
        raise EvifError(f"--samples must be positive, got {args.samples}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, examples = compare_sources(Path(args.pairs), args.scenarios, args.samples, args.seed,
                                     args.motion_scale)
    table = markdown(rows)
    print(table)
    (out / "sources.md").write_text(table + "\n")
    preview_grid(examples, out / "pairs_preview.png")
    print(f"table: {out}/sources.md; preview grid: {out}/pairs_preview.png")


def register(sub) -> None:
    from evif_ros.sim.scenarios import PAIR_MOTION_SCALE, SCENARIOS

    p = sub.add_parser("simulate", help="record the synthetic rig to rig.mcap + davis.aedat4")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--duration", type=POSITIVE, default=2.0, help="seconds of rig time")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--scenario", default="day",
                   help=f"one of {', '.join(SCENARIOS)}, or calibration (a heated "
                        "checkerboard moved in front of the rig, for evif calibrate --bag)")
    p.add_argument("--aps-exposure-ms", type=POSITIVE, default=8.0,
                   help="calibration scenario: the APS exposure (100 = a hand-held blur test)")
    p.add_argument("--no-events", action="store_true",
                   help="calibration scenario: frames and triggers only (5x faster)")
    p.add_argument("--aligned", action="store_true",
                   help="IR camera on the DAVIS grid (default: misaligned, needs calibration)")
    p.add_argument("--ir-tau-ms", type=NONNEGATIVE, default=0.0,
                   help="microbolometer time constant (0: average of 7 sharp sub-frames)")
    p.add_argument("--missed-pulses", type=FRACTION, default=0.0, help="probability per trigger")
    p.add_argument("--dropped-frames", type=FRACTION, default=0.0, help="probability per frame")
    p.add_argument("--pairs", default="", help="folder of registered image pairs (vi/, ir/): "
                   "a real scene under synthesized motion instead of the procedural world")
    p.add_argument("--motion-scale", type=NONNEGATIVE, default=PAIR_MOTION_SCALE,
                   help="with --pairs: camera and sprite speeds are the scenario's times this "
                   "(default %(default)s: the paper's blur level)")
    p.add_argument("--image", default="", help="with --pairs: the pair's file name "
                   "(default: drawn from --seed)")
    p.add_argument("--preview", action="store_true", help="also write preview.png")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("dataset", help="write training/test samples in shards")
    p.add_argument("--out", required=True)
    p.add_argument("--split", required=True, choices=["train", "test"])
    p.add_argument("--samples", type=COUNT, required=True)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--shard-size", type=COUNT, default=32)
    p.add_argument("--workers", type=COUNT, default=None, help="processes (default: cores)")
    p.add_argument("--pairs", default="", help="folder of registered image pairs (vi/, ir/); "
                   "each split draws only from its own images")
    p.add_argument("--motion-scale", type=NONNEGATIVE, default=PAIR_MOTION_SCALE,
                   help="with --pairs: camera and sprite speeds are the scenario's times this "
                   "(default %(default)s: the paper's blur level)")
    p.add_argument("--procedural-fraction", type=FRACTION, default=0.0,
                   help="with --pairs: share of samples from the procedural world")
    p.add_argument("--randomize-dvs", action="store_true", help="draw contrast thresholds, "
                   "noise and hot pixels per sample over a real DAVIS346's range")
    p.add_argument("--warmup-frames", type=NATURAL, default=0,
                   help="sequence samples: also the events of this many earlier IR frames, "
                   "so training carries the reconstruction state into each exposure")
    p.add_argument("--frame-period-ms", type=POSITIVE, default=1e3 / 30,
                   help="IR frame period of the earlier frames (default: 30 Hz)")
    p.add_argument("--sensor", type=number(int, 64, 1280, multiple=2), nargs=2,
                   default=(346, 260), metavar=("W", "H"),
                   help="event-camera size (both cameras share its grid); default DAVIS346")
    p.add_argument("--exposure-ms", type=number(float, 1.0, 200.0), default=25.0,
                   help="IR exposure (default %(default)s)")
    p.add_argument("--ir-tau-ms", type=NONNEGATIVE, nargs=2, default=(0.0, 0.0),
                   metavar=("LO", "HI"),
                   help="microbolometer blur: a thermal time constant drawn per sample from "
                        "[LO, HI] ms (uncooled cameras: 8 12); default: the paper's 7-frame "
                        "average")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_dataset)

    p = sub.add_parser("sim-report", help="simulate every scenario: event rates, blurry-IR "
                       "PSNR, APS exposure, simulator speed, previews")
    p.add_argument("--out", default="demo_out/sim")
    p.add_argument("--duration", type=POSITIVE, default=1.0)
    p.add_argument("--seed", type=SEED, default=7)
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS),
                   choices=list(SCENARIOS))
    p.add_argument("--pairs", default="", help="folder of image pairs (vi/, ir/): compare "
                   "that source with the procedural one on test-split exposures")
    p.add_argument("--motion-scale", type=NONNEGATIVE, default=PAIR_MOTION_SCALE,
                   help="with --pairs: camera and sprite speeds are the scenario's times this "
                   "(default %(default)s: the paper's blur level)")
    p.add_argument("--samples", type=COUNT, default=16,
                   help="with --pairs: exposures per scenario and source")
    p.set_defaults(func=_sim_report)
