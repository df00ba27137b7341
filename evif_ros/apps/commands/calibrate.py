"""``evif calibrate``: the IR-to-DAVIS homography from matched points."""

from __future__ import annotations

import argparse
from pathlib import Path

from evif_ros.apps.commands.argtypes import (
    COUNT,
    NATURAL,
    POSITIVE,
)


def _calibrate(args: argparse.Namespace) -> None:
    from evif_ros.runtime.calibration import Calibration, fit_homography, load_pairs

    ir_pts, davis_pts = load_pairs(Path(args.pairs))
    hom, rms, inliers = fit_homography(ir_pts, davis_pts, args.threshold)
    calib = Calibration(hom, tuple(args.davis_size), tuple(args.ir_size), args.exposure_ns,
                        args.time_offset_ns, tuple(args.latency_ns))
    calib.save(Path(args.out))
    print(f"homography from {int(inliers.sum())}/{inliers.size} inlier pairs: reprojection "
          f"error {rms:.3f} px RMS; wrote {args.out}")


def register(sub) -> None:
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
