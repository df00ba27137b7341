"""Event-guided deconvolution of the IR frame's global motion blur (no weights).

Camera motion blurs a whole frame alike. The exposure's events give that motion: the
displacement ``d`` over the exposure that maximises the contrast of the events moved back
to mid-exposure (contrast maximisation, Gallego et al., CVPR 2018). The blurry frame is
then deconvolved with the blur kernel of ``d`` (the average of ``taps`` equally spaced
copies: the paper's blur averages 7 sharp frames), regularised towards the blurry frame,
away from the frame border, where the blur mixes in the unseen outside. The deblurring
network (``DeblurNet``) keeps the result only near events, where something moved, and
refines it. Motion that is not one global shift (objects, roll, the curved paths of
`fast`) is left to the network: larger than ``max_px`` it skips this step.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def contrast_correlations(activity: Tensor) -> Tensor:
    """(B, N, h, w) event activity in N time bins -> (B, N-1, h, w): ``G_m(s)``, the sum
    over bins k of the circular cross-correlation ``sum_x A_k(x) A_{k+m}(x + s)``.

    The variance of the bins moved by ``d * tau_k`` and summed is
    ``const + 2 sum_m G_m(d m / N)`` (tau_k: bin centres in exposure units), so one FFT
    per bin and one inverse per lag score every candidate ``d`` by interpolation.
    """
    n, h, w = activity.shape[1], activity.shape[2], activity.shape[3]
    # without each bin's mean the correlations carry a constant (any d alike); the
    # per-pixel mean over time is kept: subtracting it too left mostly noise to align in
    # frames that hardly moved (d of 15 px found in still scenes). What fires at a
    # constant rate (hot pixels) therefore favours d = 0, the safe side.
    a = activity - activity.mean((2, 3), keepdim=True)
    spec = torch.fft.rfft2(a)
    lags = [torch.fft.irfft2((spec[:, :n - m].conj() * spec[:, m:]).sum(1), s=(h, w))
            for m in range(1, n)]
    return torch.stack(lags, 1)


def sample_circular(maps: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """Bilinear samples of (B, M, h, w) at positions (B, M, P) (pixels, wrapping) ->
    (B, M, P)."""
    b, m, h, w = maps.shape
    flat = maps.reshape(b, m, h * w)
    y0, x0 = torch.floor(y), torch.floor(x)
    fy, fx = y - y0, x - x0
    y0i, x0i = y0.long(), x0.long()
    out = torch.zeros_like(y)
    for dy in (0, 1):
        wy = fy if dy == 1 else 1.0 - fy
        yi = torch.remainder(y0i + dy, h)
        for dx in (0, 1):
            wx = fx if dx == 1 else 1.0 - fx
            out = out + flat.gather(2, yi * w + torch.remainder(x0i + dx, w)) * (wy * wx)
    return out


def blur_response(d: Tensor, h: int, w: int, taps: int) -> Tensor:
    """(B, 2) displacements (dy, dx; px) -> (B, h, w//2+1) frequency response (``rfft2``
    layout) of the average of ``taps`` copies moved by ``(i - (taps-1)/2) / taps * d``.
    The copies lie symmetrically about 0, so the response is real: a sum of cosines."""
    fy = torch.fft.fftfreq(h, device=d.device).view(1, h, 1)
    fx = torch.fft.rfftfreq(w, device=d.device).view(1, 1, w // 2 + 1)
    phase = 2.0 * math.pi * (d[:, 0].view(-1, 1, 1) * fy + d[:, 1].view(-1, 1, 1) * fx)
    resp = torch.zeros_like(phase)
    for i in range(taps):
        resp = resp + torch.cos(phase * ((i - (taps - 1) / 2) / taps))
    return resp / taps


class MotionDeconv(nn.Module):
    """``forward(ir (B,1,H,W) in [0,1], voxel (B,2*bins,H,W)) -> (ir', d)``.

    ``ir'``: the frame deconvolved inside the border margin when the motion is at most
    ``max_px``, else ``ir``; ``d``: (B, 2) displacement over the exposure in px (dy, dx;
    its sign is immaterial, the kernel is symmetric). ``voxel``: ``[ON bins, OFF bins]``
    (``polarity_voxel_grid``), counts or any monotone map of them (the network's log1p).
    """

    def __init__(self, taps: int = 7, lam: float = 0.3, max_px: float = 30.0,
                 bins: int = 5, pool: int = 2, step: float = 0.25, pad: int = 16):
        super().__init__()
        self.taps = taps
        self.lam = lam  # weight of the gradient difference to the blurry frame
        self.max_px = max_px  # larger motion is left to the network (rarely linear)
        self.bins = bins
        self.pool = pool  # the search runs on pool x pool blocks
        self.pad = pad
        # candidates out to twice max_px, so that a larger motion is seen as such and not
        # mistaken for the largest allowed one: a grid of 1 pooled px (the correlations'
        # peaks are wider), then `step` around the best; made per call, not kept as
        # buffers, so that model files hold weights only
        self.reach = math.ceil(2.0 * max_px / pool)
        self.step = step

    @staticmethod
    def grid(ticks: Tensor) -> Tensor:
        """All (y, x) pairs of ``ticks`` -> (N*N, 2)."""
        return torch.stack(torch.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)

    def displacement(self, voxel: Tensor) -> Tensor:
        """(B, 2*bins, H, W) -> (B, 2) displacement over the exposure (px)."""
        act = voxel[:, :self.bins] + voxel[:, self.bins:2 * self.bins]
        act = F.avg_pool2d(act, self.pool)
        g = contrast_correlations(act)
        b = g.shape[0]
        lag = (torch.arange(1, self.bins, device=voxel.device, dtype=act.dtype)
               / self.bins).view(1, -1, 1)
        coarse = self.grid(torch.arange(-self.reach, self.reach + 1, device=voxel.device,
                                        dtype=act.dtype)).unsqueeze(0).expand(b, -1, -1)
        fine = self.grid(torch.arange(-1.0, 1.0 + 1e-6, self.step, device=voxel.device,
                                      dtype=act.dtype)).unsqueeze(0)
        best = torch.zeros(b, 1, 2, device=voxel.device, dtype=act.dtype)  # kept unless beaten
        top = self.score(g, best, lag)[:, 0]
        for stage in range(2):
            cands = coarse if stage == 0 else best + fine
            score = self.score(g, cands, lag)
            i = torch.argmax(score, 1).view(-1, 1)
            better = score.gather(1, i)[:, 0] > top
            best = torch.where(better.view(-1, 1, 1),
                               cands.gather(1, i.view(-1, 1, 1).expand(b, 1, 2)), best)
            top = torch.where(better, score.gather(1, i)[:, 0], top)
        return best[:, 0] * self.pool

    @staticmethod
    def score(g: Tensor, cand: Tensor, lag: Tensor) -> Tensor:
        """Contrast (up to a constant) of each candidate (B, P, 2) -> (B, P)."""
        return sample_circular(g, lag * cand[:, :, 0].unsqueeze(1),
                               lag * cand[:, :, 1].unsqueeze(1)).sum(1)

    def forward(self, ir: Tensor, voxel: Tensor) -> Tuple[Tensor, Tensor]:
        x = ir.float()
        v = voxel.float()
        d = self.displacement(v)
        h, w = x.shape[2], x.shape[3]
        p = min(self.pad, h - 1, w - 1)
        xp = F.pad(x, [p, p, p, p], mode="reflect")
        hp, wp = xp.shape[2], xp.shape[3]
        k = blur_response(d, hp, wp, self.taps)
        fy = torch.fft.fftfreq(hp, device=x.device).view(hp, 1)
        fx = torch.fft.rfftfreq(wp, device=x.device).view(1, wp // 2 + 1)
        lap = (4.0 - 2.0 * torch.cos(2.0 * math.pi * fy) - 2.0 * torch.cos(2.0 * math.pi * fx))
        reg = self.lam * lap
        # argmin |K*S - B|^2 + lam |grad(S - B)|^2: without motion (K = 1) S = B exactly
        spec = torch.fft.rfft2(xp[:, 0]) * ((k + reg) / (k * k + reg))
        sharp = torch.fft.irfft2(spec, s=(hp, wp))[:, p:p + h, p:p + w].unsqueeze(1)
        # kept away from the border (half the blur), within the allowed motion
        rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
        cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
        my = (d[:, 0].abs() * 0.5 + 2.0).view(-1, 1, 1)
        mx = (d[:, 1].abs() * 0.5 + 2.0).view(-1, 1, 1)
        inside = (rows >= my) & (rows < h - my) & (cols >= mx) & (cols < w - mx)
        small = (torch.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2) <= self.max_px).view(-1, 1, 1)
        keep = (inside & small).unsqueeze(1).to(x.dtype)
        return (x + keep * (sharp - x)).to(ir.dtype), d
