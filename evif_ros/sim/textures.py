"""Procedural textures: 1/f noise and man-made structure, for visible albedo and temperature."""

from __future__ import annotations

import cv2
import numpy as np


def pink_noise(rng: np.random.Generator, height: int, width: int, beta: float = 2.0,
               cutoff: float = 0.5) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**beta (natural images: beta ~ 2), scaled to [0, 1].

    ``cutoff`` (cycles/px) removes frequencies above it, for smooth fields (thermal).
    """
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0)
    amp[0, 0] = 0.0
    amp[f > cutoff] = 0.0
    phase = rng.uniform(0, 2 * np.pi, amp.shape)
    field = np.fft.irfft2(amp * np.exp(1j * phase), s=(height, width))
    lo, hi = np.percentile(field, [1, 99])
    return np.clip((field - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)


def fine_grain(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Mid-frequency grain (foliage, gravel, fabric) in [-1, 1]."""
    g = rng.standard_normal((height, width)).astype(np.float32)
    g = cv2.GaussianBlur(g, (0, 0), 1.2)
    return np.clip(g / (g.std() * 2.5 + 1e-6), -1.0, 1.0)


def draw_buildings(rng: np.random.Generator, albedo: np.ndarray, temp: np.ndarray,
                   ground_y: int, count: int, warm_windows: bool) -> None:
    """Facades with window grids above the horizon, in place.

    Facades are near ambient in the thermal band; lit windows are warm when
    ``warm_windows`` (night scenes), which gives thermal structure the visible lacks.
    """
    h, w = albedo.shape
    for _ in range(count):
        bw = int(rng.integers(w // 12, w // 5))
        bh = int(rng.integers(h // 8, max(h // 8 + 1, ground_y * 3 // 4)))
        x0 = int(rng.integers(0, max(1, w - bw)))
        y0 = max(0, ground_y - bh)
        base = float(rng.uniform(0.15, 0.7))
        albedo[y0:ground_y, x0:x0 + bw] = base + 0.08 * fine_grain(
            rng, ground_y - y0, min(bw, w - x0))
        temp[y0:ground_y, x0:x0 + bw] = float(rng.uniform(10.0, 18.0))
        step_x, step_y = int(rng.integers(10, 22)), int(rng.integers(12, 26))
        win_w, win_h = max(3, step_x // 2), max(4, step_y // 2)
        win_alb = float(rng.uniform(0.05, 0.95))
        for yy in range(y0 + 4, ground_y - win_h, step_y):
            for xx in range(x0 + 3, min(w, x0 + bw) - win_w, step_x):
                albedo[yy:yy + win_h, xx:xx + win_w] = win_alb
                if warm_windows and rng.random() < 0.5:
                    temp[yy:yy + win_h, xx:xx + win_w] = 24.0


def draw_road(rng: np.random.Generator, albedo: np.ndarray, temp: np.ndarray,
              ground_y: int) -> None:
    """Asphalt band with lane markings below the horizon, in place."""
    h, w = albedo.shape
    top = ground_y + (h - ground_y) // 3
    albedo[top:] = 0.12 + 0.04 * fine_grain(rng, h - top, w)
    temp[top:] += 4.0  # asphalt stores heat
    lane_y = (top + h) // 2
    dash = int(rng.integers(30, 60))
    for x0 in range(0, w, 2 * dash):
        albedo[lane_y:lane_y + 5, x0:x0 + dash] = 0.85
