"""Event-guided deconvolution of the IR frame's global motion blur (no weights).

Camera motion blurs a whole frame alike. The exposure's events give that motion: the
displacement ``d`` over the exposure that maximises the contrast of the events moved back
to mid-exposure (contrast maximisation, Gallego et al., CVPR 2018). The blurry frame is
then deconvolved with the blur kernel of ``d`` (the average of ``taps`` equally spaced
copies: the paper's blur averages 7 sharp frames), regularised towards the blurry frame.
Near the frame's border the blur mixed in scene outside the frame: either a margin of the
blur's reach is kept blurry (the circular ``regularised_inverse``), or, with
``border_iters``, the frame is deconvolved to its border with that outside modelled as
unknown (``bounded_inverse``; the shipped files since 2026-12-03). The deblurring
network (``DeblurNet``) takes the result (only near events with its ``motion_gate``) and
refines it. Straight, a shift larger than ``max_px`` is left to the network (fast motion
is rarely straight). ``curved`` (the shipped file): the blur follows a quadratic path
through each time bin's shift from the middle bin, at any length, where that path makes
the events sharper than no motion does. Objects that move on their own are left to the
network either way.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evif_ros.learning.layers import block_mean


def centred_spectrum(activity: Tensor) -> Tensor:
    """(B, N, h, w) event activity in N time bins -> its ``rfft2`` without each bin's mean,
    the input of every correlation below."""
    # without each bin's mean the correlations carry a constant (any shift alike); the
    # per-pixel mean over time is kept: subtracting it too left mostly noise to align in
    # frames that hardly moved (d of 15 px found in still scenes). What fires at a
    # constant rate (hot pixels) therefore favours no motion, the safe side.
    return torch.fft.rfft2(activity - activity.mean((2, 3), keepdim=True))


def contrast_correlations(spec: Tensor, h: int, w: int) -> Tensor:
    """``centred_spectrum`` of N bins of an h x w grid -> (B, N-1, h, w): ``G_m(s)``, the
    sum over bins k of the circular cross-correlation ``sum_x A_k(x) A_{k+m}(x + s)``.

    The variance of the bins moved by ``d * tau_k`` and summed is
    ``const + 2 sum_m G_m(d m / N)`` (tau_k: bin centres in exposure units), so one FFT
    per bin and one inverse per lag score every candidate ``d`` by interpolation.
    """
    n = spec.shape[1]
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


def straight_path(d: Tensor, times: Tensor) -> Tensor:
    """(B, 2) displacements over the exposure (dy, dx; px) and times (T,) in exposures from
    mid-exposure -> (B, T, 2) positions ``t * d`` (``MotionDeconv.kernel``'s times: for the
    paper's blur the centres of T equal slices, symmetric about 0)."""
    return times.to(d.dtype).view(1, -1, 1) * d.unsqueeze(1)


def path_response(pos: Tensor, h: int, w: int, weights: Optional[Tensor] = None) -> Tensor:
    """(B, T, 2) positions (dy, dx; px) of T copies, equally weighted or by ``weights``
    (T,) summing to 1 -> (B, h, w//2+1) complex frequency response (``rfft2`` layout) of
    their weighted sum."""
    # each copy's response exp(-2 pi i (dy fy + dx fx)) is the outer product of a column
    # and a row, so their sum is one (h, T) x (T, w//2+1) product: T (h + w/2) sines and
    # cosines instead of T h w/2 (15 -> 1 ms per frame at 346x260, one thread)
    fy = torch.fft.fftfreq(h, device=pos.device).view(1, 1, h)
    fx = torch.fft.rfftfreq(w, device=pos.device).view(1, 1, w // 2 + 1)
    py = -2.0 * math.pi * pos[:, :, 0].unsqueeze(2) * fy  # (B, T, h)
    px = -2.0 * math.pi * pos[:, :, 1].unsqueeze(2) * fx  # (B, T, w//2+1)
    if weights is None:
        weights = torch.full((pos.shape[1],), 1.0 / pos.shape[1], dtype=pos.dtype,
                             device=pos.device)
    col = torch.complex(torch.cos(py), torch.sin(py)) * weights.view(1, -1, 1)
    row = torch.complex(torch.cos(px), torch.sin(px))
    return torch.matmul(col.transpose(1, 2), row)


def bin_shifts(spec: Tensor, h: int, w: int, reach: int) -> Tensor:
    """``centred_spectrum`` of N bins of an h x w grid -> (B, N, 2): how far each bin's
    content lies from the middle bin's (pixels of this grid, within ``reach``), by the
    peak of their cross-correlation, refined by a parabola through its neighbours."""
    b, n = spec.shape[0], spec.shape[1]
    r = min(reach, (h - 1) // 2, (w - 1) // 2)
    corr = torch.fft.irfft2(spec[:, n // 2:n // 2 + 1].conj() * spec, s=(h, w))
    side = 2 * r + 1  # shifts -r..r, shift 0 at index r
    c = torch.roll(corr, shifts=(r, r), dims=(2, 3))[:, :, :side, :side].reshape(b, n, -1)
    i = torch.argmax(c, 2)
    y, x = torch.div(i, side, rounding_mode="floor"), torch.remainder(i, side)
    c0 = _at(c, y, x, side)
    dy = _vertex(_at(c, y - 1, x, side), c0, _at(c, y + 1, x, side), (y > 0) & (y < side - 1))
    dx = _vertex(_at(c, y, x - 1, side), c0, _at(c, y, x + 1, side), (x > 0) & (x < side - 1))
    return torch.stack([y.to(c.dtype) - r + dy, x.to(c.dtype) - r + dx], 2)


def _at(c: Tensor, y: Tensor, x: Tensor, side: int) -> Tensor:
    """(B, N, side*side) maps at per-map positions (B, N) (clamped to the map)."""
    return c.gather(2, (y.clamp(0, side - 1) * side + x.clamp(0, side - 1)).unsqueeze(2)
                    ).squeeze(2)


def _vertex(lo: Tensor, mid: Tensor, hi: Tensor, inner: Tensor) -> Tensor:
    """Offset (-0.5..0.5) of the vertex of the parabola through three equally spaced
    samples around a maximum; 0 at the map's edge or where they do not curve down."""
    den = lo - 2.0 * mid + hi
    off = torch.where(den < 0, 0.5 * (lo - hi) / torch.where(den < 0, den, -torch.ones_like(den)),
                      torch.zeros_like(den))
    return torch.where(inner, off.clamp(-0.5, 0.5), torch.zeros_like(off))


def quadratic_coefficients(shifts: Tensor) -> Tensor:
    """(B, N, 2) positions at the N bin centres -> (B, 2, 2): ``[v, a]`` of ``p(t) = v t +
    a t^2`` (t: time from mid-exposure in exposures) fitted by least squares."""
    n = shifts.shape[1]
    t = (torch.arange(n, device=shifts.device, dtype=shifts.dtype) + 0.5) / n - 0.5
    design = torch.stack([t, t * t], 1)  # (N, 2)
    fit = torch.linalg.solve(design.t() @ design, design.t())  # (2, N)
    return torch.matmul(fit, shifts)


def path_at(coef: Tensor, t: Tensor) -> Tensor:
    """``[v, a]`` (B, 2, 2) and times (T,) (exposures from mid-exposure) -> (B, T, 2)
    positions; before the exposure's start (t < -0.5, where a lagging sensor still sees
    the scene) the path goes on straight with its velocity at the start: the quadratic's
    curvature is fitted inside the exposure only and would run away outside it."""
    inside = torch.clamp(t, min=-0.5)
    pos = torch.matmul(torch.stack([inside, inside * inside], 1), coef)
    velocity = coef[:, 0:1] - coef[:, 1:2]  # (B, 1, 2): p'(-0.5) = v - a
    before = (t - inside).view(1, -1, 1)  # <= 0: how far before the start
    return pos + before * velocity


def quadratic_path(shifts: Tensor, taps: int) -> Tensor:
    """(B, N, 2) positions at the N bin centres -> (B, taps, 2) at the centres of ``taps``
    equal slices of the exposure, on ``p(t) = v t + a t^2`` (t: time from mid-exposure in
    exposures) fitted by least squares: smooths what noise puts into single bins' shifts.
    ``taps`` = N gives the fitted path at the bins themselves."""
    ti = (torch.arange(taps, device=shifts.device, dtype=shifts.dtype) + 0.5) / taps - 0.5
    return path_at(quadratic_coefficients(shifts), ti)


def lag_kernel(taps: int, lag: float, samples: int = 8, reach: float = 4.0
               ) -> Tuple[Tensor, Tensor]:
    """Times (T,) (exposures from mid-exposure) and weights (T,) summing to 1 of the blur
    of a first-order sensor (a microbolometer: ``y' = (x - y) / tau``, ``lag`` = tau over
    the exposure) read at the centres of ``taps`` equal slices of the exposure and
    averaged, as ``sim.thermal`` blurs: each reading weighs the scene ``s`` before it by
    ``exp(-s / tau) / tau``. Sampled ``samples`` times per slice, out to ``reach`` tau before
    the first reading (e^-4: 2 % of its weight)."""
    reads = (torch.arange(taps, dtype=torch.float64) + 0.5) / taps - 0.5
    ds = 1.0 / (taps * samples)
    first = float(reads[0]) - reach * lag
    n = int(math.ceil((float(reads[-1]) - first) / ds))
    t = float(reads[-1]) - ds * (torch.arange(n, dtype=torch.float64) + 0.5)  # newest first
    age = reads.view(-1, 1) - t.view(1, -1)  # (taps, T)
    w = torch.where(age >= 0, torch.exp(-age.clamp(min=0.0) / lag),
                    torch.zeros_like(age)).sum(0)
    return t.flip(0).float(), (w / w.sum()).flip(0).float()


def sharpens(activity: Tensor, pos: Tensor) -> Tensor:
    """(B, N, h, w) event activity in N time bins and (B, N, 2) positions of each bin's
    content (dy, dx; px of this grid) -> (B,) bool: whether the bins moved back along
    that path sum to a sharper image (higher variance) than the bins as they are.

    The curved path fits each bin's correlation peak, which maximises no contrast: where
    the events do not follow one motion (a moving object before a still camera, noise at
    night), it can be worse than no motion at all, and deconvolving the frame with it then
    costs up to 8 dB. Both sums are compared over the part of the grid that no bin's move
    leaves, so what wraps around the border counts in neither."""
    b, n, h, w = activity.shape
    moved = shifted_sum(activity, pos).reshape(b, h * w)
    still = activity.sum(1).reshape(b, h * w)
    # an empty interior gives both variances 0: not sharper
    m = interior(h, w, pos.abs().amax(1).ceil() + 1.0).reshape(b, h * w).to(activity.dtype)
    return masked_variance(moved, m) > masked_variance(still, m)


def interior(h: int, w: int, margin: Tensor) -> Tensor:
    """(B, 2) margins (rows, columns; px) -> (B, h, w) bool: the pixels at least that far
    from every border of an h x w grid."""
    rows = torch.arange(h, device=margin.device, dtype=margin.dtype).view(1, h, 1)
    cols = torch.arange(w, device=margin.device, dtype=margin.dtype).view(1, 1, w)
    my, mx = margin[:, 0].view(-1, 1, 1), margin[:, 1].view(-1, 1, 1)
    return (rows >= my) & (rows < h - my) & (cols >= mx) & (cols < w - mx)


def shifted_sum(maps: Tensor, pos: Tensor) -> Tensor:
    """(B, N, h, w) maps and (B, N, 2) positions (dy, dx; px) -> (B, h, w): the sum over
    the N maps of each one sampled at ``p + pos`` (bilinear, wrapping)."""
    # a whole map moves by one vector: bilinear sampling is then four rolled copies with
    # four weights: the test takes 0.9 ms per frame, 7 ms by sampling every pixel (one thread)
    b, n, h, w = maps.shape
    whole = torch.floor(pos)
    frac = pos - whole
    out = torch.zeros(b, h, w, dtype=maps.dtype, device=maps.device)
    for i in range(b):
        for k in range(n):
            fy, fx = frac[i, k, 0], frac[i, k, 1]
            a = torch.roll(maps[i, k], shifts=[-int(whole[i, k, 0].item()),
                                               -int(whole[i, k, 1].item())], dims=[0, 1])
            right = torch.roll(a, shifts=[0, -1], dims=[0, 1])
            below = torch.roll(a, shifts=[-1, 0], dims=[0, 1])
            diag = torch.roll(below, shifts=[0, -1], dims=[0, 1])
            out[i] += (1 - fy) * ((1 - fx) * a + fx * right) + fy * ((1 - fx) * below + fx * diag)
    return out


def masked_variance(v: Tensor, m: Tensor) -> Tensor:
    """Variance of each row of (B, P) over its positions where the 0/1 mask ``m`` is 1."""
    count = m.sum(1).clamp(min=1.0)
    mean = (v * m).sum(1) / count
    return (((v - mean.unsqueeze(1)) ** 2) * m).sum(1) / count


class MotionDeconv(nn.Module):
    """``forward(ir (B,1,H,W) in [0,1], voxel (B,2*bins,H,W)) -> (ir', d)``.

    ``ir'``: the frame deconvolved where it moved (straight: at most ``max_px``), inside the
    border margin or, with ``border_iters``, up to the border; else ``ir``; ``d``: (B, 2)
    the straight search's displacement over the exposure in px (dy, dx; its sign is
    immaterial, that kernel is symmetric).
    ``voxel``: ``[ON bins, OFF bins]`` (``polarity_voxel_grid``), counts or any monotone
    map of them (the network's log1p).
    """

    def __init__(self, taps: int = 7, lam: float = 0.3, max_px: float = 30.0,
                 bins: int = 5, pool: int = 2, step: float = 0.25, pad: int = 16,
                 curved: bool = False, bin_reach_px: float = 40.0, lam_short: float = 0.1,
                 short_px: float = 8.0, lag: float = 0.0, border_iters: int = 0):
        super().__init__()
        self.taps = taps
        # border_iters > 0: deconvolved up to the frame's border with the blur of the unseen
        # outside modelled (bounded_inverse, that many conjugate-gradient steps), instead of
        # the circular inverse inside a margin that keeps the border blurry
        if border_iters < 0:
            raise ValueError(f"border_iters must be >= 0, got {border_iters}")
        self.border_iters = border_iters
        # lag > 0: the frame comes from a first-order sensor (microbolometer) whose time
        # constant is `lag` exposures: the blur is the lag's exponential tail along the path
        # (before the exposure too) averaged over the readings, not the readings' average
        # alone (lag_kernel). The kernel's times and weights depend on no input: kept as
        # lists (made into tensors per call), not buffers, so that model files hold weights
        # only and load into either setting
        if lag < 0:
            raise ValueError(f"lag must be >= 0, got {lag}")
        self.lag = lag
        if lag > 0:
            t, wt = lag_kernel(taps, lag)
        else:
            t = (torch.arange(taps, dtype=torch.float32) + 0.5) / taps - 0.5
            wt = torch.full((taps,), 1.0 / taps)
        self.times: List[float] = t.tolist()
        self.weights: List[float] = wt.tolist()
        # curved: the blur follows a quadratic path through each time bin's shift from the
        # middle bin (up to bin_reach_px), not one straight shift; any length is deconvolved
        # (fast motion is rarely straight), unless the straight search finds no motion
        self.curved = curved
        self.bin_reach = math.ceil(bin_reach_px / pool)
        self.lam = lam  # weight of the gradient difference to the blurry frame
        # curved: lam_short for a path of at most short_px, growing with the path's length
        # up to lam (a longer blur has more frequencies it nearly removes, which the
        # deconvolution would amplify); chosen on two validation splits (model card: lower
        # values gain more on RoadScene's smooth thermal images and lose on the procedural
        # world's sharp synthetic edges)
        self.lam_short = lam_short
        self.short_px = short_px
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

    def kernel(self, device: torch.device) -> Tuple[Tensor, Tensor, Tensor]:
        """The blur's copies: times (T,) in exposures from mid-exposure, weights (T,) summing
        to 1, and which of them are from one time constant before the exposure on (T,)
        bool: those set the margin kept from the border and the path's length (the older
        ones weigh e^-1 and less)."""
        t = torch.tensor(self.times, device=device)
        return t, torch.tensor(self.weights, device=device), t >= -0.5 - self.lag

    @staticmethod
    def grid(ticks: Tensor) -> Tensor:
        """All (y, x) pairs of ``ticks`` -> (N*N, 2)."""
        return torch.stack(torch.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)

    def activity(self, voxel: Tensor) -> Tensor:
        """(B, 2*bins, H, W) -> (B, bins, H/pool, W/pool): events per bin, both polarities."""
        return block_mean(voxel[:, :self.bins] + voxel[:, self.bins:2 * self.bins], self.pool)

    def displacement(self, voxel: Tensor) -> Tensor:
        """(B, 2*bins, H, W) -> (B, 2) displacement over the exposure (px)."""
        act = self.activity(voxel)
        return self.search(centred_spectrum(act), act.shape[2], act.shape[3])

    def search(self, spec: Tensor, h: int, w: int) -> Tensor:
        """``centred_spectrum`` of the pooled bins -> (B, 2) displacement (px)."""
        g = contrast_correlations(spec, h, w)
        b = g.shape[0]
        lag = (torch.arange(1, self.bins, device=g.device, dtype=g.dtype)
               / self.bins).view(1, -1, 1)
        coarse = self.grid(torch.arange(-self.reach, self.reach + 1, device=g.device,
                                        dtype=g.dtype)).unsqueeze(0).expand(b, -1, -1)
        fine = self.grid(torch.arange(-1.0, 1.0 + 1e-6, self.step, device=g.device,
                                      dtype=g.dtype)).unsqueeze(0)
        best = torch.zeros(b, 1, 2, device=g.device, dtype=g.dtype)  # kept unless beaten
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

    def path_lam(self, length: Tensor) -> Tensor:
        """(B,) lengths of curved paths (px, first copy to last) -> (B,) their ``lam``:
        ``lam_short`` up to ``short_px``, then in proportion to the length, at most ``lam``."""
        return torch.clamp(self.lam_short * length / self.short_px, self.lam_short, self.lam)

    def estimate(self, voxel: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(B, 2*bins, H, W) -> the blur the events show: positions (B, T, 2) of the
        kernel's copies (px, at ``kernel``'s times), how far the recent ones reach (B, 2),
        whether the frame moved at all (B,) bool, the regularisation weight (B,) and the
        straight search's displacement (B, 2)."""
        act = self.activity(voxel.float())
        spec_ev = centred_spectrum(act)
        d = self.search(spec_ev, act.shape[2], act.shape[3])
        times, _, recent = self.kernel(voxel.device)
        if self.curved:
            shifts = bin_shifts(spec_ev, act.shape[2], act.shape[3], self.bin_reach)
            pos = path_at(quadratic_coefficients(shifts * self.pool), times)
            core = pos[:, recent]
            extent = core.abs().amax(1)  # (B, 2): how far the copies reach
            along = quadratic_path(shifts, self.bins)  # the path at the bins (pooled px)
            move = (d.abs().amax(1) > 0) & sharpens(act, along)
            lam = self.path_lam(torch.linalg.vector_norm(core[:, -1] - core[:, 0], dim=1))
        else:
            pos = straight_path(d, times)
            extent = d.abs() * (0.5 + self.lag)  # the recent copies reach back to t = -0.5 - lag
            move = torch.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2) <= self.max_px
            lam = torch.full_like(d[:, 0], self.lam)
        return pos, extent, move, lam, d

    def deconvolve(self, ir: Tensor, pos: Tensor, extent: Tensor, move: Tensor, lam: Tensor
                   ) -> Tensor:
        """(B, 1, H, W) blurry frame and ``estimate``'s blur -> the frame deconvolved where
        it ``move``s, else the frame itself: up to the border with ``border_iters``, else
        inside the border margin ``extent`` + 2 px."""
        x = ir.float()
        h, w = x.shape[2], x.shape[3]
        _, weights, _ = self.kernel(x.device)
        if self.border_iters > 0:
            if not bool(move.any()):
                return ir
            sharp = bounded_inverse(x[:, 0], pos, weights, lam, self.border_iters)
            keep = move.view(-1, 1, 1, 1).to(x.dtype)
            return (x + keep * (sharp.unsqueeze(1) - x)).to(ir.dtype)
        p = min(self.pad, h - 1, w - 1)
        xp = F.pad(x, [p, p, p, p], mode="reflect")
        k = path_response(pos, xp.shape[2], xp.shape[3], weights)
        sharp = regularised_inverse(xp[:, 0], k, lam)[:, p:p + h, p:p + w].unsqueeze(1)
        # kept away from the border, where the blur mixed in the unseen outside
        keep = (interior(h, w, extent + 2.0) & move.view(-1, 1, 1)).unsqueeze(1).to(x.dtype)
        return (x + keep * (sharp - x)).to(ir.dtype)

    def forward(self, ir: Tensor, voxel: Tensor) -> Tuple[Tensor, Tensor]:
        pos, extent, move, lam, d = self.estimate(voxel)
        return self.deconvolve(ir, pos, extent, move, lam), d


def gradient_response(h: int, w: int, device: torch.device) -> Tensor:
    """(h, w//2+1) ``|grad|^2`` of the circular forward differences in the ``rfft2``
    layout: the regulariser's weight per frequency in both inverses."""
    fy = torch.fft.fftfreq(h, device=device).view(h, 1)
    fx = torch.fft.rfftfreq(w, device=device).view(1, w // 2 + 1)
    return 4.0 - 2.0 * torch.cos(2.0 * math.pi * fy) - 2.0 * torch.cos(2.0 * math.pi * fx)


def fast_size(n: int) -> int:
    """The smallest even m >= n whose only prime factors are 2, 3 and 5: an FFT of such a
    length is several times faster than one with a large prime factor (378 = 2 * 3^3 * 7
    columns took 2.3 ms for a forward and inverse 2-d FFT, 432 columns 0.9 ms)."""
    m = max(n + (n % 2), 2)
    r = 0
    while r != 1:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r = r // p
        if r != 1:
            m += 2
    return m


def half_spectrum_dot(a: Tensor, c: Tensor) -> Tensor:
    """Real views (B, H, W//2+1, 2) of two ``rfft2`` spectra of real images (W even) -> (B,)
    their images' inner product, up to the factor H*W that conjugate gradients' step
    lengths cancel: the half spectrum stands for the whole, so each column counts twice
    except the zero and the Nyquist column, which stand for themselves."""
    m = a * c
    return 2.0 * m.sum((1, 2, 3)) - m[:, :, 0].sum((1, 2)) - m[:, :, -1].sum((1, 2))


def bounded_inverse(blurry: Tensor, pos: Tensor, weights: Tensor, lam: Tensor, iters: int,
                    min_pad: int = 8) -> Tensor:
    """(B, h, w) blurry images, the blur's copies at ``pos`` (B, T, 2) (px) with ``weights``
    (T,) and (B,) weights -> (B, h, w): ``argmin |M (K*S - B)|^2 + lam |grad(S - B)|^2``
    over an image S larger than the frame, M the frame's pixels: the blur of pixels near
    the border came partly from outside the frame, which this model lets S hold instead of
    folding it back in (the circular ``regularised_inverse`` must keep a margin from the
    border blurry; on RoadScene's `fast` motion +1.6 dB; Almeida & Figueiredo, "Deconvolving
    images with unknown boundaries", IEEE TIP 2013, solve the same model). Solved by
    ``iters`` steps of conjugate gradients preconditioned by the circular inverse, from the
    circular solution (0 steps: that solution on the larger domain), in the Fourier domain:
    each step costs one forward and one inverse FFT."""
    b, h, w = blurry.shape
    reach = int(math.ceil(float(pos.abs().amax()))) + 1 if pos.numel() > 0 else 0
    # no copy reaches from the frame round to the other side; a wider margin changed
    # nothing (32 px: the same PSNR to 0.01 dB on 120 training frames) and costs FFT length
    p = max(min_pad, reach)
    hh, ww = fast_size(h + 2 * p), fast_size(w + 2 * p)
    pads = [p, ww - w - p, p, hh - h - p]
    mode = "reflect" if max(pads) < min(h, w) else "replicate"
    x = blurry.unsqueeze(1)
    xe = F.pad(x, pads, mode=mode)[:, 0]
    mask = torch.zeros(1, hh, ww, dtype=xe.dtype, device=xe.device)
    mask[:, p:p + h, p:p + w] = 1.0
    reg = lam.view(-1, 1, 1).to(xe.dtype) * gradient_response(hh, ww, xe.device)
    k = path_response(pos.to(xe.dtype), hh, ww, weights.to(xe.dtype))
    kc = k.conj()
    # the preconditioner, the circular inverse; |k|^2 from the real view (no square root)
    inv_den = 1.0 / (torch.view_as_real(k).square().sum(-1) + reg)
    # the products of complex spectra with the real weights (reg, the preconditioner, the
    # step lengths) run on the spectra's real views, (B, H, W//2+1, 2), in place where they
    # can: no complex promotion of a real weight, no temporary per product, and weights
    # expanded to that shape vectorise where a broadcast over the last axis of 2 does not
    # (a step about 1.3 ms on a 288 x 384 grid, one thread, of which the FFT pair 0.7-1.0;
    # 3.6 ms on 320 x 384 when the weights were promoted to complex)
    shape = [b, hh, ww // 2 + 1, 2]
    reg2 = reg.unsqueeze(-1).expand(shape).contiguous()
    inv2 = inv_den.unsqueeze(-1).expand(shape).contiguous()
    spec = torch.fft.rfft2(xe)
    specr = torch.view_as_real(spec)
    s = spec * kc  # the circular solution, spec (conj(k) + reg) / (|k|^2 + reg)
    sr = torch.view_as_real(s)
    sr.addcmul_(specr, reg2).mul_(inv2)
    # the residual of the normal equations, K^H M (B - K S) + reg (B - S), in one FFT pair
    r = kc * torch.fft.rfft2(mask * (xe - torch.fft.irfft2(k * s, s=(hh, ww))))
    rr = torch.view_as_real(r)
    rr.addcmul_(specr - sr, reg2)
    zr = rr * inv2
    dr = zr
    rz = half_spectrum_dot(rr, zr)
    for _ in range(iters):
        t = torch.fft.irfft2(k * torch.view_as_complex(dr), s=(hh, ww)).mul_(mask)
        adr = torch.view_as_real(kc * torch.fft.rfft2(t))
        adr.addcmul_(dr, reg2)
        alpha = (rz / half_spectrum_dot(dr, adr).clamp(min=1e-20)).view(-1, 1, 1, 1)
        sr.addcmul_(dr, alpha)  # s, through its view
        rr.addcmul_(adr, alpha, value=-1.0)
        zr = rr * inv2
        rz_new = half_spectrum_dot(rr, zr)
        dr = torch.addcmul(zr, dr, (rz_new / rz.clamp(min=1e-20)).view(-1, 1, 1, 1))
        rz = rz_new
    return torch.fft.irfft2(s, s=(hh, ww))[:, p:p + h, p:p + w]


def regularised_inverse(blurry: Tensor, response: Tensor, lam: Tensor) -> Tensor:
    """(B, h, w) blurry images, the blur's (B, h, w//2+1) frequency response (``rfft2``
    layout, circular) and (B,) weights -> (B, h, w): ``argmin |K*S - B|^2 + lam
    |grad(S - B)|^2``; without motion (K = 1) S = B exactly, and where the blur removed a
    frequency the blurry frame's is kept."""
    h, w = blurry.shape[1], blurry.shape[2]
    reg = lam.view(-1, 1, 1) * gradient_response(h, w, blurry.device)
    spec = torch.fft.rfft2(blurry) * ((response.conj() + reg) / (response.abs() ** 2 + reg))
    return torch.fft.irfft2(spec, s=(h, w))
