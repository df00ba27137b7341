"""The whole EVIF pipeline as one module, with the TorchScript contract of DESIGN.md.

``forward(ir, exposure_voxel, sub_voxels, state) -> (fused, ir_deblurred, visible, state)``

- ``ir``: (B, 1, H, W) blurry IR in raw counts, already warped onto the event camera grid;
- ``exposure_voxel``: (B, 10, H, W) event counts of the exposure (5 time bins x 2
  polarities, :func:`evif_ros.core.voxel.polarity_voxel_grid`);
- ``sub_voxels``: (B, K, 10, H, W) the same for the K reconstruction sub-windows that end
  at mid-exposure;
- ``state``: the reconstruction network's recurrent state (empty list = reset).

Returns the fused image and the visible reconstruction in [0, 1], the deblurred IR in
raw counts, and the new state. Any H, W: inputs are padded to a multiple of 8 inside and
outputs cropped back (346 x 260 divides by neither 8 nor 16).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from evif_ros.model.deblur import DeblurNet
from evif_ros.model.fusion import FusionNet
from evif_ros.model.layers import pad_to
from evif_ros.model.recon import ReconNet

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
}


def config_for(size: str, **overrides) -> EvifConfig:
    if size not in SIZES:
        raise ValueError(f"model size {size!r} is not one of {', '.join(SIZES)}")
    return replace(SIZES[size], **overrides)


class EvifPipeline(nn.Module):
    def __init__(self, cfg: EvifConfig):
        super().__init__()
        self.sub_windows = cfg.sub_windows
        self.recon = ReconNet(cfg.in_ch, cfg.recon_base, kernel=cfg.recon_kernel)
        self.deblur = DeblurNet(cfg.in_ch, cfg.deblur_base, 2 * cfg.recon_base, cfg.enhance)
        self.fusion = FusionNet(cfg.recon_base, cfg.deblur_base, cfg.fusion_base,
                                cfg.fusion_dim, cfg.heads)
        self.use_fusion = True
        self.multiple = MULTIPLE

    @staticmethod
    def normalize_ir(ir: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Per-image robust range (0.5 / 99.5 percentiles of the blurry frame)."""
        # in fp32 whatever the model's precision: quantile has no half kernel, and raw
        # counts up to 65535 overflow fp16's 11-bit mantissa
        flat = ir.flatten(1).float()
        lo = torch.quantile(flat, 0.005, dim=1).view(-1, 1, 1, 1)
        hi = torch.quantile(flat, 0.995, dim=1).view(-1, 1, 1, 1)
        scale = torch.clamp(hi - lo, min=1.0)
        return ((ir.float() - lo) / scale).to(ir.dtype), lo, scale

    @staticmethod
    def events_in(voxel: Tensor) -> Tensor:
        """Event counts -> network input (log compresses bursts of fast motion)."""
        return torch.log1p(voxel)

    def run(self, ir_n: Tensor, exposure_voxel: Tensor, sub_voxels: Tensor,
            state: List[Tensor]) -> Dict[str, Tensor]:
        """Padded, normalised inputs -> every intermediate output (training and export)."""
        feats: List[Tensor] = []
        visible = ir_n
        dec_vis = ir_n
        for k in range(sub_voxels.shape[1]):
            visible, state, feat, dec_vis = self.recon(self.events_in(sub_voxels[:, k]), state)
            feats.append(feat)
        sharp_n, dec_ir = self.deblur(ir_n, self.events_in(exposure_voxel), feats)
        out: Dict[str, Tensor] = {"visible": visible, "ir_n": sharp_n}
        if self.use_fusion:
            fused, emb = self.fusion(visible, torch.clamp(sharp_n, 0.0, 1.0), dec_vis, dec_ir)
            out["fused"] = fused
            for k, v in emb.items():
                out[k] = v
        for i, s in enumerate(state):
            out[f"state{i}"] = s
        return out

    def forward(self, ir: Tensor, exposure_voxel: Tensor, sub_voxels: Tensor,
                state: List[Tensor]) -> Tuple[Tensor, Tensor, Tensor, List[Tensor]]:
        b, k, c, h, w = sub_voxels.shape
        ir_n, lo, scale = self.normalize_ir(ir)
        ir_p, _, _ = pad_to(ir_n, self.multiple)
        ev_p, _, _ = pad_to(exposure_voxel, self.multiple)
        sub_p, _, _ = pad_to(sub_voxels.reshape(b, k * c, h, w), self.multiple)
        sub_p = sub_p.reshape(b, k, c, ir_p.shape[2], ir_p.shape[3])
        if len(state) > 0 and state[0].shape[0] != b:
            state = []
        out = self.run(ir_p, ev_p, sub_p, state)
        new_state = [out[f"state{i}"] for i in range(6)]
        fused = out["fused"][:, :, :h, :w]
        ir_deblurred = out["ir_n"][:, :, :h, :w].float() * scale + lo
        visible = out["visible"][:, :, :h, :w]
        return fused, ir_deblurred, visible, new_state


def build(cfg: EvifConfig) -> EvifPipeline:
    return EvifPipeline(cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
