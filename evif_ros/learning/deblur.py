"""Event-guided IR deblurring: an EFNet-style two-branch UNet (Sun et al. 2022) plus
EVIF's cross-task event enhancement (Sec. 3.3).

Image branch: blurry IR; event branch: the exposure's voxel grid. At every scale the
image feature is fused with the event feature by cross-modal channel attention. At half
resolution the event feature F_de is enhanced with the reconstruction features: two
ConvGRUs run forward and backward over the K sub-window features, their end states are
stacked (F'_rec) and merged into F_de by cross-task channel attention (Eq. 1-2).
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evif_ros.learning.layers import (
    BlockConv,
    ChannelAttention,
    ConvGRU,
    ResidualBlock,
    conv,
    from_blocks,
    up2x,
)
from evif_ros.learning.motion import MotionDeconv


def event_gate(voxel: Tensor, radius: int = 2) -> Tensor:
    """(B, 1, H, W) in [0, 1]: 1 within ``radius`` px of a pixel with an event in the
    exposure (``voxel`` = log1p counts, so one event gives log 2), 0 far from any."""
    activity = voxel.sum(1, keepdim=True)
    # a square max filter is separable, and each 1-D pass is a running maximum of shifted
    # views: 15x faster than max_pool2d, which also computes the arg-max (activity >= 0, so
    # zero padding is the max filter's -inf padding)
    h, w = activity.shape[2], activity.shape[3]
    k = 2 * radius + 1
    rows = F.pad(activity, [radius, radius, 0, 0])
    near = rows[:, :, :, 0:w]
    for i in range(1, k):
        near = torch.maximum(near, rows[:, :, :, i:i + w])
    cols = F.pad(near, [0, 0, radius, radius])
    near = cols[:, :, 0:h]
    for i in range(1, k):
        near = torch.maximum(near, cols[:, :, i:i + h])
    return torch.clamp(near / math.log(2.0), 0.0, 1.0)


class CrossTaskEnhancement(nn.Module):
    """Bi-directional ConvGRU summary of K reconstruction features + CTCA.

    Deviation: the CTCA output is multiplied by a learnable per-channel scale (LayerScale,
    Touvron et al. 2021) before it is added to F_de. Added at full strength, the attention
    output starts at about twice the norm of F_de and buries the exposure's motion cues
    the paper means CTCA to protect; started at ``scale_init`` the network decides how
    much of it to take.
    """

    def __init__(self, c_rec: int, c_de: int, hidden: int, scale_init: float = 0.1):
        super().__init__()
        self.hidden = hidden
        self.fwd = ConvGRU(c_rec, hidden)
        self.bwd = ConvGRU(c_rec, hidden)
        self.ctca = ChannelAttention(c_de, 2 * hidden)
        self.scale = nn.Parameter(torch.full((1, c_de, 1, 1), scale_init))

    def forward(self, f_de: Tensor, rec_feats: List[Tensor]) -> Tensor:
        s_f: Optional[Tensor] = None  # zero states
        s_b: Optional[Tensor] = None
        n = len(rec_feats)
        for i in range(n):
            s_f = self.fwd(rec_feats[i], s_f)
            s_b = self.bwd(rec_feats[n - 1 - i], s_b)
        assert s_f is not None and s_b is not None, "no reconstruction features"
        f_rec = torch.cat([s_f, s_b], 1)  # F'_rec: end states F_f^K and F_b^1
        return f_de + self.scale * self.ctca(f_de, f_rec)


class DeblurNet(nn.Module):
    """``forward(ir (B,1,H,W) in [0,1], voxel (B,C,H,W), rec_feats) -> (sharp, dec)``.

    ``rec_feats``: K tensors (B, c_rec, H/2s, W/2s), or with ``enhance_level`` 1 (B, c_dec,
    H/s, W/s), or an empty list (no enhancement). ``deconvolved``: the motion
    deconvolution's result made beforehand (B,1,H,W), else it runs here. ``dec``: last
    decoder feature (B, base, H/s, W/s). H, W multiples of 4s (``s`` = ``shuffle``).
    """

    def __init__(self, in_ch: int = 10, base: int = 64, c_rec: int = 64,
                 enhance: bool = True, res_blocks: int = 2, conv_first: bool = False,
                 shuffle: int = 1, motion_taps: int = 0, motion_curved: bool = False,
                 motion_lag: float = 0.0, motion_gate: bool = True, motion_border: int = 0,
                 act: str = "relu", enhance_level: int = 2, c_dec: int = 32,
                 sees_blurry: bool = False):
        super().__init__()
        if enhance_level not in (1, 2):
            raise ValueError(f"enhance_level must be 1 or 2, got {enhance_level}")
        # motion_taps > 0: the frame is first deconvolved with the exposure's global motion
        # (MotionDeconv, no weights) near events; the network refines that frame
        self.use_motion = motion_taps > 0
        # motion_gate: the deconvolved frame only near events (else wherever MotionDeconv
        # keeps it: the whole frame moved, so the whole frame is blurred)
        self.motion_gate = motion_gate
        self.motion = MotionDeconv(max(motion_taps, 1), curved=motion_curved, lag=motion_lag,
                                   border_iters=motion_border)
        c1, c2 = base, base * 2
        # shuffle s > 1: both branches run at 1/s resolution on s x s pixel blocks stacked
        # as channels; the residual returns through a pixel shuffle (ESPCN)
        self.shuffle = shuffle
        s2 = shuffle * shuffle
        self.conv_first = conv_first  # decoders convolve before upsampling
        # sees_blurry: the image branch takes [deconvolved, blurry] (its second input
        # channel's weights last, so a network without it widens with zeros there)
        self.sees_blurry = sees_blurry and self.use_motion
        self.img_head = BlockConv(2 if self.sees_blurry else 1, c1, 3, shuffle, act=act)
        self.ev_head = BlockConv(in_ch, c1, 3, shuffle, act=act)
        self.img_down = conv(c1, c2, 3, 2, act=act)
        self.ev_down = conv(c1, c2, 3, 2, act=act)
        self.fuse1 = ChannelAttention(c1, c1)
        # channel attention mixes channels only; edges move by a few pixels within an
        # exposure, so the two branches also meet spatially at full resolution
        self.mix1 = nn.Sequential(conv(2 * c1, c1, 3, act=act), nn.Conv2d(c1, c1, 3, 1, 1))
        self.fuse2 = ChannelAttention(c2, c2)
        self.enhance = enhance
        # level 1: the first level's event feature, enhanced with the reconstruction's last
        # decoder feature (same resolution); its path to the output is the first level's
        # skip, whatever the deeper levels do
        self.enhance_level = enhance_level
        if enhance_level == 1:
            self.cte = CrossTaskEnhancement(c_dec, c1, max(8, c1 // 2))
        else:
            self.cte = CrossTaskEnhancement(c_rec, c2, max(8, c2 // 2))
        self.img_down2 = conv(c2, c2 * 2, 3, 2, act=act)
        self.ev_down2 = conv(c2, c2 * 2, 3, 2, act=act)
        self.fuse3 = ChannelAttention(c2 * 2, c2 * 2)
        self.mid = nn.Sequential(*[ResidualBlock(c2 * 2, act=act) for _ in range(res_blocks)])
        self.up2 = conv(c2 * 2, c2, 3, act=act)
        self.up1 = conv(c2, c1, 3, act=act)
        self.refine = ResidualBlock(c1, act=act)
        self.out = nn.Conv2d(c1, s2, 3, 1, 1)
        # start near the identity (sharp ~ blurry), but not exactly: a zero head passes no
        # gradient back and the PSNR loss then holds it at zero for hundreds of steps
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def forward(self, ir: Tensor, voxel: Tensor, rec_feats: List[Tensor],
                deconvolved: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        gate = event_gate(voxel)
        blurry = ir
        if self.use_motion:
            if deconvolved is None:
                sharp = self.motion(ir, voxel)[0]
            else:  # made beforehand on the whole frame (training crops)
                sharp = deconvolved
            ir = ir + gate * (sharp - ir) if self.motion_gate else sharp
        i1 = self.img_head(torch.cat([ir, blurry], 1) if self.sees_blurry else ir)
        e1 = self.ev_head(voxel)
        if self.enhance and self.enhance_level == 1 and len(rec_feats) > 0:
            e1 = self.cte(e1, rec_feats)
        i1 = i1 + self.fuse1(i1, e1) + self.mix1(torch.cat([i1, e1], 1))
        i2, e2 = self.img_down(i1), self.ev_down(e1)
        if self.enhance and self.enhance_level == 2 and len(rec_feats) > 0:
            e2 = self.cte(e2, rec_feats)  # F_en = F_de + F_attn
        i2 = i2 + self.fuse2(i2, e2)
        i3, e3 = self.img_down2(i2), self.ev_down2(e2)
        x = self.mid(i3 + self.fuse3(i3, e3))
        if self.conv_first:  # convolve at the coarse scale, then upsample (4x cheaper)
            x = up2x(self.up2(x)) + i2
            x = self.refine(up2x(self.up1(x)) + i1)
        else:
            x = self.up2(up2x(x)) + i2
            x = self.refine(self.up1(up2x(x)) + i1)
        # residual, only near events: without a brightness change nothing moved during the
        # exposure, so there is no motion blur to remove and the frame passes unchanged
        return ir + from_blocks(self.out(x), self.shuffle) * gate, x
