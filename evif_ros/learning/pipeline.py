"""The whole EVIF pipeline as one module, with the TorchScript contract of DESIGN.md.

``forward(ir, exposure_voxel, sub_voxels, state) -> (fused, ir_deblurred, visible, state)``

- ``ir``: (B, 1, H, W) blurry IR in raw counts, already warped onto the event camera grid;
- ``exposure_voxel``: (B, 10, H, W) event counts of the exposure (5 time bins x 2
  polarities, :func:`evif_ros.runtime.voxel.polarity_voxel_grid`);
- ``sub_voxels``: (B, K, 10, H, W) the same for the K reconstruction sub-windows that end
  at mid-exposure;
- ``state``: the reconstruction network's recurrent state (empty list = reset).

Returns the fused image and the visible reconstruction in [0, 1], the deblurred IR in
raw counts, and the new state. ``step(sub_voxels, state, channels_last)`` runs the
reconstruction alone and returns its new state (a window cut into several steps).

Any H, W: inputs are padded to a multiple of 8 (16 with 16-px fusion tokens or at half
resolution) inside and outputs cropped back (346 x 260 divides by neither).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from evif_ros.errors import ConfigError
from evif_ros.learning.deblur import DeblurNet
from evif_ros.learning.fusion import FusionNet
from evif_ros.learning.layers import ACTIVATIONS, pad_to
from evif_ros.learning.recon import ReconNet

MULTIPLE = 8


@dataclass(frozen=True)
class EvifConfig:
    size: str = "lite"
    in_ch: int = 10
    sub_windows: int = 20
    recon_base: int = 32
    recon_kernel: int = 5  # E2VID uses 5x5
    deblur_base: int = 64
    fusion_base: int = 32
    fusion_dim: int = 64
    heads: int = 4
    enhance: bool = True  # cross-task event enhancement (ablation: False)
    # False: the reconstruction UNet runs once per sub-window (E2VID, the paper); True: once
    # per IR frame on the K sub-window grids stacked as channels, its recurrent state
    # carried from frame to frame (K times cheaper; the real-time sizes)
    recon_stacked: bool = False
    recon_recurrent: str = "all"  # ConvLSTMs after every encoder ("all") or "bottleneck"
    fusion_patch: int = 8  # side of the fusion transformers' patch tokens (px)
    fusion_mix_kernel: int = 3  # kernel of the fusion's projection and merge convolutions
    conv_first: bool = False  # decoders convolve at the coarse scale, then upsample
    # 2: all three networks run at half resolution on 2x2 pixel blocks stacked as channels
    # (pixel unshuffle) and return their images through a pixel shuffle (ESPCN); the
    # fusion patch is then in half-resolution pixels
    scale: int = 1
    # > 0: the IR frame is deconvolved with the exposure's global motion, estimated from
    # its events, before the deblurring network (evif_ros.learning.motion); the value is the
    # number of sharp frames the blur model averages (the paper's blur: 7); 0: off
    motion_taps: int = 0
    # with motion_taps: the blur along a quadratic path through the shifts of the exposure's
    # time bins (curved or accelerating motion) instead of one straight shift
    motion_curved: bool = False
    # with motion_taps: the thermal camera's time constant over its exposure (a
    # microbolometer of 10 ms read over 25 ms: 0.4); the blur is then the sensor's lag along
    # the path as well as the exposure (motion.lag_kernel); 0: the paper's plain average.
    # Owns no weights: a rig sets it when it exports its file (evif export --ir-lag-ms)
    motion_lag: float = 0.0
    # with motion_taps: the deconvolved frame replaces the blurry one only within 2 px of
    # the exposure's events (True, as trained until 2026-12-03), or wherever the
    # deconvolution itself keeps it (its margin from the border; motion that sharpens the
    # events): +0.2 dB on the RoadScene test split with the same weights (model card)
    motion_gate: bool = True
    # with motion_taps: > 0, the frame is deconvolved up to its border, the blur of what
    # lies outside it modelled (motion.bounded_inverse, this many conjugate-gradient steps),
    # instead of keeping a margin of the blur's reach blurry; owns no weights (evif export
    # --motion-border N): +0.4 dB on the RoadScene test split with the same weights
    motion_border: int = 0
    # the deblurring network's activation (layers.ACTIVATIONS): "lrelu" keeps a gradient on
    # units that ReLU has switched off for every input (the shipped rt2 network's decoder
    # died that way, cutting off its encoder and the cross-task enhancement)
    deblur_act: str = "relu"
    # where cross-task enhancement acts: 2, the paper's place, the deblurring network's
    # second level (the event feature F_de at half of its resolution, with the
    # reconstruction's feature there); 1, its first level, with the reconstruction's last
    # decoder feature: the finest scale either network has, where IR edges are sharpened
    enhance_level: int = 2
    # the reconstruction's state holds its last image, fed back beside the events
    # (ReconNet feedback); trained on every event since the previous window, so the
    # runtime cuts the sub-windows over a whole IR frame period (recon_span)
    recon_feedback: bool = False
    # with recon_feedback: the kept image moved by the events before the gate mixes it
    # (ReconNet advect), so it follows slow motion instead of being replaced by a blur
    recon_advect: bool = False
    # with recon_advect: events move the kept image only where at least this many fell on
    # the 8 neighbouring pixels in the window (0: everywhere); isolated noise events do not
    recon_advect_support: int = 0
    # with motion_taps: the deblurring network's image branch sees the blurry frame beside
    # the deconvolved one, so it can take back what a wrong path made worse (the network
    # that sees only the deconvolved frame cannot tell ringing from edges)
    deblur_sees_blurry: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


SIZES = {
    # widths of the authors' release (DESIGN.md): recon UNet 32 base, EFNet 64 base, K = 20
    "paper": EvifConfig(size="paper"),
    # for one GPU: the paper's K = 20 sub-windows at half the paper's widths, so the
    # exported weights stay under 20 MB and the whole pipeline within 10 ms on an H100
    "gpu": EvifConfig(size="gpu", sub_windows=20, recon_base=16, recon_kernel=3,
                      deblur_base=32, fusion_base=32, fusion_dim=64, heads=4),
    # trainable on 2 CPU cores in about an hour
    "lite": EvifConfig(size="lite", sub_windows=6, recon_base=8, recon_kernel=3,
                       deblur_base=16, fusion_base=16, fusion_dim=32, heads=2),
    # real time on a 2-core CPU: one reconstruction pass per IR frame over the stacked
    # sub-windows, 8-channel bases; the whole pipeline within one FireNet pass
    "rt": EvifConfig(size="rt", sub_windows=6, recon_base=8, recon_kernel=3,
                     deblur_base=8, fusion_base=8, fusion_dim=32, heads=2, recon_stacked=True,
                     recon_recurrent="bottleneck", fusion_patch=16,
                     fusion_mix_kernel=1, conv_first=True),
    # the real-time design at half resolution: every network on 2x2 pixel blocks (pixel
    # unshuffle), images back through a pixel shuffle, the reconstruction twice as wide;
    # 0.65x a FireNet pass with one thread (rt: 1.0x), 16-px fusion tokens as in rt
    "rt2": EvifConfig(size="rt2", sub_windows=6, recon_base=16, recon_kernel=3,
                      deblur_base=8, fusion_base=8, fusion_dim=32, heads=2,
                      recon_stacked=True, recon_recurrent="bottleneck", fusion_patch=8,
                      fusion_mix_kernel=1, conv_first=True, scale=2),
    # rt2 whose reconstruction feeds its last image back (holds the scene through quiet
    # periods) and sees every event since the previous window
    "rt3": EvifConfig(size="rt3", sub_windows=6, recon_base=16, recon_kernel=3,
                      deblur_base=8, fusion_base=8, fusion_dim=32, heads=2,
                      recon_stacked=True, recon_recurrent="bottleneck", fusion_patch=8,
                      fusion_mix_kernel=1, conv_first=True, scale=2, recon_feedback=True),
}
# rt3 whose kept image is moved by the events (follows slow motion), where neighbouring
# events support them (a resting camera's isolated noise events do not move it)
SIZES["rt4"] = replace(SIZES["rt3"], size="rt4", recon_advect=True, recon_advect_support=2)
# the quality tier (evif_hq.ts, for a GPU): the shipped reconstruction (rt4, with the
# advection's support rule) and a deblurring network four times as wide (1.1 M parameters,
# EFNet at half its width) behind the curved motion deconvolution kept everywhere; leaky
# ReLU, so no unit of the fresh network dies. Trained from the rt file's reconstruction
# (evif train --size hq --init-recon models/evif_rt.ts)
SIZES["hq"] = replace(SIZES["rt4"], size="hq", deblur_base=32, motion_taps=7,
                      motion_curved=True, motion_gate=False, deblur_act="lrelu")


def config_for(size: str, **overrides) -> EvifConfig:
    if size not in SIZES:
        raise ValueError(f"model size {size!r} is not one of {', '.join(SIZES)}")
    return replace(SIZES[size], **overrides)


class EvifPipeline(nn.Module):
    def __init__(self, cfg: EvifConfig):
        super().__init__()
        self.sub_windows = cfg.sub_windows
        self.recon_stacked = cfg.recon_stacked
        # stacked: each sub-window enters as its ON and OFF counts (time bins summed), so
        # the full-resolution input stays at 2K channels
        recon_in = 2 * cfg.sub_windows if cfg.recon_stacked else cfg.in_ch
        self.recon = ReconNet(recon_in, cfg.recon_base, kernel=cfg.recon_kernel,
                              recurrent=cfg.recon_recurrent, conv_first=cfg.conv_first,
                              shuffle=cfg.scale, feedback=cfg.recon_feedback,
                              advect=cfg.recon_advect,
                              advect_support=cfg.recon_advect_support)
        self.n_state = self.recon.n_state
        self.deblur = DeblurNet(cfg.in_ch, cfg.deblur_base, 2 * cfg.recon_base, cfg.enhance,
                                conv_first=cfg.conv_first, shuffle=cfg.scale,
                                motion_taps=cfg.motion_taps, motion_curved=cfg.motion_curved,
                                motion_lag=cfg.motion_lag, motion_gate=cfg.motion_gate,
                                motion_border=cfg.motion_border,
                                act=cfg.deblur_act, enhance_level=cfg.enhance_level,
                                c_dec=cfg.recon_base, sees_blurry=cfg.deblur_sees_blurry)
        self.fusion = FusionNet(cfg.recon_base, cfg.deblur_base, cfg.fusion_base,
                                cfg.fusion_dim, cfg.heads, patch=cfg.fusion_patch,
                                mix_kernel=cfg.fusion_mix_kernel, shuffle=cfg.scale)
        self.use_fusion = True
        self.multiple = cfg.scale * max(MULTIPLE, cfg.fusion_patch)

    @staticmethod
    def normalize_ir(ir: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Per-image robust range (0.5 / 99.5 percentiles of the blurry frame)."""
        # in fp32 whatever the model's precision: quantile has no half kernel, and raw
        # counts up to 65535 overflow fp16's 11-bit mantissa
        flat = ir.flatten(1).float()
        lo = quantile(flat, 0.005).view(-1, 1, 1, 1)
        hi = quantile(flat, 0.995).view(-1, 1, 1, 1)
        scale = torch.clamp(hi - lo, min=1.0)
        return ((ir.float() - lo) / scale).to(ir.dtype), lo, scale

    @staticmethod
    def events_in(voxel: Tensor) -> Tensor:
        """Event counts -> network input (log compresses bursts of fast motion)."""
        return torch.log1p(voxel)

    @staticmethod
    def per_polarity(sub_voxels: Tensor) -> Tensor:
        """(B, K, 10, H, W) -> (B, K, 2, H, W): ON and OFF counts per sub-window, time bins
        summed (channels are [ON bins, OFF bins], ``polarity_voxel_grid``); idempotent."""
        b, k, c, h, w = sub_voxels.shape
        if c == 2:
            return sub_voxels
        return sub_voxels.reshape(b, k, 2, c // 2, h, w).sum(3)

    def reconstruct(self, sub_voxels: Tensor, state: List[Tensor], channels_last: bool = False,
                    gain: Optional[Tensor] = None
                    ) -> Tuple[Tensor, List[Tensor], List[Tensor], Tensor]:
        """(B, K, C, H, W) sub-window grids -> (visible at mid-exposure, state, the
        decoder features for cross-task enhancement (one per pass: at half the network's
        resolution, or its last with ``enhance_level`` 1), the last decoder feature).
        ``gain``: the advection step's factor per sample (``ReconNet``; training)."""
        b, k, c, h, w = sub_voxels.shape
        if self.recon_stacked:
            counts = self.per_polarity(sub_voxels).reshape(b, 2 * k, h, w)
            if channels_last:  # the stacked grids come from a 5-D tensor, always NCHW
                counts = counts.contiguous(memory_format=torch.channels_last)
            visible, state, feat, dec = self.recon(self.events_in(counts), state, counts, gain)
            return visible, state, [dec if self.deblur.enhance_level == 1 else feat], dec
        feats: List[Tensor] = []
        visible = sub_voxels[:, 0, :1]
        dec = visible
        for i in range(k):
            visible, state, feat, dec = self.recon(self.events_in(sub_voxels[:, i]), state)
            feats.append(dec if self.deblur.enhance_level == 1 else feat)
        return visible, state, feats, dec

    def run(self, ir_n: Tensor, exposure_voxel: Tensor, sub_voxels: Tensor,
            state: List[Tensor], ir_deconv: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Padded, normalised inputs -> every intermediate output (training and export).
        ``ir_deconv``: the motion deconvolution's result made beforehand (training crops of
        a frame deconvolved whole), else it runs on ``ir_n``."""
        # the runtime's memory layout (channels-last on the CPU), read off a many-channel input
        channels_last = exposure_voxel.is_contiguous(memory_format=torch.channels_last) \
            and not exposure_voxel.is_contiguous()
        visible, state, feats, dec_vis = self.reconstruct(sub_voxels, state, channels_last)
        sharp_n, dec_ir = self.deblur(ir_n, self.events_in(exposure_voxel), feats, ir_deconv)
        out: Dict[str, Tensor] = {"visible": visible, "ir_n": sharp_n}
        if self.use_fusion:
            fused, emb = self.fusion(visible, torch.clamp(sharp_n, 0.0, 1.0), dec_vis, dec_ir)
            out["fused"] = fused
            for k, v in emb.items():
                out[k] = v
        for i, s in enumerate(state):
            out[f"state{i}"] = s
        return out

    @torch.jit.export
    def step(self, sub_voxels: Tensor, state: List[Tensor], channels_last: bool = False
             ) -> List[Tensor]:
        """(B, K, C, H, W) sub-window grids, state -> the state after one reconstruction
        step, nothing else run: the earlier steps of a window whose events span more than
        the reconstruction was trained to take in one (the runtime's ``recon_step_ns``).
        The state is the one ``forward`` would return for these grids."""
        if self.recon_stacked:
            sub_voxels = self.per_polarity(sub_voxels)
        b, k, c, h, w = sub_voxels.shape
        sub_p, _, _ = pad_to(sub_voxels.reshape(b, k * c, h, w), self.multiple)
        sub_p = sub_p.reshape(b, k, c, sub_p.shape[2], sub_p.shape[3])
        if len(state) > 0 and state[0].shape[0] != b:
            state = []
        _, new_state, _, _ = self.reconstruct(sub_p, state, channels_last)
        return new_state

    def forward(self, ir: Tensor, exposure_voxel: Tensor, sub_voxels: Tensor,
                state: List[Tensor]) -> Tuple[Tensor, Tensor, Tensor, List[Tensor]]:
        if self.recon_stacked:  # fewer channels to pad (identical result)
            sub_voxels = self.per_polarity(sub_voxels)
        b, k, c, h, w = sub_voxels.shape
        ir_n, lo, scale = self.normalize_ir(ir)
        ir_p, _, _ = pad_to(ir_n, self.multiple)
        ev_p, _, _ = pad_to(exposure_voxel, self.multiple)
        sub_p, _, _ = pad_to(sub_voxels.reshape(b, k * c, h, w), self.multiple)
        sub_p = sub_p.reshape(b, k, c, ir_p.shape[2], ir_p.shape[3])
        if len(state) > 0 and state[0].shape[0] != b:
            state = []
        out = self.run(ir_p, ev_p, sub_p, state)
        new_state = [out[f"state{i}"] for i in range(self.n_state)]
        fused = out["fused"][:, :, :h, :w]
        ir_deblurred = out["ir_n"][:, :, :h, :w].float() * scale + lo
        visible = out["visible"][:, :, :h, :w]
        return fused, ir_deblurred, visible, new_state


def quantile(flat: Tensor, q: float) -> Tensor:
    """Per-row quantile of (B, N) with numpy's linear interpolation, from the few order
    statistics on the nearer side (``topk``) instead of the full sort ``torch.quantile``
    does: the 0.5 / 99.5 % pair takes 0.8 ms at 346x260, 3.8 ms by ``kthvalue`` (which
    copies the row for each of its four calls)."""
    n = flat.shape[1]
    pos = q * (n - 1)
    i = int(pos)
    j = min(i + 1, n - 1)
    if i < n - 1 - i:  # smallest first: v[:, r] is order statistic r
        v = torch.topk(flat, j + 1, dim=1, largest=False, sorted=True).values
        lower, upper = v[:, i], v[:, j]
    else:  # largest first: v[:, m] is order statistic n - 1 - m
        v = torch.topk(flat, n - i, dim=1, largest=True, sorted=True).values
        lower, upper = v[:, n - 1 - i], v[:, n - 1 - j]
    return lower + (pos - i) * (upper - lower)


def with_settings(model: EvifPipeline, cfg: EvifConfig, **changes
                  ) -> tuple[EvifPipeline, EvifConfig]:
    """The same weights under other settings that own none (the motion deconvolution's,
    the deblurring network's activation); settings that do not go together are refused."""
    cfg = replace(cfg, **changes)
    if cfg.motion_curved and not cfg.motion_taps:
        raise ConfigError("--motion-curved needs the motion deconvolution (evif train "
                          "--motion-taps N)")
    if cfg.motion_lag and not cfg.motion_taps:
        raise ConfigError("a thermal lag (--ir-lag-ms) needs the motion deconvolution "
                          "(evif train --motion-taps N)")
    if not cfg.motion_gate and not cfg.motion_taps:
        raise ConfigError("--motion-everywhere needs the motion deconvolution (evif train "
                          "--motion-taps N)")
    if cfg.motion_lag < 0:
        raise ConfigError(f"the thermal lag must be >= 0, got {cfg.motion_lag}")
    if cfg.motion_border and not cfg.motion_taps:
        raise ConfigError("--motion-border needs the motion deconvolution (evif train "
                          "--motion-taps N)")
    if cfg.motion_border < 0:
        raise ConfigError(f"--motion-border must be >= 0, got {cfg.motion_border}")
    if cfg.enhance_level != model.deblur.enhance_level:
        raise ConfigError("the enhancement's level has weights of its own: change it with "
                          "evif train --enhance-level")
    if cfg.deblur_act not in ACTIVATIONS:
        raise ConfigError(f"--deblur-act must be one of {', '.join(ACTIVATIONS)}, "
                          f"got {cfg.deblur_act!r}")
    rebuilt = EvifPipeline(cfg)
    rebuilt.load_state_dict(model.state_dict())
    return rebuilt, cfg


def build(cfg: EvifConfig) -> EvifPipeline:
    return EvifPipeline(cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
