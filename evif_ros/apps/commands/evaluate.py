"""``evif eval``: the paper's tables on a test split, or reference-free metrics on a bag."""

from __future__ import annotations

import argparse
from pathlib import Path

from evif_ros.apps.commands.argtypes import (
    NATURAL,
)


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
                         args.limit, not args.quiet, args.split, args.carry)
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


def register(sub) -> None:
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
    p.add_argument("--carry", action="store_true", help="sequence samples (evif dataset "
                   "--warmup-frames): run the earlier frames first and carry the state, as "
                   "the node does on a stream (default: each exposure from a reset state)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_eval)
