"""``evif video-dataset`` and ``evif train-visible``: long visible-only event sequences from
photographs, and the reconstruction trained on them with its state carried."""

from __future__ import annotations

import argparse
from pathlib import Path

from evif_ros.apps.commands.argtypes import COUNT, NATURAL, POSITIVE, SEED, number


def _video_dataset(args: argparse.Namespace) -> None:
    from evif_ros.sim.video import VideoConfig, write_video_dataset

    cfg = VideoConfig(photos_dir=args.photos, size=args.size, windows=args.windows,
                      sub_windows=args.sub_windows, extra_dirs=tuple(args.scenes),
                      refractory_ms=tuple(args.refractory_ms), contrast=tuple(args.contrast))
    write_video_dataset(Path(args.out), args.split, args.sequences, args.seed, cfg,
                        workers=args.workers, progress=not args.quiet)
    print(f"{args.split}: {args.sequences} sequences under {args.out}")


def _train_visible(args: argparse.Namespace) -> None:
    from evif_ros.learning.train_visible import VisibleTrainArgs, train_visible

    ckpt = train_visible(VisibleTrainArgs(
        Path(args.data), Path(args.out), Path(args.init), iters=args.iters, batch=args.batch,
        crop=args.crop, windows=args.windows, tbptt=args.tbptt, lr=args.lr,
        threads=args.threads, seed=args.seed, time_limit_min=args.time_limit,
        limit=args.limit, structure=args.structure, advect=args.advect,
        advect_support=args.advect_support, contrast_ref=args.contrast_ref, gaps=args.gaps,
        reset_weight=args.reset_weight),
        progress=not args.quiet)
    print(f"visible: {ckpt}")


def register(sub) -> None:
    p = sub.add_parser("video-dataset", help="long visible-only event sequences from "
                       "photographs (training the reconstruction to hold a scene)")
    p.add_argument("--photos", required=True, help="folder of photographs (searched "
                   "recursively); each split draws from its own images")
    p.add_argument("--scenes", action="append", default=[], metavar="DIR",
                   help="another folder of visible scenes, searched the same way (repeat; "
                   "in registered pair sets such as ../shared/data/pairs the ir/ folders "
                   "are skipped)")
    p.add_argument("--refractory-ms", type=number(float, 0.0, 100.0), nargs=2,
                   default=[0.0, 1.0], metavar=("MIN", "MAX"),
                   help="range of the simulated sensors' refractory period (default 0 1)")
    p.add_argument("--contrast", type=number(float, 0.01, 0.7), nargs=2, default=[0.1, 0.6],
                   metavar=("MIN", "MAX"), help="range of the simulated sensors' ON contrast "
                   "threshold, log units (default 0.1 0.6); around a rig's measured one (`evif "
                   "contrast`) for data made for that sensor")
    p.add_argument("--out", required=True)
    p.add_argument("--split", required=True, choices=["train", "test"])
    p.add_argument("--sequences", type=COUNT, required=True)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--size", type=number(int, 32, 512, multiple=16), default=128,
                   help="side of the simulated sensor crop, px")
    p.add_argument("--windows", type=COUNT, default=24, help="windows per sequence")
    p.add_argument("--sub-windows", type=COUNT, default=6, help="K sub-windows per window")
    p.add_argument("--workers", type=COUNT, default=1)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_video_dataset)

    p = sub.add_parser("train-visible", help="retrain a pipeline's visible reconstruction on "
                       "`evif video-dataset` sequences (adds image feedback)")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--init", required=True, help="a model file or checkpoint to start from")
    p.add_argument("--iters", type=COUNT, default=1000)
    p.add_argument("--batch", type=COUNT, default=4)
    p.add_argument("--crop", type=number(int, 16, 512, multiple=16), default=112)
    p.add_argument("--windows", type=COUNT, default=16,
                   help="consecutive windows per training sequence (state carried)")
    p.add_argument("--tbptt", type=COUNT, default=8, help="windows per backpropagation")
    p.add_argument("--lr", type=POSITIVE, default=3e-4)
    p.add_argument("--threads", type=NATURAL, default=0)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--time-limit", type=POSITIVE, default=None,
                   help="minutes; stop with a checkpoint to resume from")
    p.add_argument("--structure", type=number(float, 0.0, 100.0), default=0.0,
                   help="weight of the structure loss (1 - correlation of the Gaussian-"
                   "smoothed gradient magnitudes, the real-recording score)")
    p.add_argument("--advect", action="store_true",
                   help="move the kept image by the events before the gate (follows slow "
                   "motion; needs image feedback, which train-visible adds)")
    p.add_argument("--advect-support", type=NATURAL, default=2,
                   help="with --advect: events move the image only where at least this many "
                   "fell on the 8 neighbouring pixels in the window (isolated noise does not)")
    p.add_argument("--contrast-ref", type=number(float, 0.0, 2.0), default=0.0,
                   help="with --advect: scale each sequence's event step by its sensor's "
                   "threshold over this reference, as the runtime does for a rig that gives "
                   "its threshold (0 = off; store it in the exported file with "
                   "scripts/contrast_ref.py --set)")
    p.add_argument("--gaps", type=number(float, 0.0, 1.0), default=0.0,
                   help="probability per training sequence of losing its events for up to "
                   "two windows while the scene moves on (a real recording's dropped "
                   "events; 0 = off)")
    p.add_argument("--reset-weight", type=number(float, 0.0, 100.0), default=1.0,
                   help="weight of each sequence's first window, made from a reset state (a "
                   "node's first frame, `evif eval`'s single exposures), against the later "
                   "windows' 1")
    p.add_argument("--limit", type=NATURAL, default=0, help="first N sequences (tests)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train_visible)
