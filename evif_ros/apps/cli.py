"""The ``evif`` command line: one tool, one subcommand per job.

Errors of evif_ros (bad files, bad parameters) print one line and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evif_ros.apps.commands import eval_real, visible
from evif_ros.apps.commands.argtypes import (
    COUNT,
    CROP,
    FRACTION,
    NATURAL,
    NONNEGATIVE,
    POSITIVE,
    SEED,
    number,
)
from evif_ros.errors import ConfigError, EvifError

# literal so that building the parser does not import torch; test_model checks them
# against evif_ros.learning.pipeline.SIZES, evif_ros.learning.train.FUSION_OBJECTIVES and
# evif_ros.learning.losses.FUSION_TERMS
MODEL_SIZES = ("gpu", "lite", "paper", "rt", "rt2", "rt3")
FUSION_OBJECTIVES = ("paper", "salient", "sharp")
FUSION_TERMS = ("ssim", "mi", "nce", "int", "grad", "mi_px", "ssim_vis", "mi_px_vis")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (``evif train: error: argument --crop: ...``), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")





def _simulate(args: argparse.Namespace) -> None:
    from evif_ros.sim.recording import simulate_recording
    from evif_ros.sim.rig import RigConfig
    from evif_ros.sim.thermal import SYNTHETIC_IR_TO_DAVIS, ThermalConfig

    if args.duration <= 0:
        raise EvifError(f"--duration must be positive, got {args.duration}")
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


def _dataset(args: argparse.Namespace) -> None:
    from evif_ros.sim.dataset import DatasetConfig, write_dataset

    cfg = DatasetConfig(pairs_dir=str(Path(args.pairs).resolve()) if args.pairs else "",
                        procedural_fraction=args.procedural_fraction,
                        randomize_dvs=args.randomize_dvs, motion_scale=args.motion_scale,
                        warmup_frames=args.warmup_frames,
                        frame_period_ns=int(round(1e6 * args.frame_period_ms)),
                        width=args.sensor[0], height=args.sensor[1],
                        exposure_ns=int(round(1e6 * args.exposure_ms)))
    paths = write_dataset(Path(args.out), args.split, args.samples, args.seed,
                          shard_size=args.shard_size, workers=args.workers, cfg=cfg,
                          progress=not args.quiet)
    print(f"{args.split}: {args.samples} samples in {len(paths)} shards under {args.out}")


def _calibrate(args: argparse.Namespace) -> None:
    from evif_ros.runtime.calibration import Calibration, fit_homography, load_pairs

    ir_pts, davis_pts = load_pairs(Path(args.pairs))
    hom, rms, inliers = fit_homography(ir_pts, davis_pts, args.threshold)
    calib = Calibration(hom, tuple(args.davis_size), tuple(args.ir_size), args.exposure_ns,
                        args.time_offset_ns, tuple(args.latency_ns))
    calib.save(Path(args.out))
    print(f"homography from {int(inliers.sum())}/{inliers.size} inlier pairs: reprojection "
          f"error {rms:.3f} px RMS; wrote {args.out}")


def _record(args: argparse.Namespace) -> None:
    from evif_ros.ros.nodes.recorder import record

    counts = record(Path(args.out), args.topics, args.duration)
    total = sum(counts.values())
    print(f"wrote {args.out}: {total} messages on {len(counts)} topics "
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def _replay(args: argparse.Namespace) -> None:
    from evif_ros.ros.nodes.replayer import replay

    n = replay(Path(args.bag), args.rate, args.loop, args.delay, args.wait_for)
    print(f"replayed {n} messages from {args.bag}")


def _weights(text: str) -> tuple[float, ...]:
    """``W,W,W,...`` in the order of ``FUSION_TERMS``, or ``name=W,...`` (the others 0)."""
    items = text.split(",")
    try:
        if not any("=" in item for item in items):
            return tuple(float(w) for w in items)
        named = dict(item.split("=", 1) for item in items)
        unknown = sorted(set(named) - set(FUSION_TERMS))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown term {unknown[0]!r} in {text!r} (terms: "
                                             f"{', '.join(FUSION_TERMS)})")
        return tuple(float(named.get(t, 0.0)) for t in FUSION_TERMS)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers "
                                         "or of name=number") from None


def _train(args: argparse.Namespace) -> None:
    from evif_ros.learning.train import DEBLUR_WEIGHT, TrainArgs, train

    ckpt = train(TrainArgs(Path(args.data), Path(args.out), args.stage, args.size, args.iters,
                           args.batch, args.crop, args.lr, not args.no_enhance, not args.no_mi,
                           Path(args.init) if args.init else None, args.threads, args.seed,
                           limit=args.limit, freeze_tasks=args.freeze_tasks,
                           deblur_weight=(DEBLUR_WEIGHT if args.deblur_weight is None
                                          else args.deblur_weight),
                           decay_from=args.decay_from, device=args.device,
                           workers=args.workers, time_limit_min=args.time_limit,
                           fusion=args.fusion, fusion_weights=args.fusion_weights,
                           motion_taps=args.motion_taps, motion_curved=args.motion_curved,
                           deblur_act=args.deblur_act, enhance_level=args.enhance_level,
                           freeze_recon=args.freeze_recon),
                 progress=not args.quiet)
    print(f"stage {args.stage}: {ckpt}")


def _train_frame_deblur(args: argparse.Namespace) -> None:
    from evif_ros.learning.frame_deblur import train_frame_deblur

    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    out = train_frame_deblur(Path(args.data), Path(args.out), args.iters,
                             progress=not args.quiet)
    print(f"wrote {out}")


def _export(args: argparse.Namespace) -> None:
    from evif_ros.learning.export import export, rescript

    if args.checkpoint:
        info = export(Path(args.checkpoint), Path(args.out), motion_curved=args.motion_curved)
    elif args.motion_curved:
        raise ConfigError("--motion-curved needs --checkpoint (a file keeps its own setting)")
    else:
        info = rescript(Path(args.model), Path(args.out))
    print(f"wrote {args.out}: {info['parameters']} parameters, {info['bytes'] / 1e6:.1f} MB; "
          f"scripted vs eager max |diff| {info['max_diff']:.2e}"
          + (f"; against {args.model} {info['max_diff_old']:.2e}" if args.model else ""))


def _eval(args: argparse.Namespace) -> None:
    from evif_ros.evaluation.benchmark import evaluate_bag, evaluate_dataset
    from evif_ros.paths import ABLATION_MODEL, DEFAULT_MODEL, share_file

    model = Path(args.model) if args.model else share_file("models", DEFAULT_MODEL)
    out = Path(args.out)
    if args.bag:
        calib = Path(args.calibration) if args.calibration else share_file(
            "calibration", "synthetic_rig.yaml")
        evaluate_bag(Path(args.bag), out, model, calib, args.methods, not args.quiet)
        if (out / "ground_truth.md").is_file():  # a simulated recording
            print((out / "ground_truth.md").read_text())
    else:
        if args.only_evif:  # comparing models: no baselines, ablation or frame deblurring
            ablation, fdb, methods = None, None, []
        else:
            ablation = Path(args.ablation) if args.ablation else _shipped(ABLATION_MODEL)
            fdb = Path(args.frame_deblur) if args.frame_deblur else _shipped("frame_deblur.ts")
            methods = args.methods
        evaluate_dataset(Path(args.data), out, model, ablation, fdb, methods,
                         args.limit, not args.quiet, args.split)
        print((out / "table2.md").read_text())
        print((out / "table3.md").read_text())
    print((out / "table1.md").read_text())
    print(f"reports, plots and examples in {out}")


def _shipped(name: str):
    from evif_ros.errors import InputFileError
    from evif_ros.paths import share_file
    try:
        return share_file("models", name)
    except InputFileError:
        return None


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


def _rig(args: argparse.Namespace) -> None:
    from evif_ros.apps.rig_runner import run_rig
    from evif_ros.paths import share_file

    config = Path(args.config) if args.config else share_file("config", "rig.yaml")
    source = "sim" if args.sim else "aedat4" if args.aedat4 else "bag" if args.bag else "live"
    from evif_ros.errors import InputFileError
    if args.aedat4 and not Path(args.aedat4).is_file():
        # checked here: the driver node would only log it and the graph run on, empty
        raise InputFileError(f"{args.aedat4}: no such AEDAT4 file")
    if args.bag and not Path(args.bag).exists():
        raise InputFileError(f"{args.bag}: no such bag")
    run_rig(config, source, file=args.aedat4 or args.bag or "", scenario=args.sim or "day",
            duration_s=args.duration, seed=args.seed, role=args.role)


def _demo(args: argparse.Namespace) -> None:
    from evif_ros.apps.rig_runner import run_demo

    rate = None if args.rate == "auto" else float(args.rate)
    print(f"demo: {args.duration} s of the synthetic '{args.scenario}' rig at "
          f"{'the highest sustainable rate' if rate is None else f'{rate}x real time'} "
          "through davis_driver, ir_driver, event_renderer and evif_node (own process)",
          flush=True)
    r = run_demo(Path(args.out), args.scenario, args.duration, rate, args.seed,
                 model=args.model)
    if r["probe"]:
        print(f"probe: model {r['probe']['model_ms']:.0f} ms per window (worst of 4), "
              f"simulator {r['probe']['sim_s_per_rig_s']:.2f} s per rig second -> rate "
              f"{r['rate']}x real time")
    lat = r["latency_ms"]
    print(f"events {r['events']}, IR frames {r['ir_frames']}, windows {r['windows']}, "
          f"fused outputs {r['outputs']}, dropped {r['dropped']} (device {r['device']}, "
          f"wall {r['wall_s']:.1f} s, {r['outputs'] / max(r['wall_s'], 1e-9):.2f} outputs/s)")
    print(f"real-time factor: {r['rate']}x (rig time / wall time) with "
          f"{r['dropped']} dropped windows")
    print("| stage | p50 (ms) | p95 (ms) |\n|---|---|---|")
    for stage, (p50, p95) in lat.items():
        print(f"| {stage} | {p50:.1f} | {p95:.1f} |")
    if r["sync"]:
        print("synchronizer:", ", ".join(f"{k}={v}" for k, v in r["sync"].items()))
    print(f"outputs: {r['bag']} (mcap); pictures: {', '.join(r['pictures']) or 'none'}")
    if r["outputs"] == 0:
        raise EvifError("demo produced no fused image")


def _rate_or_auto(text: str):
    return text if text == "auto" else number(float, 0.0, 100.0, above=True)(text)


def build_parser() -> argparse.ArgumentParser:
    from evif_ros.sim.scenarios import PAIR_MOTION_SCALE, SCENARIOS

    ap = _Parser(prog="evif", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="record the synthetic rig to rig.mcap + davis.aedat4")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--duration", type=POSITIVE, default=2.0, help="seconds of rig time")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--scenario", default="day", help=f"one of {', '.join(SCENARIOS)}")
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
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_dataset)

    p = sub.add_parser("calibrate", help="IR-to-DAVIS homography from matched keypoints")
    p.add_argument("--pairs", required=True,
                   help="text file, one pair per line: u_ir v_ir u_davis v_davis")
    p.add_argument("--out", required=True, help="calibration YAML to write")
    p.add_argument("--threshold", type=POSITIVE, default=3.0, help="RANSAC inlier threshold, px")
    p.add_argument("--davis-size", type=COUNT, nargs=2, default=(346, 260), metavar=("W", "H"))
    p.add_argument("--ir-size", type=COUNT, nargs=2, default=(320, 256), metavar=("W", "H"))
    p.add_argument("--exposure-ns", type=COUNT, default=25_000_000)
    p.add_argument("--time-offset-ns", type=int, default=0)
    p.add_argument("--latency-ns", type=NATURAL, nargs=2, default=(0, 30_000_000),
                   metavar=("MIN", "MAX"))
    p.set_defaults(func=_calibrate)

    p = sub.add_parser("record", help="record topics to a rosbag2 (mcap) until Ctrl-C")
    p.add_argument("--out", required=True, help="bag directory to create")
    p.add_argument("topics", nargs="*", help="topics (default: every DESIGN.md topic)")
    p.add_argument("--duration", type=NONNEGATIVE, default=0.0, help="stop after S seconds")
    p.set_defaults(func=_record)

    p = sub.add_parser("replay", help="publish a bag with its timing and /clock")
    p.add_argument("bag", help="bag directory or .mcap file (libcaer_driver bags too)")
    p.add_argument("--rate", type=number(float, 0.0, 100.0, above=True), default=1.0)
    p.add_argument("--loop", action="store_true")
    p.add_argument("--delay", type=NONNEGATIVE, default=1.0,
                   help="seconds between creating publishers and the first message")
    p.add_argument("--wait-for", action="append", default=[], metavar="NODE",
                   help="hold playback until this node has subscribed to something "
                        "(e.g. evif_node, which subscribes once its model is loaded); "
                        "repeatable")
    p.set_defaults(func=_replay)

    p = sub.add_parser("train", help="progressive training of the EVIF networks")
    p.add_argument("--data", required=True, help="directory of `evif dataset` shards")
    p.add_argument("--out", required=True, help="checkpoint directory")
    p.add_argument("--stage", type=int, required=True, choices=[1, 2, 3])
    p.add_argument("--size", default="lite", choices=MODEL_SIZES)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--workers", type=NATURAL, default=0,
                   help="processes that make batches (0: the training process)")
    p.add_argument("--time-limit", type=NONNEGATIVE, default=0.0, help="minutes; stop with a "
                   "resumable checkpoint when reached (0: no limit)")
    p.add_argument("--init", help="checkpoint of the previous stage, or an exported model "
                   "file (e.g. models/evif_rt.ts) to train on")
    p.add_argument("--iters", type=COUNT, default=1000)
    p.add_argument("--batch", type=COUNT, default=8)
    p.add_argument("--crop", type=CROP, default=96, help="square crop side (a multiple of 8, "
                   "16-256)")
    p.add_argument("--lr", type=POSITIVE, default=2e-4, help="AdamW learning rate")
    p.add_argument("--decay-from", type=NATURAL, default=0, help="cosine-decay the learning "
                   "rate from this iteration to --iters (to 5%%); 0 keeps it constant")
    p.add_argument("--no-enhance", action="store_true", help="ablation: no cross-task "
                   "event enhancement")
    p.add_argument("--no-mi", action="store_true", help="ablation: no MI terms in L_fuse")
    p.add_argument("--fusion", default="paper", choices=FUSION_OBJECTIVES,
                   help="stage-3 objective: the paper's Eq. 6 against the task outputs, or "
                        "with intensity/gradient terms against the sharp sources' maximum "
                        "(salient; sharp: the gradient term x3)")
    p.add_argument("--fusion-weights", type=_weights, default=None,
                   metavar="W,W,W,W,W[,W...] | NAME=W,...",
                   help="stage 3: the objective's weights instead of --fusion's own, 5 to 8 "
                        "in this order or by name (the others 0): ssim, mi, nce (Eq. 6), "
                        "int, grad (against the sources' maximum), mi_px (the fused image's "
                        "intensity MI with each source), ssim_vis, mi_px_vis (the visible "
                        "side of those two once more)")
    p.add_argument("--freeze-recon", action="store_true", help="stages 2-3: keep the "
                   "reconstruction's weights (one trained by evif train-visible)")
    p.add_argument("--freeze-tasks", action="store_true", help="stage 3: keep the "
                   "reconstruction and deblurring networks fixed (train fusion only)")
    p.add_argument("--deblur-weight", type=NONNEGATIVE, help="weight per dB of the deblurring "
                   "PSNR loss (stages 2-3; default: the recipe's, 0.01)")
    p.add_argument("--motion-taps", type=NATURAL, default=None, metavar="N",
                   help="deconvolve the IR frame with the exposure's global motion (from "
                        "its events) before the deblurring network, modelling the blur as "
                        "the average of N sharp frames (the paper's: 7); 0: off (default: "
                        "the size's or the --init checkpoint's setting)")
    p.add_argument("--motion-curved", action="store_true",
                   help="with the motion deconvolution: along a quadratic path through the "
                        "time bins' shifts instead of one straight shift (default: the "
                        "--init checkpoint's setting)")
    p.add_argument("--deblur-act", choices=("relu", "lrelu"), default=None,
                   help="the deblurring network's activation from this run on, same weights "
                        "(lrelu revives units ReLU has switched off; default: the size's or "
                        "the --init checkpoint's)")
    p.add_argument("--enhance-level", type=int, choices=(1, 2), default=None,
                   help="the deblurring network level the cross-task enhancement acts at "
                        "from this run on (2: the paper's; 1: the finest, with the "
                        "reconstruction's last decoder feature); a change starts the "
                        "enhancement's weights afresh (default: the --init checkpoint's)")
    p.add_argument("--threads", type=NATURAL, default=0, help="torch threads (0 = default)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--limit", type=NATURAL, default=0, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train)

    p = sub.add_parser("train-frame-deblur", help="the frame-only deblurring baseline "
                       "(a small NAFNet, no events)")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="TorchScript file to write")
    p.add_argument("--iters", type=COUNT, default=2000)
    p.add_argument("--threads", type=NATURAL, default=0, help="torch threads (0 = default)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train_frame_deblur)

    p = sub.add_parser("export", help="write the TorchScript model the node runs")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="an `evif train` checkpoint")
    src.add_argument("--model", help="an exported file: script its weights again with this "
                     "code, metadata kept (files an older torch cannot load)")
    p.add_argument("--out", required=True)
    p.add_argument("--motion-curved", action="store_true",
                   help="with --checkpoint of a model with the motion deconvolution "
                        "(--motion-taps): deconvolve along a quadratic path through the "
                        "time bins' shifts instead of one straight shift (no weights change)")
    p.set_defaults(func=_export)

    p = sub.add_parser("eval", help="Tables 1 and 2 of the paper on a test split, or "
                       "reference-free metrics on a bag")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="dataset directory with a test split")
    src.add_argument("--bag", help="a recording (rosbag2 / libcaer_driver bag)")
    p.add_argument("--out", required=True)
    p.add_argument("--methods", nargs="+", default=["average", "laplacian", "gff", "hmsd_gf"],
                   choices=["average", "laplacian", "gff", "hmsd_gf"])
    p.add_argument("--model", default="", help="EVIF TorchScript model (default: shipped)")
    p.add_argument("--ablation", default="", help="model without cross-task enhancement")
    p.add_argument("--frame-deblur", default="", help="frame-only deblurring model")
    p.add_argument("--calibration", default="", help="rig calibration (bags)")
    p.add_argument("--limit", type=NATURAL, default=0, help="first N test samples")
    p.add_argument("--split", default="test", choices=("test", "train"),
                   help="the dataset's shards to score: test, or train for a validation set "
                        "generated with its own seed")
    p.add_argument("--only-evif", action="store_true", help="score the model alone (no "
                   "baselines, ablation or frame-only deblurring)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_eval)

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

    p = sub.add_parser("rig", help="start the rig graph with plain rclpy (no ros2 launch)")
    p.add_argument("--config", default="", help="parameters YAML (default: config/rig.yaml)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--sim", metavar="SCENARIO", help="synthetic rig")
    src.add_argument("--aedat4", metavar="FILE", help="an AEDAT4 recording (events only)")
    src.add_argument("--bag", metavar="FILE", help="replay a rosbag2 through the graph")
    p.add_argument("--duration", type=NONNEGATIVE, default=0.0, help="stop after S seconds")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--role", default="all", choices=["all", "drivers", "inference"],
                   help="one host's nodes of a two-host setup (see README)")
    p.set_defaults(func=_rig)

    p = sub.add_parser("demo", help="the main job: the synthetic rig through the whole "
                       "graph with the shipped model")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--scenario", default="day", choices=list(SCENARIOS))
    p.add_argument("--duration", type=POSITIVE, default=1.0, help="seconds of rig time")
    p.add_argument("--rate", type=_rate_or_auto, default="auto",
                   help="rig speed vs real time, or 'auto': the highest this machine "
                        "sustains without dropping a window (measured first)")
    p.add_argument("--model", default="", help="TorchScript model (default: shipped)")
    p.add_argument("--seed", type=SEED, default=7)
    p.set_defaults(func=_demo)

    visible.register(sub)
    eval_real.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors and --help: a return code, as for the rest
        return int(exc.code or 0)
    try:
        args.func(args)
    except EvifError as exc:
        print(f"evif {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"evif {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
