"""Scoring reconstructions of a real recording against its APS frames.

*Structure score* of one frame: the Pearson correlation between the gradient magnitudes
(Sobel after a Gaussian of sigma 1.5 px, an 8 px border cropped) of the histogram-equalised
reconstruction and of the histogram-equalised APS frame. APS motion blur lowers every
method alike: it measures structure at a coarse scale, not sharpness.
"""

from __future__ import annotations

import cv2
import numpy as np

SIGMA_PX = 1.5
BORDER_PX = 8


def gradient_magnitude(image: np.ndarray, sigma: float = SIGMA_PX) -> np.ndarray:
    """Sobel gradient magnitude of the histogram-equalised, Gaussian-smoothed image."""
    u8 = image if image.dtype == np.uint8 else \
        np.clip(np.round(image.astype(np.float32) * 255), 0, 255).astype(np.uint8)
    eq = cv2.equalizeHist(u8).astype(np.float32)
    smooth = cv2.GaussianBlur(eq, (0, 0), sigma)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    return np.hypot(gx, gy)


def structure_score(recon: np.ndarray, aps: np.ndarray, border: int = BORDER_PX) -> float:
    """Pearson correlation of the two gradient-magnitude maps (uint8 images or floats in
    [0, 1], same shape); 0 when either map is flat."""
    if recon.shape != aps.shape:
        raise ValueError(f"reconstruction {recon.shape} and APS {aps.shape} differ in shape")
    a = gradient_magnitude(recon)[border:-border, border:-border].ravel().astype(np.float64)
    b = gradient_magnitude(aps)[border:-border, border:-border].ravel().astype(np.float64)
    a -= a.mean()
    b -= b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0
