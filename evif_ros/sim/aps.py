"""DAVIS346 APS (frame) model: ~60 dB, 8 bit, global shutter, auto-exposure, motion blur."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ApsConfig:
    rate_hz: float = 20.0
    gain_dn: float = 9.0e4  # DN per (radiance x second)
    target_dn: float = 110.0  # auto-exposure aims the median here
    min_exposure_ns: int = 50_000
    max_exposure_ns: int = 20_000_000
    read_noise_dn: float = 1.2
    shot_noise_dn: float = 0.25  # std = shot_noise_dn * sqrt(DN)


class ApsCamera:
    """Turns the sharp sub-frames inside an exposure into one 8-bit frame."""

    def __init__(self, config: ApsConfig, rng: np.random.Generator):
        self.cfg = config
        self.rng = rng
        self.exposure_ns = 5_000_000

    def auto_exposure(self, radiance: np.ndarray) -> int:
        """Exposure that brings the median to ``target_dn``, clamped to the sensor's range."""
        med = float(np.median(radiance[::4, ::4]))
        want = self.cfg.target_dn / (self.cfg.gain_dn * max(med, 1e-12)) * 1e9
        return int(np.clip(want, self.cfg.min_exposure_ns, self.cfg.max_exposure_ns))

    def expose(self, mean_radiance: np.ndarray, exposure_ns: int) -> np.ndarray:
        """Blurred frame from the mean radiance over the exposure: clip, noise, 8 bit."""
        dn = mean_radiance * (self.cfg.gain_dn * exposure_ns * 1e-9)
        noise = self.rng.standard_normal(dn.shape).astype(np.float32)
        std = np.sqrt(self.cfg.read_noise_dn ** 2 + self.cfg.shot_noise_dn ** 2 * dn)
        return np.clip(np.round(dn + noise * std), 0, 255).astype(np.uint8)


def tonemap_log(radiance: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Ground-truth visible image in [0, 1]: log radiance stretched between its 1st and
    99th percentiles (what an HDR event reconstruction can show; E2VID-style)."""
    log_i = np.log(radiance.astype(np.float32) + np.float32(eps))
    lo, hi = np.percentile(log_i[::2, ::2], [1, 99])
    return np.clip((log_i - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)
