"""Frame-based visible-infrared fusion baselines (what a user would pick instead of EVIF).

All take two float images in [0, 1] of the same size (visible ``a``, infrared ``b``) and
return the fused image in [0, 1]:

- :func:`average`: ``(a + b) / 2``.
- :func:`laplacian_pyramid`: Burt & Adelson pyramids; detail levels by max-absolute
  selection, the base level averaged.
- :func:`gff`: guided filtering fusion (Li, Kang & Hu, TIP 2013): two-scale decomposition
  (31x31 mean base), saliency = Gaussian-smoothed |Laplacian|, winner-take-all weight maps
  refined by guided filters (r=45, eps=0.3 for the base; r=7, eps=1e-6 for detail).
- :func:`hybrid_msd_gf`: in the spirit of HMSD_GF / GFCE (Zhou et al. 2016): a multi-scale
  decomposition by guided filters of growing radius, detail layers fused by smoothed
  absolute-detail saliency, the base layer weighted towards the infrared where it
  departs from its mean (warm/cold targets), with a mild contrast enhancement.
"""

from __future__ import annotations

import cv2
import numpy as np


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with box filters (O(1) per pixel)."""
    k = (2 * radius + 1, 2 * radius + 1)
    box = lambda x: cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    g, s = guide.astype(np.float32), src.astype(np.float32)
    mg, ms = box(g), box(s)
    var = box(g * g) - mg * mg
    cov = box(g * s) - mg * ms
    a = cov / (var + eps)
    b = ms - a * mg
    return box(a) * g + box(b)


def average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 0.5 * (a + b)


def laplacian_pyramid(a: np.ndarray, b: np.ndarray, levels: int = 4) -> np.ndarray:
    def pyramid(x):
        gauss = [x.astype(np.float32)]
        for _ in range(levels):
            gauss.append(cv2.pyrDown(gauss[-1]))
        lap = [g - cv2.pyrUp(gn, dstsize=g.shape[1::-1]) for g, gn in zip(gauss, gauss[1:])]
        return lap, gauss[-1]
    la, ba = pyramid(a)
    lb, bb = pyramid(b)
    out = 0.5 * (ba + bb)
    for da, db in zip(la[::-1], lb[::-1]):
        out = cv2.pyrUp(out, dstsize=da.shape[1::-1]) + np.where(np.abs(da) >= np.abs(db), da, db)
    return np.clip(out, 0, 1)


def gff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    imgs = [a.astype(np.float32), b.astype(np.float32)]
    bases = [cv2.blur(x, (31, 31), borderType=cv2.BORDER_REFLECT) for x in imgs]
    details = [x - base for x, base in zip(imgs, bases)]
    sal = [cv2.GaussianBlur(np.abs(cv2.Laplacian(x, cv2.CV_32F, ksize=3)), (11, 11), 5)
           for x in imgs]
    p = (sal[0] >= sal[1]).astype(np.float32)
    masks = [p, 1 - p]
    wb = [guided_filter(x, m, 45, 0.3) for x, m in zip(imgs, masks)]
    wd = [guided_filter(x, m, 7, 1e-6) for x, m in zip(imgs, masks)]
    sb, sd = wb[0] + wb[1] + 1e-6, wd[0] + wd[1] + 1e-6
    fused = (wb[0] * bases[0] + wb[1] * bases[1]) / sb + (wd[0] * details[0]
                                                        + wd[1] * details[1]) / sd
    return np.clip(fused, 0, 1)


def hybrid_msd_gf(a: np.ndarray, b: np.ndarray, levels: int = 3) -> np.ndarray:
    def decompose(x):
        layers, cur = [], x.astype(np.float32)
        for i in range(levels):
            smooth = guided_filter(cur, cur, 2 * 2 ** i, 0.01 * 4 ** i)
            layers.append(cur - smooth)
            cur = smooth
        return layers, cur
    da, base_a = decompose(a)
    db, base_b = decompose(b)
    fused = np.zeros_like(base_a)
    for la, lb in zip(da, db):
        sa = cv2.GaussianBlur(np.abs(la), (0, 0), 2)
        sb = cv2.GaussianBlur(np.abs(lb), (0, 0), 2)
        w = sa / (sa + sb + 1e-6)
        fused += w * la + (1 - w) * lb
    # infrared saliency: departure from the IR mean highlights thermal targets
    sal_ir = np.abs(base_b - base_b.mean())
    w_ir = np.clip(cv2.GaussianBlur(sal_ir / (sal_ir.max() + 1e-6), (0, 0), 4) * 1.5, 0, 1)
    base = w_ir * base_b + (1 - w_ir) * base_a
    out = base + 1.2 * fused  # mild detail (contrast) enhancement
    return np.clip(out, 0, 1)


BASELINES = {"average": average, "laplacian": laplacian_pyramid, "gff": gff,
             "hmsd_gf": hybrid_msd_gf}
