"""The six VIF metrics with the definitions of the VIFB benchmark (Zhang, Zhang, Bai &
Zhao, "VIFB: A Visible and Infrared Image Fusion Benchmark", CVPRW 2020), which the EVIF
authors used, plus PSNR. Inputs are 2-D arrays on a 0-255 scale (uint8 or float); ``a`` is
the visible source, ``b`` the infrared source, ``f`` the fused image.

- EN  (Roberts et al. 2008): ``-sum_i p_F(i) log2 p_F(i)`` over a 256-bin histogram.
- CE  (Bulanon et al. 2009): ``(KL(p_A || p_F) + KL(p_B || p_F)) / 2`` with log2, summed
  over bins where both histograms are non-zero (VIFB's cross_entropy).
- MI  (Qu et al. 2002): ``MI(A, F) + MI(B, F)``, natural log, from 256x256 joint
  histograms of min-max normalised images.
- AG  (Cui et al. 2015): ``sum sqrt((gx^2 + gy^2) / 2) / ((rows - 1)(cols - 1))`` with
  central-difference gradients (MATLAB ``gradient`` = ``numpy.gradient``).
- SSIM (Wang et al. 2004): ``SSIM(A, F) + SSIM(B, F)``, 11x11 Gaussian window,
  sigma 1.5, K = (0.01, 0.03), L = 255, mean over the valid region.
- Q_CB (Chen & Blum 2009): images filtered in the frequency domain by the Mannos-Sakrison
  contrast sensitivity function; local contrast ``C = (G_2 * I) / (G_4 * I) - 1`` with
  Gaussians of sigma 2 and 4; masked contrast ``C' = k C^p / (h C^q + Z)`` (k = h = 1,
  p = 3, q = 2, Z = 1e-4); preservation ``Q_XF = min(C'_X, C'_F) / max(C'_X, C'_F)``;
  saliency weights ``lambda_X = C'_X^2 / (C'_A^2 + C'_B^2)``; Q_CB = mean of
  ``lambda_A Q_AF + lambda_B Q_BF``. All filtering is FFT-based.
- PSNR: ``10 log10(peak^2 / MSE)``.
"""

from __future__ import annotations

import cv2
import numpy as np

EPS = np.finfo(np.float64).eps


def _hist(img: np.ndarray) -> np.ndarray:
    q = np.clip(np.round(np.asarray(img, np.float64)), 0, 255).astype(np.intp)
    return np.bincount(q.ravel(), minlength=256) / q.size


def entropy(f: np.ndarray) -> float:
    p = _hist(f)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _relative_entropy(x: np.ndarray, f: np.ndarray) -> float:
    px, pf = _hist(x), _hist(f)
    m = (px > 0) & (pf > 0)
    return float((px[m] * np.log2(px[m] / pf[m])).sum())


def cross_entropy(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return 0.5 * (_relative_entropy(a, f) + _relative_entropy(b, f))


def _minmax255(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    lo, hi = x.min(), x.max()
    return np.zeros_like(x, dtype=np.intp) if hi <= lo else \
        np.round((x - lo) / (hi - lo) * 255).astype(np.intp)


def _mi(x: np.ndarray, f: np.ndarray) -> float:
    qx, qf = _minmax255(x).ravel(), _minmax255(f).ravel()
    joint = np.bincount(qx * 256 + qf, minlength=256 * 256).reshape(256, 256) / qx.size
    px, pf = joint.sum(1), joint.sum(0)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / np.outer(px, pf)[nz])).sum())


def mutual_information(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return _mi(a, f) + _mi(b, f)


def average_gradient(f: np.ndarray) -> float:
    x = np.asarray(f, np.float64)
    gy, gx = np.gradient(x)
    r, c = x.shape
    return float(np.sqrt((gx * gx + gy * gy) / 2).sum() / ((r - 1) * (c - 1)))


def structural_similarity(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two images on a 0-255 scale (Gaussian 11x11, sigma 1.5, valid region)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda im: cv2.GaussianBlur(im, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(m.mean())


def ssim_sum(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return structural_similarity(a, f) + structural_similarity(b, f)


def _csf(shape: tuple[int, int]) -> np.ndarray:
    """Mannos-Sakrison CSF on MATLAB's freqspace grid scaled as in VIFB (cols/8, rows/8)."""
    h, w = shape
    u = (np.arange(w) - w // 2) * (2.0 / w) * (w / 8.0)
    v = (np.arange(h) - h // 2) * (2.0 / h) * (h / 8.0)
    r = np.sqrt(u[None, :] ** 2 + v[:, None] ** 2)
    return 2.6 * (0.0192 + 0.144 * r) * np.exp(-(0.144 * r) ** 1.1)


def _gauss_fft(shape: tuple[int, int], sigma: float) -> np.ndarray:
    h, w = shape
    y = np.minimum(np.arange(h), h - np.arange(h))  # centred at (0, 0), wrapped
    x = np.minimum(np.arange(w), w - np.arange(w))
    g = np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma * sigma))
    return np.fft.fft2(g / g.sum())


def chen_blum(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    shape = np.shape(f)
    csf = np.fft.ifftshift(_csf(shape))
    g2, g4 = _gauss_fft(shape, 2.0), _gauss_fft(shape, 4.0)

    def masked_contrast(img):
        spec = np.fft.fft2(np.asarray(img, np.float64)) * csf
        num = np.real(np.fft.ifft2(spec * g2))
        den = np.real(np.fft.ifft2(spec * g4))
        c = np.abs(num / np.where(np.abs(den) < EPS, EPS, den) - 1.0)
        return c ** 3 / (c ** 2 + 1e-4)

    ca, cb, cf = masked_contrast(a), masked_contrast(b), masked_contrast(f)

    def preservation(cx):
        return np.minimum(cx, cf) / np.maximum(np.maximum(cx, cf), EPS)

    wa, wb = ca ** 2, cb ** 2
    norm = np.maximum(wa + wb, EPS)
    q = (wa * preservation(ca) + wb * preservation(cb)) / norm
    return float(q.mean())


def psnr(x: np.ndarray, ref: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((np.asarray(x, np.float64) - np.asarray(ref, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


METRICS = ("CE", "EN", "MI", "AG", "SSIM", "Q_CB")
LOWER_IS_BETTER = {"CE"}


def all_metrics(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> dict[str, float]:
    """The six metrics of Table 1 for one (visible, infrared, fused) triple."""
    return {"CE": cross_entropy(a, b, f), "EN": entropy(f), "MI": mutual_information(a, b, f),
            "AG": average_gradient(f), "SSIM": ssim_sum(a, b, f), "Q_CB": chen_blum(a, b, f)}
