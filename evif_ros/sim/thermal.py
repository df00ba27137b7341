"""Thermal (LWIR microbolometer) camera model: own resolution, homography to the event
camera, raw counts (mono16), NETD noise, motion blur over the exposure and an optional
first-order (time-constant) response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

# IR pixel -> DAVIS346 pixel for the misaligned synthetic rig (matches
# calibration/synthetic_rig.yaml): ~1.08x scale, 1.5 deg roll, a few pixels of shift.
_a = np.deg2rad(1.5)
SYNTHETIC_IR_TO_DAVIS = np.array([
    [1.08 * np.cos(_a), -1.08 * np.sin(_a), 6.0],
    [1.08 * np.sin(_a), 1.08 * np.cos(_a), -9.0],
    [0.0, 0.0, 1.0],
])


@dataclass(frozen=True)
class ThermalConfig:
    width: int = 320
    height: int = 256
    rate_hz: float = 30.0
    exposure_ns: int = 25_000_000
    sub_frames: int = 7  # the paper's blur: average of 7 sharp frames
    tau_ms: float = 0.0  # microbolometer time constant; 0 = plain average
    counts_offset: float = 8192.0  # counts at 20 deg C
    counts_per_kelvin: float = 50.0
    netd_k: float = 0.05  # noise-equivalent temperature difference
    latency_ns: tuple[int, int] = (6_000_000, 14_000_000)  # USB arrival after exposure end
    ir_to_davis: tuple = field(default_factory=lambda: tuple(map(tuple, np.eye(3))))

    @property
    def period_ns(self) -> int:
        return int(round(1e9 / self.rate_hz))


class ThermalCamera:
    """Samples temperature maps on the event camera's grid and makes raw IR frames."""

    def __init__(self, config: ThermalConfig, rng: np.random.Generator, davis_size=(346, 260)):
        self.cfg = config
        self.rng = rng
        self.h = np.asarray(config.ir_to_davis, dtype=np.float64)
        self.identity = (np.allclose(self.h, np.eye(3))
                         and (config.width, config.height) == tuple(davis_size))
        # fixed column pattern noise, as in uncorrected microbolometers
        self.column_fpn = rng.normal(0.0, 0.3 * config.netd_k, config.width).astype(np.float32)

    def to_ir_grid(self, temp_davis: np.ndarray) -> np.ndarray:
        if self.identity:
            return temp_davis
        return cv2.warpPerspective(temp_davis, self.h, (self.cfg.width, self.cfg.height),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REPLICATE)

    def sub_frame_times_ns(self, t_trigger_ns: int) -> np.ndarray:
        """Centres of ``sub_frames`` equal slices of the exposure; the middle one is the
        exposure midpoint (the ground-truth instant)."""
        n, exp = self.cfg.sub_frames, self.cfg.exposure_ns
        return t_trigger_ns + ((np.arange(n) + 0.5) * exp / n).round().astype(np.int64)

    def capture(self, temperature_at: Callable[[float], np.ndarray], t_trigger_ns: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """``(blurry_counts, sharp_counts)`` as float32 on the IR grid.

        ``temperature_at(t_s)`` returns the temperature on the event camera's grid.
        Sharp = noise-free frame at mid-exposure; blurry = mean of the sub-frames (or of the
        first-order sensor response when ``tau_ms > 0``) plus NETD and column noise.
        """
        times = self.sub_frame_times_ns(t_trigger_ns)
        sharp_temps = [self.to_ir_grid(temperature_at(t * 1e-9)) for t in times]
        if self.cfg.tau_ms > 0:
            seen = self._first_order(temperature_at, times)
        else:
            seen = sharp_temps
        blurry = np.mean(seen, axis=0)
        noise = self.rng.standard_normal(blurry.shape).astype(np.float32) * self.cfg.netd_k
        blurry = blurry + noise + self.column_fpn[None, :]
        mid = sharp_temps[len(sharp_temps) // 2]
        return self.counts(blurry), self.counts(mid)

    def _first_order(self, temperature_at, times: np.ndarray) -> list[np.ndarray]:
        """Bolometer reading ``y' = (T - y) / tau``, integrated at 1 ms from 5 tau before."""
        tau_ns = self.cfg.tau_ms * 1e6
        dt = 1_000_000
        t = int(times[0] - 5 * tau_ns)
        y = self.to_ir_grid(temperature_at(t * 1e-9)).copy()
        alpha = np.float32(1.0 - np.exp(-dt / tau_ns))
        out = []
        for target in times:
            while t + dt <= target:
                t += dt
                y += alpha * (self.to_ir_grid(temperature_at(t * 1e-9)) - y)
            out.append(y.copy())
        return out

    def counts(self, temp_c: np.ndarray) -> np.ndarray:
        c = self.cfg.counts_offset + self.cfg.counts_per_kelvin * (temp_c - 20.0)
        return np.clip(c, 0, 65535).astype(np.float32)
