"""What limits the event-guided motion deconvolution (evif_ros.learning.motion, no network)
on a dataset split: the shipped path against the same deconvolution with

- the shipped result only where it beats the blurry frame (an oracle veto: what the
  frames the deconvolution makes worse cost);
- the path scaled by a constant (``--scales``): is the path's length biased?
- the best of those scales per frame (an oracle choice: what length errors cost);
- the scale chosen per frame by a blind sharpness criterion of the deconvolved frame (the
  normalised sparsity |grad|_1 / |grad|_2 of Krishnan et al. 2011, lower is sharper);
- the path refined by contrast maximisation over every pair of time bins (not only each bin
  against the middle one), on the 2x2-pooled grid and at full resolution;
- an oracle global kernel: any shape, fitted by least squares to the sharp and the blurry
  frame (what no path estimate can beat with one kernel for the whole frame).

Scored as `evif eval` scores IR PSNR (8-bit, the blurry frame's 0.5-99.5 % range), per
scenario. Usage: python scripts/deconv_limits.py --data data/mix3seq/test_pairs
[--every 5] [--limit 200] [--scales 0.8 0.9 1.1 1.2]

--crop-study 128 (with --data data/mix3seq --split train --limit 96): the deconvolution on
training crops with their own events against the whole frame's, cropped.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from evif_ros.evaluation.deblur_study import Validation, frame_psnr, scenario_table
from evif_ros.evaluation.metrics import psnr
from evif_ros.learning.data import ShardData, ir_range
from evif_ros.learning.motion import (
    MotionDeconv,
    centred_spectrum,
    regularised_inverse,
    sample_circular,
)
from evif_ros.sim.dataset import iter_samples

ORACLE_REACH = 64  # px: the least-squares kernel's half-width
ORACLE_RIDGE = 1e-3  # of the sharp frame's mean power: keeps the fit off noise
ORACLE_FLOOR = 0.2  # kernel values below this fraction of its peak are set to 0


def all_pairs_refined(act: torch.Tensor, pool: int, pos0: torch.Tensor, times: torch.Tensor,
                      rounds: int = 3) -> torch.Tensor:
    """The quadratic path ``pos0`` (B, T, 2) (px) at ``times`` moved to the maximum of the
    contrast summed over every pair of the (B, N, h, w) bins (a grid of ``pool`` x ``pool``
    px blocks), by a local grid search over its velocity, then its acceleration, each round
    half as wide."""
    n, h, w = act.shape[1], act.shape[2], act.shape[3]
    spec = centred_spectrum(act)
    pairs = [(j, k) for j in range(n) for k in range(j + 1, n)]
    maps = torch.stack([torch.fft.irfft2(spec[:, j].conj() * spec[:, k], s=(h, w))
                        for j, k in pairs], 1)
    tb = (torch.arange(n, dtype=act.dtype) + 0.5) / n - 0.5
    tj, tk = tb[[p[0] for p in pairs]], tb[[p[1] for p in pairs]]
    dt1, dt2 = (tk - tj).view(1, -1, 1), (tk ** 2 - tj ** 2).view(1, -1, 1)
    # [v, a] of the path by least squares (its positions lie on the quadratic exactly)
    design = torch.stack([times, times * times], 1)
    coef = torch.linalg.lstsq(design.expand(pos0.shape[0], -1, -1), pos0).solution / pool

    def score(c: torch.Tensor) -> torch.Tensor:  # (B, P, 2, 2) -> (B, P)
        dy = dt1 * c[:, :, 0, 0].unsqueeze(1) + dt2 * c[:, :, 1, 0].unsqueeze(1)
        dx = dt1 * c[:, :, 0, 1].unsqueeze(1) + dt2 * c[:, :, 1, 1].unsqueeze(1)
        return sample_circular(maps, dy, dx).sum(1)

    best = coef.unsqueeze(1)
    top = score(best)[:, 0]
    for r in range(rounds):
        for which, span in ((0, 1.0), (1, 2.0)):
            g = torch.linspace(-span, span, 9) / 2 ** r
            off = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
            cands = best.repeat(1, off.shape[0], 1, 1)
            cands[:, :, which] += off.unsqueeze(0)
            s = score(cands)
            i = torch.argmax(s, 1)
            won = s.gather(1, i.view(-1, 1))[:, 0] > top
            pick = cands[torch.arange(cands.shape[0]), i].unsqueeze(1)
            best = torch.where(won.view(-1, 1, 1, 1), pick, best)
            top = torch.maximum(top, s.gather(1, i.view(-1, 1))[:, 0])
    return design.unsqueeze(0) @ (best[:, 0] * pool)


def oracle_kernel(sharp: np.ndarray, blurry: np.ndarray) -> np.ndarray:
    """(2R+1, 2R+1) kernel K, K * sharp ~ blurry by ridge least squares in Fourier (both
    frames windowed), thresholded at ORACLE_FLOOR of its peak, summing to 1."""
    h, w = sharp.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    fs = np.fft.rfft2((sharp - sharp.mean()) * win)
    fb = np.fft.rfft2((blurry - blurry.mean()) * win)
    power = np.abs(fs) ** 2
    k = np.fft.fftshift(np.fft.irfft2(fs.conj() * fb / (power + ORACLE_RIDGE * power.mean()),
                                      s=(h, w)))
    r = ORACLE_REACH
    k = k[h // 2 - r:h // 2 + r + 1, w // 2 - r:w // 2 + r + 1]
    k = np.where(k > ORACLE_FLOOR * k.max(), k, 0.0)
    return k / max(k.sum(), 1e-12)


def deconvolve_kernel(blurry: torch.Tensor, k: np.ndarray, lam: float) -> torch.Tensor:
    """(1, 1, H, W) deconvolved with the kernel ``k`` (reflect-padded by its reach), kept
    inside the margin its support reaches, as MotionDeconv keeps its own."""
    r = ORACLE_REACH
    h, w = blurry.shape[2], blurry.shape[3]
    xp = torch.nn.functional.pad(blurry.double(), [r, r, r, r], mode="reflect")[:, 0]
    full = np.zeros(xp.shape[1:])
    full[:2 * r + 1, :2 * r + 1] = k
    resp = torch.from_numpy(np.fft.rfft2(np.roll(full, (-r, -r), (0, 1))))[None]
    sharp = regularised_inverse(xp, resp, torch.tensor([lam], dtype=torch.float64))
    ys, xs = np.nonzero(k)
    my, mx = int(np.abs(ys - r).max()) + 2, int(np.abs(xs - r).max()) + 2
    out = blurry.double().clone()
    out[0, 0, my:h - my, mx:w - mx] = sharp[0, r + my:r + h - my, r + mx:r + w - mx]
    return out.float()


def sparsity(y: torch.Tensor) -> float:
    """|grad|_1 / |grad|_2 of (1, 1, H, W), 8 px border cropped."""
    a = y[0, 0, 8:-8, 8:-8]
    g = torch.cat([(a[:, 1:] - a[:, :-1]).flatten(), (a[1:] - a[:-1]).flatten()]).abs()
    return float(g.sum() / torch.sqrt((g ** 2).sum()).clamp(min=1e-12))


def crop_study(data: Path, split: str, limit: int, crop: int, per_frame: int) -> str:
    """Markdown: PSNR on random ``crop`` px crops of the blurry frame, of the deconvolution
    run on the crop alone (its own events: what training did until 2026-12-03), and of the
    frame deconvolved whole and then cropped (what inference sees; training since)."""
    md = MotionDeconv(7, curved=True)

    def deconvolve(ir_n: np.ndarray, vox: np.ndarray) -> np.ndarray:
        return md(torch.from_numpy(ir_n)[None, None],
                  torch.log1p(torch.from_numpy(vox))[None])[0][0, 0].numpy()

    rng = np.random.default_rng(0)
    out: dict[str, list[float]] = defaultdict(list)
    # the training path: crops (and their own events) as ShardData cuts them, each with the
    # same window of the frame deconvolved whole
    samples = ShardData(data, split, limit, deconvolve).samples
    for s in samples:
        for _ in range(per_frame):
            c = ShardData.crop(s, rng, crop, 1, flip=False)  # (ir, exp_vox, ..., ir_deconv)
            blurry, sharp, whole = ((c[i][0] - s["ir_lo"]) / s["ir_scale"] for i in (0, 3, -1))
            exp_vox = c[1]
            for name, img in (("blurry", blurry), ("deconvolved on the crop",
                                                   deconvolve(blurry, exp_vox)),
                              ("deconvolved whole, then cropped", whole)):
                out[name].append(psnr(img, sharp, peak=1.0))
    rows = [f"| {crop} px crops of {len(samples)} `{split}` frames ({per_frame} each) "
            "| PSNR (dB) |", "|---|---|"]
    rows += [f"| {name} | {np.mean(v):.2f} |" for name, v in out.items()]
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a split directory (test_pairs)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--every", type=int, default=5, help="score every N-th sample")
    ap.add_argument("--scales", type=float, nargs="+", default=[0.8, 0.9, 1.1, 1.2])
    ap.add_argument("--oracle-lams", type=float, nargs="+", default=[0.03, 0.1])
    ap.add_argument("--crop-study", type=int, default=0, metavar="PX",
                    help="instead: the deconvolution on PX px crops against the whole frame's "
                         "cropped (training crops), on --limit samples of --split")
    a = ap.parse_args()
    if not a.data.is_dir():
        print(f"deconv_limits: {a.data}: no such directory", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    if a.crop_study:
        with torch.no_grad():
            print(crop_study(a.data, a.split, a.limit, a.crop_study, 2))
        return 0
    md = MotionDeconv(7, curved=True)
    times = md.kernel(torch.device("cpu"))[0]
    scores: dict[str, list[float]] = defaultdict(list)
    scenarios: list[str] = []
    t0 = time.time()

    def score(name: str, y: torch.Tensor, ref: np.ndarray, h: int, w: int) -> float:
        v = frame_psnr(y[0, 0, :h, :w].numpy(), ref)
        scores[name].append(v)
        return v

    with torch.no_grad():
        for i, s in enumerate(iter_samples(a.data, a.split)):
            if i >= a.limit:
                break
            if i % a.every:
                continue
            x, counts, ref, h, w, blurry = Validation([s]).items[0]
            v = torch.log1p(counts)
            scenarios.append(s["scenario"])
            scores["blurry"].append(blurry)
            pos, extent, move, lam, _ = md.estimate(v)
            y = md.deconvolve(x, pos, extent, move, lam)
            shipped = score("events path (shipped)", y, ref, h, w)
            scores["shipped where it gains, else blurry (oracle veto)"].append(max(shipped,
                                                                                  blurry))
            by_scale = {1.0: (shipped, sparsity(y))}
            for k in a.scales:
                y = md.deconvolve(x, pos * k, extent * k, move, lam)
                by_scale[k] = (score(f"path x {k:g}", y, ref, h, w), sparsity(y))
            scores["best scale per frame (oracle)"].append(max(p for p, _ in by_scale.values()))
            scores["scale by sparsity (blind)"].append(min(by_scale.values(),
                                                           key=lambda t: t[1])[0])
            act2 = md.activity(v)
            act1 = v[:, :md.bins] + v[:, md.bins:2 * md.bins]
            for name, act, pool in (("2x2 pooled", act2, md.pool),
                                    ("full resolution", act1, 1)):
                ref_pos = all_pairs_refined(act, pool, pos, times)
                score(f"all-pairs contrast, {name}",
                      md.deconvolve(x, ref_pos, ref_pos.abs().amax(1), move, lam), ref, h, w)
            lo, rng = ir_range(s["ir_blur"])
            sharp = (s["ir_sharp"].astype(np.float64) - lo) / rng
            # where the events show no motion (a resting camera) the frame is kept, as the
            # shipped deconvolution keeps it: a kernel fitted to noise would cost 10 dB there
            k = oracle_kernel(sharp, x[0, 0, :h, :w].double().numpy()) if move[0] else None
            for lam_o in a.oracle_lams:
                y = x if k is None else deconvolve_kernel(x[:, :, :h, :w], k, lam_o)
                score(f"oracle kernel, lam {lam_o:g}", y, ref, h, w)
            n = len(scenarios)
            if n % 10 == 0:
                print(f"{n} samples, {n / (time.time() - t0):.2f}/s", file=sys.stderr)
    print(f"{a.data} ({a.split}), every {a.every}th of {a.limit}: {len(scenarios)} samples\n")
    print(scenario_table(scores, scenarios, "deconvolution"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
