"""``evif calibrate``: the rig's calibration, from a recording of a heated checkerboard
(``--bag``: lenses, the thermal camera's pose and clock offset) or from matched points
(``--pairs``: a homography only); ``evif contrast``: the event sensor's contrast threshold,
from a recording with APS frames."""

from __future__ import annotations

import argparse
from pathlib import Path

from evif_ros.apps.commands.argtypes import (
    COUNT,
    NATURAL,
    POSITIVE,
)
from evif_ros.errors import EvifError


def _calibrate(args: argparse.Namespace) -> None:
    if (args.pairs is None) == (args.bag is None):
        raise EvifError("evif calibrate: give --bag RECORDING (a checkerboard recording) or "
                        "--pairs FILE (matched points), not both")
    if args.bag is not None:
        return _from_bag(args)
    from evif_ros.runtime.calibration import Calibration, fit_homography, load_pairs

    ir_pts, davis_pts = load_pairs(Path(args.pairs))
    hom, rms, inliers = fit_homography(ir_pts, davis_pts, args.threshold)
    calib = Calibration(hom, tuple(args.davis_size), tuple(args.ir_size), args.exposure_ns,
                        args.time_offset_ns, tuple(args.latency_ns))
    calib.save(Path(args.out))
    print(f"homography from {int(inliers.sum())}/{inliers.size} inlier pairs: reprojection "
          f"error {rms:.3f} px RMS; wrote {args.out}")


def _from_bag(args: argparse.Namespace) -> None:
    from evif_ros.rigcal.recording import read_recording
    from evif_ros.rigcal.report import picture, static_transform, summary
    from evif_ros.rigcal.rig import calibrate_rig
    from evif_ros.runtime.target import Checkerboard

    out = Path(args.out)
    if not out.parent.is_dir():
        raise EvifError(f"{out}: folder {out.parent} does not exist")
    cols, rows = int(args.board[0]), int(args.board[1])
    if (cols, rows) != tuple(args.board[:2]):
        raise EvifError(f"--board: inner corner counts must be whole numbers, got "
                        f"{args.board[0]:g} {args.board[1]:g}")
    board = Checkerboard(cols, rows, float(args.board[2]))
    rec = read_recording(Path(args.bag))
    for topic, n in rec.dropped.items():
        print(f"warning: {args.bag}: dropped {n} malformed message(s) on {topic}")
    result = calibrate_rig(rec, board, args.exposure_ns, tuple(args.latency_ns),
                           args.working_distance, str(args.bag),
                           int(args.max_offset_s * 1e9), progress=not args.quiet)
    result.calibration.save(out)
    for line in summary(result):
        print(line)
    report = out.with_suffix(".png") if args.report is None else Path(args.report)
    picture(result, rec, board.pattern, report)
    tf = static_transform(result)
    print("TF davis -> ir: " + " ".join(f"{k} {v:.5f}" for k, v in tf.items()))
    print(f"wrote {out} and {report}")


def _contrast(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from evif_ros.evaluation.latency import estimate_latency
    from evif_ros.evaluation.real_recording import load_recording
    from evif_ros.rigcal.contrast import estimate_contrast
    from evif_ros.runtime.calibration import load_calibration

    if (args.calibration is None) != (args.out is None):
        raise EvifError("evif contrast: --calibration and --out go together (the rig file to "
                        "copy and the one to write with davis_contrast set)")
    rec = load_recording(Path(args.recording))
    frames = [(f.image, f.mid_ns) for f in rec.frames]
    est = estimate_contrast(rec.events, frames, source=str(args.recording))
    print(f"{args.recording}: {est.summary()}")
    try:
        lat = estimate_latency(rec.events, frames, rec.height, rec.width, str(args.recording))
        print(f"{args.recording}: {lat.summary()}")
    except EvifError as exc:  # too short for it: the threshold stands on its own
        lat = None
        print(f"event latency not measured: {exc}")
    if args.out is not None:
        calib = replace(load_calibration(Path(args.calibration)),
                        davis_contrast=round(est.contrast, 3))
        note = f"davis_contrast {est.contrast:.3f}"
        if lat is not None and lat.reliable:
            calib = replace(calib, davis_latency_ns=lat.latency_ns)
            note += f", davis_latency_ns {lat.latency_ns}"
        calib.save(Path(args.out))
        print(f"wrote {args.out} ({note})")


def register(sub) -> None:
    p = sub.add_parser("contrast", help="the event sensor's contrast threshold and latency "
                       "from a recording with APS frames and the camera moving (AEDAT4, "
                       "rosbag2, or events.npz + frames.csv)")
    p.add_argument("recording", help="an .aedat4 file, a rosbag2 (evif record) or a folder "
                   "with events.npz and frames.csv")
    p.add_argument("--calibration", help="a rig calibration YAML to copy ...")
    p.add_argument("--out", help="... into this file, with davis_contrast set (the node "
                   "scales the reconstruction's event step to it) and, where the estimate "
                   "has a clear peak, davis_latency_ns (the node takes each exposure's "
                   "events that much later)")
    p.set_defaults(func=_contrast)

    p = sub.add_parser("calibrate", help="rig calibration from a checkerboard recording "
                                         "(--bag) or from matched keypoints (--pairs)")
    p.add_argument("--bag", help="rosbag2 of a heated checkerboard moved in front of the rig "
                                 "(APS frames, thermal frames, triggers)")
    p.add_argument("--pairs", help="text file, one pair per line: u_ir v_ir u_davis v_davis")
    p.add_argument("--out", required=True, help="calibration YAML to write")
    p.add_argument("--board", type=POSITIVE, nargs=3, default=(9, 6, 0.04),
                   metavar=("COLS", "ROWS", "SQUARE_M"),
                   help="--bag: inner corners per row and per column, square side in metres")
    p.add_argument("--working-distance", type=POSITIVE, default=10.0,
                   help="--bag: distance (m) of the plane the thermal image is mapped on; "
                        "the scene at other depths is off by f*baseline*|1/Z-1/Zw| px")
    p.add_argument("--max-offset-s", type=POSITIVE, default=0.5,
                   help="--bag: largest |clock offset| searched, seconds")
    p.add_argument("--report", help="--bag: report picture (default: OUT with .png)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--threshold", type=POSITIVE, default=3.0,
                   help="--pairs: RANSAC inlier threshold, px")
    p.add_argument("--davis-size", type=COUNT, nargs=2, default=(346, 260), metavar=("W", "H"))
    p.add_argument("--ir-size", type=COUNT, nargs=2, default=(320, 256), metavar=("W", "H"))
    p.add_argument("--exposure-ns", type=COUNT, default=25_000_000)
    p.add_argument("--time-offset-ns", type=int, default=0, help="--pairs: typed in")
    p.add_argument("--latency-ns", type=NATURAL, nargs=2, default=(0, 30_000_000),
                   metavar=("MIN", "MAX"),
                   help="thermal frame arrival after its exposure end (with --bag, its "
                        "middle turns the measured delay into the clock offset)")
    p.set_defaults(func=_calibrate)
