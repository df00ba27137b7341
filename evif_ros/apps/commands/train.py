"""``evif train``, ``evif train-frame-deblur``, ``evif export``: training and the TorchScript
file the node loads."""

from __future__ import annotations

import argparse
from pathlib import Path

from evif_ros.apps.commands.argtypes import (
    COUNT,
    CROP,
    NATURAL,
    NONNEGATIVE,
    POSITIVE,
    SEED,
)
from evif_ros.errors import ConfigError

# literal so that building the parser does not import torch; test_model_rt checks them
# against evif_ros.learning.pipeline.SIZES, evif_ros.learning.train.FUSION_OBJECTIVES and
# evif_ros.learning.losses.FUSION_TERMS
MODEL_SIZES = ("gpu", "hq", "lite", "paper", "rt", "rt2", "rt3", "rt4")
FUSION_OBJECTIVES = ("paper", "salient", "sharp")
FUSION_TERMS = ("ssim", "mi", "nce", "int", "grad", "mi_px", "ssim_vis", "mi_px_vis")


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

    ckpt = train(TrainArgs(data=Path(args.data), out=Path(args.out), stage=args.stage,
                           size=args.size, iters=args.iters, batch=args.batch, crop=args.crop,
                           lr=args.lr, enhance=not args.no_enhance, mi=not args.no_mi,
                           init=Path(args.init) if args.init else None, threads=args.threads,
                           seed=args.seed, limit=args.limit, freeze_tasks=args.freeze_tasks,
                           deblur_weight=(DEBLUR_WEIGHT if args.deblur_weight is None
                                          else args.deblur_weight),
                           decay_from=args.decay_from, device=args.device,
                           workers=args.workers, time_limit_min=args.time_limit,
                           fusion=args.fusion, fusion_weights=args.fusion_weights,
                           motion_taps=args.motion_taps, motion_curved=args.motion_curved,
                           motion_lag=_lag(args), motion_everywhere=args.motion_everywhere,
                           motion_border=args.motion_border,
                           deblur_act=args.deblur_act, enhance_level=args.enhance_level,
                           deblur_sees_blurry=args.deblur_sees_blurry,
                           freeze_recon=args.freeze_recon,
                           init_recon=Path(args.init_recon) if args.init_recon else None,
                           init_fusion=Path(args.init_fusion) if args.init_fusion else None),
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


def _lag(args: argparse.Namespace) -> float | None:
    """``--ir-lag-ms`` over ``--ir-exposure-ms``: EvifConfig.motion_lag (None: not given)."""
    if args.ir_lag_ms is None:
        return None
    return args.ir_lag_ms / args.ir_exposure_ms


def _export(args: argparse.Namespace) -> None:
    from evif_ros.learning.export import export, rescript

    settings: dict = {}
    meta: dict = {}
    if args.motion_curved:
        settings["motion_curved"] = True
    if args.motion_everywhere:
        settings["motion_gate"] = False
    if args.motion_border is not None:
        settings["motion_border"] = args.motion_border
    if args.ir_lag_ms is not None:
        settings["motion_lag"] = _lag(args)
        # the lag is relative to the exposure: the runtime warns on a rig with another one
        meta = {"ir_lag_ms": args.ir_lag_ms, "ir_exposure_ms": args.ir_exposure_ms}
    if args.checkpoint:
        info = export(Path(args.checkpoint), Path(args.out), meta, **settings)
    elif args.motion_curved:
        raise ConfigError("--motion-curved needs --checkpoint (a file keeps its own setting)")
    else:
        info = rescript(Path(args.model), Path(args.out), meta, **settings)
    print(f"wrote {args.out}: {info['parameters']} parameters, {info['bytes'] / 1e6:.1f} MB; "
          f"scripted vs eager max |diff| {info['max_diff']:.2e}"
          + (f"; against {args.model} {info['max_diff_old']:.2e}" if args.model else ""))


def _add_deconv_settings(p: argparse.ArgumentParser, what: str) -> None:
    """The motion deconvolution's settings that own no weights and a file may change."""
    p.add_argument("--motion-everywhere", action="store_true",
                   help="with the motion deconvolution: keep the deconvolved frame wherever "
                        "the deconvolution does (the whole frame moved), not only near the "
                        f"exposure's events ({what})")
    p.add_argument("--motion-border", type=NATURAL, default=None, metavar="STEPS",
                   help="with the motion deconvolution: deconvolve up to the frame's border, "
                        "the blur of what lies outside modelled, in STEPS conjugate-gradient "
                        "steps (0: keep a margin of the blur's reach blurry, as files made "
                        f"before 2026-12-03 do; shipped files: 3) ({what})")
    p.add_argument("--ir-lag-ms", type=NONNEGATIVE, default=None, metavar="MS",
                   help="the thermal camera's time constant (uncooled microbolometers: 8-12 "
                        "ms; 0: none, the paper's blur): with the motion deconvolution, the "
                        f"blur is that lag along the path as well as the exposure ({what})")
    p.add_argument("--ir-exposure-ms", type=POSITIVE, default=25.0, metavar="MS",
                   help="the IR exposure the lag is relative to (the rig's ir_exposure; "
                        "default 25)")


def register(sub) -> None:
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
    p.add_argument("--init-recon", metavar="FILE",
                   help="stage 2 of --size from the reconstruction network of FILE (a "
                        "checkpoint or an exported model such as models/evif_rt.ts; the same "
                        "reconstruction design); deblurring and fusion start fresh")
    p.add_argument("--init-fusion", metavar="FILE",
                   help="stage 3: the fusion network from FILE's (checkpoint or exported "
                        "model) wherever the shapes agree; the rest as --init has it")
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
    _add_deconv_settings(p, "default: the --init checkpoint's")
    p.add_argument("--enhance-level", type=int, choices=(1, 2), default=None,
                   help="the deblurring network level the cross-task enhancement acts at "
                        "from this run on (2: the paper's; 1: the finest, with the "
                        "reconstruction's last decoder feature); a change starts the "
                        "enhancement's weights afresh (default: the --init checkpoint's)")
    p.add_argument("--deblur-sees-blurry", action="store_true",
                   help="with the motion deconvolution: the deblurring network sees the "
                        "blurry frame beside the deconvolved one from this run on (the new "
                        "input's weights start at zero, so the run starts as the --init "
                        "checkpoint's network)")
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
    _add_deconv_settings(p, "no weights change: a microbolometer rig exports its own file "
                            "with --model models/evif_rt.ts")
    p.set_defaults(func=_export)
