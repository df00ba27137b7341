"""Training the visible reconstruction alone on long event sequences (``evif video-dataset``),
with its state carried over every window and truncated backpropagation through time.

The other networks keep their weights: a pipeline file (or checkpoint) goes in, the same
pipeline with a retrained reconstruction comes out. Starting from a model without image
feedback, the reconstruction's first convolution gains the fed-back image's channels
(zero-initialised) and its prediction a gate plane (starting nearly shut: 5 % of the last
image kept), so the new network starts as the old one.

Loss per window (after the first ``skip`` windows, which start from a reset state): L1 +
(1 - SSIM) + ``structure`` x :func:`structure_loss` against the sharp frame at the window's
end; ``reset_weight`` weighs the sequence's first window (made from a reset state, as a
node's first frame or `evif eval`'s single exposures) against the others. ``advect`` adds
the event advection of the kept image (``ReconNet`` advect) to a model that has image
feedback: a step plane whose weights start at zero.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from evif_ros.errors import ConfigError, InputFileError
from evif_ros.learning.losses import ssim, structure_loss
from evif_ros.learning.pipeline import EvifConfig, EvifPipeline, with_settings
from evif_ros.learning.recon import STEP_INIT
from evif_ros.learning.train import (
    load_checkpoint,
    model_from_checkpoint,
    optimizer,
    save_checkpoint,
)
from evif_ros.paths import output_dir
from evif_ros.sim.video import iter_sequences

GATE_BIAS = -3.0


@dataclass
class VisibleTrainArgs:
    data: Path
    out: Path
    init: Path  # a pipeline file or checkpoint whose reconstruction is retrained
    iters: int = 1000
    batch: int = 4
    crop: int = 112
    windows: int = 16  # consecutive windows per training sequence (state carried)
    tbptt: int = 8  # windows per backpropagation (the state is detached between)
    skip: int = 0  # first windows of a sequence without loss (the state is still empty)
    lr: float = 3e-4
    threads: int = 0
    seed: int = 0
    checkpoint_every: int = 100
    time_limit_min: float = 0.0
    limit: int = 0  # only the first N sequences (tests)
    structure: float = 0.0  # weight of the structure loss
    advect: bool = False  # add the event advection of the kept image
    advect_support: int = 0  # neighbouring events an event needs to move the image
    # > 0: the advection step of each sequence is scaled by its sensor's threshold over this
    # reference, as the runtime scales it for a rig whose threshold it is told
    contrast_ref: float = 0.0
    # probability per training sequence of an event gap (drop_event_gap): the sensor's
    # events lost for up to two windows while the scene goes on moving
    gaps: float = 0.0
    # the loss of each sequence's first window (from a reset state) counts this many times
    # a later window's: 1 of 16 windows is too little to learn a first frame from
    reset_weight: float = 1.0


class SequenceData:
    """A video split in memory: event counts (N, T, K, 2, S, S) uint8, frames (N, T, S, S),
    each sequence's sensor threshold (N,) (NaN if its shard predates it)."""

    def __init__(self, data_dir: Path, split: str = "train", limit: int = 0):
        counts, frames, c_on = [], [], []
        for i, q in enumerate(iter_sequences(Path(data_dir), split)):
            if limit and i >= limit:
                break
            counts.append(q["counts"])
            frames.append(q["frames"])
            c_on.append(q["c_on"])
        self.counts, self.frames = np.stack(counts), np.stack(frames)
        self.c_on = np.array(c_on)
        self.last: list[int] = []  # the sequences of the last batch

    def __len__(self) -> int:
        return self.counts.shape[0]

    def batch(self, rng: np.random.Generator, size: int, crop: int, windows: int,
              gaps: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(events (B, T, K, 2, c, c) float counts, frames (B, T, 1, c, c) in [0, 1])``:
        random sequences, start windows, crops, flips and quarter turns; with probability
        ``gaps`` a sequence loses a span of its events (:func:`drop_event_gap`)."""
        n, t_all, _, _, s, _ = self.counts.shape
        if windows > t_all or crop > s:
            raise ConfigError(f"sequences hold {t_all} windows of {s} px; asked for "
                              f"{windows} windows of {crop} px")
        ev, im = [], []
        self.last = []
        for _ in range(size):
            i, t0 = int(rng.integers(n)), int(rng.integers(t_all - windows + 1))
            self.last.append(i)
            y, x = rng.integers(0, s - crop + 1, 2)
            e = self.counts[i, t0:t0 + windows, ..., y:y + crop, x:x + crop]
            f = self.frames[i, t0:t0 + windows, y:y + crop, x:x + crop]
            turns = int(rng.integers(4))
            e, f = np.rot90(e, turns, (-2, -1)), np.rot90(f, turns, (-2, -1))
            if rng.random() < 0.5:
                e, f = e[..., ::-1], f[..., ::-1]
            e = np.array(e, order="C")  # a copy: a gap must not reach the data in memory
            if gaps and rng.random() < gaps:
                drop_event_gap(e, rng)
            ev.append(e)
            im.append(np.ascontiguousarray(f))
        return (torch.from_numpy(np.stack(ev)).float(),
                torch.from_numpy(np.stack(im))[:, :, None].float() / 255.0)


def drop_event_gap(events: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """Zero, in place, a random span of 1 to 2K consecutive sub-windows of one sequence's
    counts (T, K, ...), never in its first window; returns the span ``[a, b)`` in
    sub-windows. What a real recording does when events are lost (a saturated bus, a
    recording that keeps only each APS exposure's events, as eSL-Net's ``cups``): the
    scene moves on without events, and the kept image must recover from it, not keep a
    stale copy beside the new edges."""
    t, k = events.shape[0], events.shape[1]
    if t < 2:
        return 0, 0
    flat = events.reshape(t * k, *events.shape[2:])  # a view: events is contiguous
    length = int(rng.integers(1, 2 * k + 1))
    a = int(rng.integers(k, max(k + 1, t * k - length + 1)))
    b = min(a + length, t * k)
    flat[a:b] = 0
    return a, b


def with_feedback(model: EvifPipeline, cfg: EvifConfig) -> tuple[EvifPipeline, EvifConfig]:
    """The same pipeline with image feedback in its reconstruction: every weight kept, the
    first convolution widened by the fed-back image's channels (zeros)."""
    if cfg.recon_feedback:
        return model, cfg
    if not cfg.recon_stacked:
        raise ConfigError(f"the {cfg.size!r} model's reconstruction runs per sub-window; "
                          "image feedback is built for the stacked (real-time) sizes")
    new_cfg = replace(cfg, recon_feedback=True, size=f"{cfg.size}+feedback"
                      if cfg.size != "rt2" else "rt3")
    new = EvifPipeline(new_cfg)
    sd = model.state_dict()
    key = "recon.head.0.weight"
    old_w = sd[key]
    w = torch.zeros_like(new.state_dict()[key])
    w[:, :old_w.shape[1]] = old_w  # pixel unshuffle keeps each input channel's blocks together
    sd[key] = w
    _append_planes(sd, new, GATE_BIAS)  # the gate: sigmoid(-3) = 0.05 of the last image
    new.load_state_dict(sd)
    return new, new_cfg


def _append_planes(sd: dict, new: EvifPipeline, bias: float) -> None:
    """Widen ``sd``'s prediction layer to ``new``'s: the added output planes follow the old
    ones (pixel shuffle: output plane c takes channels c*s*s ... (c+1)*s*s - 1), with zero
    weights and ``bias``, so they start the same at every pixel."""
    for name in ("recon.pred.weight", "recon.pred.bias"):
        old_p, new_p = sd[name], torch.zeros_like(new.state_dict()[name])
        new_p[:old_p.shape[0]] = old_p
        if name.endswith("bias"):
            new_p[old_p.shape[0]:] = bias
        sd[name] = new_p


def with_advection(model: EvifPipeline, cfg: EvifConfig, support: int = 0
                   ) -> tuple[EvifPipeline, EvifConfig]:
    """The same pipeline with the kept image moved by the events: every weight kept, the
    step plane's weights zero and its bias at ``STEP_INIT``, so the step starts the same
    everywhere (0.03 per event) and the gate decides, as before, how much of it is kept.
    ``support``: ``EvifConfig.recon_advect_support``."""
    if cfg.recon_advect:  # the support is a setting without weights of its own
        if support == cfg.recon_advect_support:
            return model, cfg
        return with_settings(model, cfg, recon_advect_support=support)
    if not cfg.recon_feedback:
        raise ConfigError("the event advection moves the fed-back image: add image feedback "
                          "first (train-visible without --advect)")
    new_cfg = replace(cfg, recon_advect=True, recon_advect_support=support,
                      size="rt4" if cfg.size == "rt3" else f"{cfg.size}+advect")
    new = EvifPipeline(new_cfg)
    sd = model.state_dict()
    _append_planes(sd, new, float(np.log(STEP_INIT / (1 - STEP_INIT))))
    new.load_state_dict(sd)
    return new, new_cfg


def sequence_loss(model: EvifPipeline, events: torch.Tensor, frames: torch.Tensor,
                  state: list, first: int, skip: int, structure: float = 0.0,
                  gain: torch.Tensor | None = None, reset_weight: float = 1.0
                  ) -> tuple[torch.Tensor, list, dict]:
    """Run the reconstruction over ``events`` (B, T, K, 2, H, W) from ``state``; the
    weighted mean loss over windows ``first + j >= skip`` (window 0, from a reset state,
    weighs ``reset_weight``, the others 1), the new state, and the unweighted mean terms.
    ``gain``: the advection step's factor per sequence (B, 1, 1, 1)."""
    total = torch.zeros(())
    l1_sum, ssim_sum, st_sum, n, weights = 0.0, 0.0, 0.0, 0, 0.0
    for j in range(events.shape[1]):
        vis, state, _, _ = model.reconstruct(events[:, j], state, gain=gain)
        if first + j < skip:
            continue
        l1 = F.l1_loss(vis, frames[:, j])
        s = 1 - ssim(vis, frames[:, j])
        window = l1 + s
        if structure:
            st = structure_loss(vis, frames[:, j])
            window = window + structure * st
            st_sum += float(st.detach())
        w = reset_weight if first + j == 0 else 1.0
        total, weights = total + w * window, weights + w
        l1_sum, ssim_sum, n = l1_sum + float(l1.detach()), ssim_sum + float(s.detach()), n + 1
    n_t = max(n, 1)
    return total / max(weights, 1e-12), state, {"l1": l1_sum / n_t, "ssim": 1 - ssim_sum / n_t,
                                "structure": 1 - st_sum / n_t if structure else float("nan")}


def train_visible(args: VisibleTrainArgs, progress: bool = True) -> Path:
    if args.tbptt < 1 or args.windows < 1:
        raise ConfigError("--windows and --tbptt must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    output_dir(out)
    ckpt = out / "visible.pt"
    start = 0
    if ckpt.exists():  # resume
        ck = load_checkpoint(ckpt)
        model, cfg, ck = model_from_checkpoint(ckpt, ck)
        start = int(ck["iter"])
        stage = int(ck.get("stage", 3))
    else:
        model, cfg, init = model_from_checkpoint(args.init)
        stage = int(init.get("stage", 3))
        model, cfg = with_feedback(model, cfg)
        if args.advect:
            model, cfg = with_advection(model, cfg, args.advect_support)
    model.train()
    model.requires_grad_(False)
    model.recon.requires_grad_(True)
    params = list(model.recon.parameters())
    opt = optimizer(params, args.lr, ck if start else None)
    if start >= args.iters:
        return ckpt
    data = SequenceData(args.data, "train", args.limit)
    if len(data) == 0:
        raise InputFileError(f"{args.data}: no training sequences")
    if args.contrast_ref > 0 and not (cfg.recon_advect and np.isfinite(data.c_on).all()):
        raise ConfigError(f"{args.data}: --contrast-ref needs --advect and shards that store "
                          "each sequence's threshold (c_on; remake them with this version)")
    rng = np.random.default_rng([args.seed, start])
    log_path = out / "visible.csv"
    new_log = not log_path.exists() or start == 0
    bar = tqdm(total=args.iters, initial=start, desc="visible", unit="it", disable=not progress)
    t0 = time.time()
    with open(log_path, "w" if new_log else "a", newline="") as fh:
        writer = csv.writer(fh)
        if new_log:
            writer.writerow(["iter", "loss", "l1", "ssim", "structure", "wall_s"])
        for it in range(start, args.iters):
            # cosine decay over the run, a function of the iteration (resumes follow it)
            lr = float(args.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * it / args.iters))))
            for g in opt.param_groups:
                g["lr"] = lr
            events, frames = data.batch(rng, args.batch, args.crop, args.windows, args.gaps)
            gain = None if args.contrast_ref <= 0 else torch.from_numpy(
                data.c_on[data.last] / args.contrast_ref).float().view(-1, 1, 1, 1)
            state: list = []
            losses, terms = [], {}
            for first in range(0, args.windows, args.tbptt):
                sl = slice(first, first + args.tbptt)
                loss, state, terms = sequence_loss(model, events[:, sl], frames[:, sl], state,
                                                   first, args.skip, args.structure, gain,
                                                   args.reset_weight)
                opt.zero_grad(set_to_none=True)
                if loss.requires_grad:
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    opt.step()
                state = [s.detach() for s in state]
                losses.append(float(loss.detach()))
            writer.writerow([it + 1, round(float(np.mean(losses)), 5), round(terms["l1"], 5),
                             round(terms["ssim"], 4), round(terms["structure"], 4),
                             round(time.time() - t0, 1)])
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", ssim=f"{terms['ssim']:.3f}")
            bar.update(1)
            late = bool(args.time_limit_min) and time.time() - t0 > 60 * args.time_limit_min
            if (it + 1) % args.checkpoint_every == 0 or it + 1 == args.iters or late:
                fh.flush()
                save_checkpoint(ckpt, model, opt, it + 1, cfg, stage)
            if late:
                bar.write(f"visible: time limit at iteration {it + 1}; rerun to resume")
                break
    bar.close()
    return ckpt
