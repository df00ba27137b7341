"""``evif eval-real``: the visible reconstruction over a real recording with APS frames,
scored per frame against them (structure score), beside event integration; ``evif
eval-stopgo``: its memory on simulated stop-and-go recordings with ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from evif_ros.apps.commands.argtypes import COUNT, POSITIVE, number


def _eval_real(args: argparse.Namespace) -> None:
    from evif_ros.evaluation.real import evaluate_recording
    from evif_ros.evaluation.real_recording import load_recording
    from evif_ros.paths import DEFAULT_MODEL, share_file

    model = Path(args.model) if args.model else share_file("models", DEFAULT_MODEL)
    rec = load_recording(Path(args.recording))
    report = evaluate_recording(model, rec, Path(args.out), int(args.period_ms * 1e6),
                                int(args.span_ms * 1e6), progress=not args.quiet,
                                contrast=args.contrast,
                                aps_offset_ns=int(round(args.aps_offset_ms * 1e6)))
    if args.contrast is not None and report.gain is None:
        print(f"note: {model.name} has no recon_contrast_ref; --contrast not used")
    elif report.gain is not None:
        print(f"event step x{report.gain:.2f} for a contrast threshold of {args.contrast:g}")
    if args.aps_offset_ms:
        print(f"the events' latency of {args.aps_offset_ms:+g} ms taken off: each APS frame "
              "scored against the reconstruction made that much after its mid-exposure")
    print(report.table())
    _latency_note(rec, Path(args.out), args.aps_offset_ms)
    print(f"per-frame scores, summary and grid.png in {args.out}")


def _latency_note(rec, out: Path, used_ms: float) -> None:
    """What `evif contrast` would measure as the events' latency behind these frames: a
    user sees whether their sensor's events are late before reading the scores."""
    from evif_ros.errors import EvifError
    from evif_ros.evaluation.latency import estimate_latency

    try:
        lat = estimate_latency(rec.events, [(f.image, f.mid_ns) for f in rec.frames],
                               rec.height, rec.width, str(rec.path))
    except EvifError as exc:
        line = f"event latency not measured ({exc})"
    else:
        line = f"event latency (model-free, as `evif contrast` measures it): {lat.summary()}"
        if lat.reliable and abs(lat.latency_ns * 1e-6 - used_ms) >= 5:
            line += (f"; scored with {used_ms:+g} ms, rerun with --event-latency-ms "
                     f"{lat.latency_ns * 1e-6:.1f} to score as a calibrated node would run")
    print(line)
    with open(out / "summary.md", "a") as fh:
        fh.write("\n" + line + "\n")


def _model_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=FILE")
    return name, path


def _eval_stopgo(args: argparse.Namespace) -> None:
    from evif_ros.evaluation.stopgo import evaluate_stopgo

    models = {name: Path(path) for name, path in args.model}
    print(evaluate_stopgo(models, Path(args.pairs), Path(args.out), args.images,
                          progress=not args.quiet, contrast=args.contrast))
    print(f"per-window SSIM, table and plot in {args.out}")


def register(sub) -> None:
    p = sub.add_parser("eval-real", help="score the visible reconstruction on a real "
                       "recording with APS frames (AEDAT4, rosbag2, or events.npz + frames.csv)")
    p.add_argument("recording", help="an .aedat4 file, a rosbag2 (evif record) or a folder "
                   "with events.npz and frames.csv")
    p.add_argument("--out", required=True)
    p.add_argument("--model", default="", help="TorchScript model (default: shipped)")
    p.add_argument("--period-ms", type=POSITIVE, default=1e3 / 30,
                   help="window period: the IR frame period the node would run at")
    p.add_argument("--span-ms", type=POSITIVE, default=25.0,
                   help="events before each window end a model without image feedback "
                        "sees (the IR exposure)")
    p.add_argument("--contrast", type=number(float, 0.01, 2.0), default=None,
                   help="the sensor's contrast threshold (log units; `evif contrast` measures "
                   "it): scales the event step as the rig calibration's davis_contrast does "
                   "in the node (default: the step as trained)")
    p.add_argument("--event-latency-ms", "--aps-offset-ms", dest="aps_offset_ms",
                   type=number(float, -1000.0, 1000.0), default=0.0,
                   help="the event pixels' latency (`evif contrast` measures it; the node "
                   "takes the rig calibration's davis_latency_ns): each APS frame is scored "
                   "against the reconstruction this much after its mid-exposure, as the node "
                   "would make it (default 0)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_eval_real)

    p = sub.add_parser("eval-stopgo", help="visible SSIM over simulated recordings where the "
                       "camera moves then rests, or pans slowly (day, night, hdr)")
    p.add_argument("--model", type=_model_arg, action="append", required=True,
                   metavar="NAME=FILE", help="a model to score (repeat to compare)")
    p.add_argument("--pairs", required=True, help="image pairs (vi/, ir/); their test images")
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=COUNT, default=2, help="test images per light and motion")
    p.add_argument("--contrast", type=number(float, 0.01, 2.0), default=None,
                   help="tell every model this contrast threshold, as the rig calibration's "
                   "davis_contrast does (the simulated sensor's: 0.25; default: the step as "
                   "trained)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_eval_stopgo)
