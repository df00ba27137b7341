"""``evif eval-real``: the visible reconstruction over a real recording with APS frames,
scored per frame against them (structure score), beside event integration."""

from __future__ import annotations

import argparse
from pathlib import Path

from evif_ros.apps.commands.argtypes import POSITIVE


def _eval_real(args: argparse.Namespace) -> None:
    from evif_ros.evaluation.real import evaluate_recording
    from evif_ros.evaluation.real_recording import load_recording
    from evif_ros.paths import DEFAULT_MODEL, share_file

    model = Path(args.model) if args.model else share_file("models", DEFAULT_MODEL)
    rec = load_recording(Path(args.recording))
    report = evaluate_recording(model, rec, Path(args.out), int(args.period_ms * 1e6),
                                int(args.span_ms * 1e6), progress=not args.quiet)
    print(report.table())
    print(f"per-frame scores, summary and grid.png in {args.out}")


def register(sub) -> None:
    p = sub.add_parser("eval-real", help="score the visible reconstruction on a real "
                       "recording with APS frames (AEDAT4, or events.npz + frames.csv)")
    p.add_argument("recording", help="an .aedat4 file or a folder with events.npz and "
                   "frames.csv")
    p.add_argument("--out", required=True)
    p.add_argument("--model", default="", help="TorchScript model (default: shipped)")
    p.add_argument("--period-ms", type=POSITIVE, default=1e3 / 30,
                   help="window period: the IR frame period the node would run at")
    p.add_argument("--span-ms", type=POSITIVE, default=25.0,
                   help="events before each window end a model without image feedback "
                        "sees (the IR exposure)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_eval_real)
