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
- Q_CB (Chen & Blum 2009) as VIFB's ``metricsQcb.m``: images min-max normalised to 0-255,
  filtered in the frequency domain by a difference-of-Gaussians contrast sensitivity
  function (f0 = 15.3870, f1 = 1.3456, a = 0.7622, grid scaled by 1/30); local contrast
  ``C = |(G_2 * I) / (G_4 * I) - 1|`` with unnormalised 31x31 Gaussians of sigma 2 and 4
  applied with zero padding; masked contrast ``C' = k C^p / (h C^q + Z)`` (k = h = 1,
  p = 3, q = 2, Z = 1e-4); preservation ``Q_XF = min(C'_X, C'_F) / max(C'_X, C'_F)``;
  saliency weights ``lambda_X = C'_X^2 / (C'_A^2 + C'_B^2)``; Q_CB = mean of
  ``lambda_A Q_AF + lambda_B Q_BF``.
- PSNR: ``10 log10(peak^2 / MSE)``.
"""

from __future__ import annotations

import cv2
import numpy as np


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


def source_mi(x: np.ndarray, f: np.ndarray) -> float:
    """MI (nats) between one source and the fused image: one of the two terms of
    :func:`mutual_information` (each image min-max scaled to 256 levels, as VIFB)."""
    qx, qf = _minmax255(x).ravel(), _minmax255(f).ravel()
    joint = np.bincount(qx * 256 + qf, minlength=256 * 256).reshape(256, 256) / qx.size
    px, pf = joint.sum(1), joint.sum(0)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / np.outer(px, pf)[nz])).sum())


def mutual_information(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return source_mi(a, f) + source_mi(b, f)


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


def _normalize255(x: np.ndarray) -> np.ndarray:
    """VIFB's ``normalize1``: min-max to 0-255, rounded (an all-zero image stays zero)."""
    x = np.asarray(x, np.float64)
    lo, hi = x.min(), x.max()
    if hi == lo:
        return x - lo
    return np.round((x - lo) / (hi - lo) * 255.0)


def _freqspace(n: int) -> np.ndarray:
    """MATLAB ``freqspace`` along one axis: ``((0:n-1) - floor(n/2)) * 2/n``."""
    return (np.arange(n) - n // 2) * (2.0 / n)


def _dog_csf(shape: tuple[int, int]) -> np.ndarray:
    """VIFB's contrast sensitivity filter, a difference of Gaussians in frequency
    (f0 = 15.3870, f1 = 1.3456, a = 0.7622) on the freqspace grid scaled by cols/30 and
    rows/30; centred (fftshift order)."""
    h, w = shape
    u = _freqspace(w)[None, :] * (w / 30.0)
    v = _freqspace(h)[:, None] * (h / 30.0)
    r = np.sqrt(u * u + v * v)
    return np.exp(-(r / 15.3870) ** 2) - 0.7622 * np.exp(-(r / 1.3456) ** 2)


def _gauss31(sigma: float) -> np.ndarray:
    """VIFB's 31x31 Gaussian, not normalised: ``exp(-(x^2+y^2)/2s^2) / (2 pi s^2)``."""
    x = np.arange(-15, 16, dtype=np.float64)
    return np.exp(-(x[None, :] ** 2 + x[:, None] ** 2) / (2 * sigma * sigma)) / (
        2 * np.pi * sigma * sigma)


def _filter2(kernel: np.ndarray, img: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(kernel, img, 'same')``: correlation, zero padding; complex images
    are filtered part by part (the filter is linear)."""
    def real(x):
        return cv2.filter2D(x, cv2.CV_64F, kernel, borderType=cv2.BORDER_CONSTANT)
    return real(np.ascontiguousarray(img.real)) + 1j * real(np.ascontiguousarray(img.imag))


def _ratio(x: np.ndarray, y: np.ndarray, both_zero: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x / y
    return np.where((x == 0) & (y == 0), both_zero, out)


def masked_contrast(img: np.ndarray) -> np.ndarray:
    """VIFB's masked local contrast ``C'`` of one image (see :func:`chen_blum`)."""
    csf = np.fft.ifftshift(_dog_csf(np.shape(img)))
    filtered = np.fft.ifft2(np.fft.fft2(_normalize255(img)) * csf)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.abs(_filter2(_gauss31(2.0), filtered) / _filter2(_gauss31(4.0), filtered) - 1.0)
    c = np.nan_to_num(c, nan=0.0, posinf=0.0)  # a zero local mean: no defined contrast
    return c ** 3 / (c ** 2 + 1e-4)


def chen_blum(a: np.ndarray, b: np.ndarray, f: np.ndarray,
              sources: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """Q_CB as VIFB's ``metricsQcb.m`` computes it: each image min-max normalised to 0-255
    and rounded, filtered by the DoG CSF in the frequency domain (the result is complex),
    local contrast ``|filter2(G_2, I) / filter2(G_4, I) - 1|`` with VIFB's unnormalised
    31x31 Gaussians (sigma 2 and 4, zero padding), masked contrast
    ``C^3 / (C^2 + 1e-4)``, preservation ``min/max`` and saliency ``C'^2`` weights.
    Where VIFB divides 0 by 0 (no contrast anywhere, so NaN) the preservation counts as 1
    and the two saliency weights as 1/2 each. ``sources``: the masked contrasts of ``a``
    and ``b`` when already computed (scoring several fused images of one pair)."""
    ca, cb = sources if sources is not None else (masked_contrast(a), masked_contrast(b))
    cf = masked_contrast(f)

    def preservation(cx):
        return np.where(cx < cf, _ratio(cx, cf, 1.0), _ratio(cf, cx, 1.0))

    wa, wb = ca * ca, cb * cb
    lam_a = _ratio(wa, wa + wb, 0.5)
    q = lam_a * preservation(ca) + (1.0 - lam_a) * preservation(cb)
    return float(q.mean())


def psnr(x: np.ndarray, ref: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((np.asarray(x, np.float64) - np.asarray(ref, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


METRICS = ("CE", "EN", "MI", "AG", "SSIM", "Q_CB")
LOWER_IS_BETTER = {"CE"}


def all_metrics(a: np.ndarray, b: np.ndarray, f: np.ndarray,
                sources: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """The six metrics of Table 1 for one (visible, infrared, fused) triple; ``sources``:
    ``(masked_contrast(a), masked_contrast(b))`` to reuse across fused images."""
    return {"CE": cross_entropy(a, b, f), "EN": entropy(f), "MI": mutual_information(a, b, f),
            "AG": average_gradient(f), "SSIM": ssim_sum(a, b, f),
            "Q_CB": chen_blum(a, b, f, sources)}
