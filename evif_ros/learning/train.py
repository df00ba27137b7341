"""Progressive training (Sec. 3.5): stage 1 reconstruction; stage 2 deblurring (+ cross-task
enhancement) while reconstruction keeps training; stage 3 fusion while both keep training.

L2 for the reconstruction, L_fuse (Eq. 6) for fusion; stage 3 adds 0.5 (1 - SSIM) on the
reconstruction. Deviation: deblurring uses the PSNR loss (log of the per-image L2, see
:func:`psnr_loss`) weighted by ``deblur_weight`` per dB, in the frame's normalised units.
Checkpoints are resumable; progress shows rate and ETA; losses go to ``<out>/stage<N>.csv``.
"""

from __future__ import annotations

import csv
import math
import pickle
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from evif_ros.errors import ConfigError, InputFileError, reason
from evif_ros.learning.data import Deconvolver, ShardData, batch_stream
from evif_ros.learning.layers import pad_to
from evif_ros.learning.losses import (
    FUSION_TERMS,
    FUSION_WEIGHTS,
    SALIENT_FUSION_WEIGHTS,
    SHARP_FUSION_WEIGHTS,
    fusion_loss,
    psnr_loss,
    ssim,
)
from evif_ros.learning.pipeline import EvifConfig, EvifPipeline, config_for, with_settings
from evif_ros.paths import output_dir
from evif_ros.runtime.model_file import load_exported

FEEDBACK_SPAN_NS = 33_333_333  # the synthetic rig's IR frame period (30 Hz)

DEBLUR_WEIGHT = 0.01  # per dB of deblurring PSNR, against the L2 of the reconstruction


@dataclass
class TrainArgs:
    data: Path
    out: Path
    stage: int
    size: str = "lite"
    iters: int = 1000
    batch: int = 8
    crop: int = 96
    lr: float = 2e-4
    enhance: bool = True
    mi: bool = True
    init: Path | None = None  # checkpoint of the previous stage
    threads: int = 0
    seed: int = 0
    checkpoint_every: int = 200
    limit: int = 0  # use only the first N training samples (tests)
    freeze_tasks: bool = False  # stage 3: train only the fusion network
    deblur_weight: float = DEBLUR_WEIGHT
    decay_from: int = 0  # 0: constant lr; else cosine decay from this iteration to `iters`
    lr_final: float = 0.05  # fraction of `lr` reached at `iters` when decaying
    device: str = "cpu"  # "cuda" trains on the GPU
    workers: int = 0  # processes that make batches (0: the training process)
    time_limit_min: float = 0.0  # stop (with a checkpoint to resume from) after this long
    fusion: str = "paper"  # stage-3 objective, one of FUSION_OBJECTIVES
    fusion_weights: tuple[float, ...] | None = None  # overrides the objective's weights
    # the IR blur model's frame count for the event-guided motion deconvolution before the
    # deblurring network (EvifConfig.motion_taps; 0 = off); None keeps the size's or the
    # --init checkpoint's setting
    motion_taps: int | None = None
    # True: that deconvolution follows the time bins' quadratic path (EvifConfig.motion_curved)
    # from this run on; False keeps the --init checkpoint's setting
    motion_curved: bool = False
    # the thermal camera's time constant over its exposure from this run on (EvifConfig.
    # motion_lag); None keeps the --init checkpoint's setting
    motion_lag: float | None = None
    # True: the deconvolved frame everywhere it is kept, not only near events (EvifConfig.
    # motion_gate False) from this run on; False keeps the --init checkpoint's setting
    motion_everywhere: bool = False
    # the deconvolution up to the frame's border (EvifConfig.motion_border, its
    # conjugate-gradient steps); None keeps the --init checkpoint's setting
    motion_border: int | None = None
    # the deblurring network's activation from this run on (EvifConfig.deblur_act, same
    # weights); None keeps the size's or the --init checkpoint's
    deblur_act: str | None = None
    # the level the cross-task enhancement acts at from this run on (EvifConfig.
    # enhance_level); a change starts its weights afresh, the rest carries over
    enhance_level: int | None = None
    # True: the deblurring network sees the blurry frame beside the deconvolved one from
    # this run on (EvifConfig.deblur_sees_blurry; the new input's weights start at zero)
    deblur_sees_blurry: bool = False
    freeze_recon: bool = False  # stages 2-3: keep the reconstruction's weights
    # stage 2 of a new size from another run's reconstruction (a checkpoint or an exported
    # file; the sizes' reconstructions must be the same): the other networks start fresh
    init_recon: Path | None = None
    # stage 3: the fusion network starts from this file's (checkpoint or exported) where
    # the shapes agree (all but the projection of another deblurring width's feature)
    init_fusion: Path | None = None


def learning_rate(args: TrainArgs, it: int) -> float:
    """Learning rate of iteration ``it``: constant, then (with ``decay_from``) cosine decay.

    A function of the absolute iteration, so a resumed run follows the same schedule.
    """
    if not args.decay_from or it < args.decay_from or args.iters <= args.decay_from:
        return args.lr
    frac = min(1.0, (it - args.decay_from) / (args.iters - args.decay_from))
    low = args.lr * args.lr_final
    return low + 0.5 * (args.lr - low) * (1 + math.cos(math.pi * frac))


# stage-3 objectives: "paper" is Eq. 6 against the task networks' outputs; "salient" adds
# intensity and gradient terms against the element-wise maximum of the sources and takes
# the sources from the ground truth (the sharp visible and IR frames the metrics use), so
# the fusion network also learns to discount the task outputs' errors; "sharp" weighs the
# gradient term three times as much
FUSION_OBJECTIVES = ("paper", "salient", "sharp")
_FUSION_WEIGHTS = {"paper": FUSION_WEIGHTS, "salient": SALIENT_FUSION_WEIGHTS,
                   "sharp": SHARP_FUSION_WEIGHTS}


def stage_losses(model: EvifPipeline, batch, stage: int, use_mi: bool,
                 deblur_weight: float = DEBLUR_WEIGHT, fusion: str = "paper",
                 fusion_weights: tuple[float, ...] | None = None):
    """Loss of one batch for a stage; returns ``(loss, terms)``. ``fusion_weights``: the
    five or six weights of :func:`~evif_ros.learning.losses.fusion_loss` instead of the
    objective's."""
    ir_n, sharp_n = batch.ir_normalized()
    model.use_fusion = stage >= 3
    sub = batch.sub_vox
    state = carried_state(model, batch)
    if stage == 1:
        vis = model.reconstruct(sub, state)[0]
        l_rec = F.mse_loss(vis, batch.vis)
        return l_rec, {"rec": float(l_rec.detach())}
    out = model.run(ir_n, batch.exp_vox, sub, state, batch.deconv_normalized())
    l_rec = F.mse_loss(out["visible"], batch.vis)
    l_deb = psnr_loss(out["ir_n"], sharp_n)
    loss = l_rec + deblur_weight * l_deb
    terms = {"rec": float(l_rec.detach()), "deblur_db": -float(l_deb.detach())}
    if stage >= 3:
        # deviation from the paper (L2 only): an SSIM term keeps the reconstruction's
        # structure, which L2 alone blurs towards the mean on this data
        l_struct = 1 - ssim(out["visible"], batch.vis)
        loss = loss + 0.5 * l_struct
        terms["rec_ssim"] = float(l_struct.detach())
        w = tuple(fusion_weights) if fusion_weights else _FUSION_WEIGHTS[fusion]
        if not use_mi:  # the ablation without the bi-level MI terms
            w = (w[0], 0.0, 0.0, *w[3:])
        if fusion != "paper":
            vis, ir = batch.vis, torch.clamp(sharp_n, 0, 1)
        else:
            vis, ir = out["visible"].detach(), torch.clamp(out["ir_n"], 0, 1).detach()
        l_fuse, t = fusion_loss(out["fused"], vis, ir, out, w)
        loss = loss + l_fuse
        terms.update(t)
    return loss, terms


def carried_state(model: EvifPipeline, batch) -> list[torch.Tensor]:
    """The reconstruction state after the batch's earlier IR frames (sequence samples),
    oldest first from a reset state, as the node carries it; gradients flow back through
    it (truncated backpropagation through time). No earlier frames: a reset state."""
    state: list[torch.Tensor] = []
    for j in range(batch.warm_sub_vox.shape[1]):
        state = model.reconstruct(batch.warm_sub_vox[:, j], state)[1]
    return state


def whole_frame_deconvolution(model: EvifPipeline) -> Deconvolver | None:
    """The model's motion deconvolution of a whole frame, padded as inference pads it (None
    without one): training crops are cut from its result (``ShardData``)."""
    if not model.deblur.use_motion:
        return None
    motion, multiple = model.deblur.motion, model.multiple

    def run(ir_n: np.ndarray, exp_vox: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x, h, w = pad_to(torch.from_numpy(ir_n)[None, None], multiple)
            v = pad_to(torch.from_numpy(exp_vox)[None], multiple)[0]
            return motion(x, EvifPipeline.events_in(v))[0][0, 0, :h, :w].numpy()
    return run


def save_checkpoint(path: Path, model, opt, it: int, cfg: EvifConfig, stage: int) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "iter": it,
                "config": cfg.to_dict(), "stage": stage}, tmp)
    tmp.replace(path)


def optimizer(params: list, lr: float, resumed: dict | None) -> torch.optim.AdamW:
    """AdamW over ``params``, with the state of the checkpoint ``resumed`` (a resumed run)."""
    opt = torch.optim.AdamW(params, lr=lr)
    if resumed is not None:
        opt.load_state_dict(resumed["opt"])
    return opt


def load_checkpoint(path: Path) -> dict:
    if not Path(path).is_file():
        raise InputFileError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputFileError(f"{path}: refused: holds objects other than tensors and plain "
                             "data (checkpoints are never unpickled as code)") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds
        raise InputFileError(f"{path}: not a readable checkpoint ({reason(exc)})") from exc


def is_exported(path: Path) -> bool:
    """Whether ``path`` is an `evif export` file (a TorchScript archive with evif.json)
    rather than a training checkpoint (both are zip archives)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/extra/evif.json") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def model_from_exported(path: Path) -> tuple[EvifPipeline, EvifConfig, dict, torch.nn.Module]:
    """The eager model of an exported file, from its own weights, its metadata and the
    scripted module itself."""
    old, meta = load_exported(path)
    try:
        cfg = EvifConfig(**meta["config"])
    except TypeError as exc:
        raise InputFileError(f"{path}: its configuration is not this code's "
                             f"({reason(exc)})") from exc
    model = EvifPipeline(cfg)
    try:
        keys = model.load_state_dict(old.state_dict(), strict=False)
    except RuntimeError as exc:
        raise InputFileError(f"{path}: its weights do not fit this code's "
                             f"{cfg.size!r} model ({reason(exc)})") from exc
    # an ablation without enhancement never runs the enhancement module, whose parameters
    # older files may lack (e.g. its LayerScale, added later)
    missing = [k for k in keys.missing_keys if cfg.enhance or not k.startswith("deblur.cte.")]
    if keys.unexpected_keys or missing:
        raise InputFileError(f"{path}: its weights do not fit this code's {cfg.size!r} "
                             f"model (missing {missing[:3]}, unexpected "
                             f"{keys.unexpected_keys[:3]})")
    return model, cfg, meta, old


def model_from_checkpoint(path: Path, ck: dict | None = None
                          ) -> tuple[EvifPipeline, EvifConfig, dict]:
    """The model a checkpoint holds; ``ck``: the checkpoint already loaded from ``path``.
    An exported model file serves too (its weights; stage and iteration from its
    metadata), so a shipped file can be trained on without the run that made it."""
    if ck is None and is_exported(Path(path)):
        model, cfg, meta, _ = model_from_exported(Path(path))
        return model, cfg, {"stage": meta.get("stage", 3), "iter": meta.get("iter", 0),
                            "config": cfg.to_dict(), "model": model.state_dict()}
    ck = load_checkpoint(path) if ck is None else ck
    if not isinstance(ck, dict) or not isinstance(ck.get("config"), dict) \
            or not isinstance(ck.get("model"), dict):
        raise InputFileError(f"{path}: not an `evif train` checkpoint (no config/model)")
    try:
        cfg = EvifConfig(**ck["config"])
        model = EvifPipeline(cfg)
        model.load_state_dict(ck["model"])
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise InputFileError(f"{path}: checkpoint does not fit the model "
                             f"({reason(exc)})") from exc
    return model, cfg, ck


def recon_from(path: Path, cfg: EvifConfig) -> EvifPipeline:
    """A fresh model of ``cfg`` with the reconstruction network of ``path`` (a checkpoint
    or an exported file), which must have the same reconstruction design."""
    other, other_cfg, _ = model_from_checkpoint(path)
    model = EvifPipeline(cfg)
    try:
        model.recon.load_state_dict(other.recon.state_dict())
    except RuntimeError as exc:
        raise ConfigError(f"--init-recon {path}: its {other_cfg.size!r} reconstruction does "
                          f"not fit the {cfg.size!r} model ({reason(exc)})") from exc
    return model


def fusion_from(model: EvifPipeline, path: Path) -> list[str]:
    """Copy into ``model``'s fusion network every tensor of ``path``'s whose shape agrees;
    returns the names left as they were."""
    other = model_from_checkpoint(path)[0].fusion.state_dict()
    own = model.fusion.state_dict()
    fits = {k: v for k, v in other.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise ConfigError(f"--init-fusion {path}: no fusion weight fits this model's")
    model.fusion.load_state_dict(fits, strict=False)
    return sorted(set(own) - set(fits))


def moved_enhancement(model: EvifPipeline, cfg: EvifConfig, level: int
                      ) -> tuple[EvifPipeline, EvifConfig]:
    """The same model with the cross-task enhancement at ``level``: every other weight
    kept, the enhancement's own started afresh (its shapes differ between levels)."""
    if level not in (1, 2):
        raise ConfigError(f"--enhance-level must be 1 or 2, got {level}")
    if not cfg.enhance:
        raise ConfigError("--enhance-level needs the cross-task enhancement (not with "
                          "--no-enhance or an ablation's checkpoint)")
    cfg = replace(cfg, enhance_level=level)
    moved = EvifPipeline(cfg)
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith("deblur.cte.")}
    moved.load_state_dict(kept, strict=False)
    return moved, cfg


def seeing_blurry(model: EvifPipeline, cfg: EvifConfig) -> tuple[EvifPipeline, EvifConfig]:
    """The same model whose deblurring network also sees the blurry frame: the image
    head's weights for that input start at zero, so its outputs are the model's own."""
    if not cfg.motion_taps:
        raise ConfigError("--deblur-sees-blurry needs the motion deconvolution (evif train "
                          "--motion-taps N): without it the network's frame is the blurry one")
    cfg = replace(cfg, deblur_sees_blurry=True)
    wider = EvifPipeline(cfg)
    state = model.state_dict()
    name = "deblur.img_head.0.weight"
    old = state[name]
    grown = torch.zeros_like(wider.state_dict()[name])
    grown[:, :old.shape[1]] = old  # the frame's channels first (BlockConv's layout)
    wider.load_state_dict({**state, name: grown})
    return wider, cfg


def train(args: TrainArgs, progress: bool = True) -> Path:
    if args.stage not in (1, 2, 3):
        raise ConfigError(f"--stage must be 1, 2 or 3, got {args.stage}")
    if args.fusion not in FUSION_OBJECTIVES:
        raise ConfigError(f"--fusion must be one of {', '.join(FUSION_OBJECTIVES)}, "
                          f"got {args.fusion!r}")
    fw = args.fusion_weights
    if fw is not None and (not 5 <= len(fw) <= len(FUSION_TERMS) or any(w < 0 for w in fw)):
        raise ConfigError(f"--fusion-weights needs 5 to {len(FUSION_TERMS)} non-negative "
                          f"numbers ({', '.join(FUSION_TERMS)}), got "
                          f"{list(fw)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device}: no CUDA device here")
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    output_dir(out)
    ckpt = out / f"stage{args.stage}.pt"
    start = 0
    if ckpt.exists():  # resume this stage
        model, cfg, ck = model_from_checkpoint(ckpt)
        start = ck["iter"]
    elif args.init_recon is not None:
        if args.stage != 2 or args.init is not None:
            raise ConfigError("--init-recon starts stage 2 (without --init)")
        cfg = config_for(args.size, enhance=args.enhance)
        model = recon_from(args.init_recon, cfg)
    elif args.init is not None:
        model, cfg, init = model_from_checkpoint(args.init)
        if args.stage == 2 and init.get("stage") == 1:
            # the deblurring network starts fresh (near the identity); only the
            # reconstruction network carries over from stage 1
            recon = model.recon.state_dict()
            cfg = config_for(cfg.size, enhance=args.enhance, motion_taps=cfg.motion_taps)
            model = EvifPipeline(cfg)
            model.recon.load_state_dict(recon)
        # otherwise stage 3 continues from stage 2, or a stage from its own stage's
        # checkpoint (fine-tuning on other data, a fresh optimizer and schedule)
        if cfg.enhance != args.enhance:
            raise ConfigError(f"--init {args.init} was trained with enhance={cfg.enhance}; "
                              "a later stage keeps that setting")
    else:
        if args.stage != 1:
            raise ConfigError(f"stage {args.stage} needs --init <stage {args.stage - 1} "
                              "checkpoint> (progressive training)")
        cfg = config_for(args.size, enhance=args.enhance)
        model = EvifPipeline(cfg)
    # settings that own no weights (the motion deconvolution's, the deblurring network's
    # activation): the same weights, rebuilt once under all of them
    changes: dict = {}
    if args.motion_taps is not None and args.motion_taps != cfg.motion_taps:
        changes["motion_taps"] = args.motion_taps
    if args.motion_curved and not cfg.motion_curved:
        changes["motion_curved"] = True
    if args.motion_everywhere and cfg.motion_gate:
        changes["motion_gate"] = False
    if args.motion_lag is not None and args.motion_lag != cfg.motion_lag:
        changes["motion_lag"] = args.motion_lag
    if args.motion_border is not None and args.motion_border != cfg.motion_border:
        changes["motion_border"] = args.motion_border
    if args.deblur_act is not None and args.deblur_act != cfg.deblur_act:
        changes["deblur_act"] = args.deblur_act
    if changes and start == 0:
        model, cfg = with_settings(model, cfg, **changes)
    if args.init_fusion is not None and start == 0:
        if args.stage != 3:
            raise ConfigError("--init-fusion starts stage 3")
        fresh = fusion_from(model, args.init_fusion)
        if progress:
            print(f"fusion from {args.init_fusion}; fresh: {', '.join(fresh) or 'none'}")
    if args.enhance_level is not None and args.enhance_level != cfg.enhance_level \
            and start == 0:
        model, cfg = moved_enhancement(model, cfg, args.enhance_level)
    if args.deblur_sees_blurry and not cfg.deblur_sees_blurry and start == 0:
        model, cfg = seeing_blurry(model, cfg)
    model.to(device).train()
    if args.freeze_tasks and args.stage == 3:
        for part in (model.recon, model.deblur):
            part.requires_grad_(False)
    if args.freeze_recon:  # a reconstruction trained on its own (evif train-visible) stays
        model.recon.requires_grad_(False)
    opt = optimizer([p for p in model.parameters() if p.requires_grad], args.lr,
                    ck if ckpt.exists() else None)
    if start >= args.iters:
        return ckpt
    data = ShardData(args.data, "train", args.limit, whole_frame_deconvolution(model))
    if len(data) == 0:
        raise InputFileError(f"{args.data}: no training samples")
    # image feedback: every event since the previous window, as the runtime cuts them
    span = FEEDBACK_SPAN_NS if cfg.recon_feedback else 0
    batches = batch_stream(data, [args.seed, args.stage, start], args.batch, args.crop,
                           cfg.sub_windows, args.workers, span)
    log_path = out / f"stage{args.stage}.csv"
    new_log = not log_path.exists() or start == 0
    with open(log_path, "w" if new_log else "a", newline="") as fh:
        writer = None
        bar = tqdm(total=args.iters, initial=start, desc=f"stage {args.stage}", unit="it",
                   disable=not progress)
        t0 = time.time()
        for it in range(start, args.iters):
            batch = next(batches).to(device)
            for group in opt.param_groups:
                group["lr"] = learning_rate(args, it)
            loss, terms = stage_losses(model, batch, args.stage, args.mi, args.deblur_weight,
                                       args.fusion, args.fusion_weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            row = {"iter": it + 1, "loss": float(loss.detach()),
                   "wall_s": round(time.time() - t0, 1), **terms}
            if writer is None:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                if new_log:
                    writer.writeheader()
            writer.writerow(row)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            bar.update(1)
            out_of_time = bool(args.time_limit_min) and time.time() - t0 > 60 * args.time_limit_min
            if (it + 1) % args.checkpoint_every == 0 or it + 1 == args.iters or out_of_time:
                fh.flush()
                save_checkpoint(ckpt, model, opt, it + 1, cfg, args.stage)
            if out_of_time:
                bar.write(f"stage {args.stage}: time limit reached at iteration {it + 1} of "
                          f"{args.iters}; run the same command again to resume")
                break
        bar.close()
    return ckpt
