"""Scripted visible recordings with ground truth for the reconstruction's memory: the camera
moves and then rests (only the sensor's noise events for seconds), or pans slowly.

One recording: a visible image seen by a DAVIS346-sized sensor at 30 windows per second,
in one of three lights (``day``; ``night``: 1 % of the light with shot noise and three
times the background activity; ``hdr``: one half of the view 50 times brighter), plus the
8-bit APS frame of each window (auto-exposed, noisy, blurred over the window's motion) for
comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from evif_ros.sim.aps import ApsCamera, ApsConfig
from evif_ros.sim.dvs import DvsConfig, DvsSimulator
from evif_ros.sim.video import simulate_windows

LIGHTS = ("day", "night", "hdr")
KINDS = {
    # (seconds moving, seconds resting, pan speed px/s)
    "stop": (1.0, 2.5, 150.0),
    "pan": (3.0, 0.0, 15.0),
}
PERIOD_NS = 33_333_333
K = 6
SENSOR_CONTRAST = DvsConfig.c_on  # the simulated sensor's nominal threshold (log units)


@dataclass
class StopGoRecording:
    counts: np.ndarray  # (T, K, 2, H, W) uint8 event counts per sub-window and polarity
    frames: np.ndarray  # (T, H, W) uint8 ground truth at each window's end
    aps: np.ndarray  # (T, H, W) uint8 APS frame exposed during each window
    period_ns: int
    stop_window: int  # first window of the rest (T for a pan)


def stopgo_recording(visible: np.ndarray, light: str, kind: str, seed: int = 0,
                     size: tuple[int, int] = (346, 260), sensor: dict | None = None
                     ) -> StopGoRecording:
    """Simulate one recording over ``visible`` (linear radiance in (0, 1], any size);
    ``sensor``: ``DvsConfig`` fields other than the defaults (thresholds, the pixels'
    bandwidth, ...)."""
    if light not in LIGHTS or kind not in KINDS:
        raise ValueError(f"light must be one of {LIGHTS} and kind one of {tuple(KINDS)}")
    rng = np.random.default_rng(seed)
    w, h = size
    move_s, rest_s, speed = KINDS[kind]
    windows = int(round((move_s + rest_s) * 1e9 / PERIOD_NS))
    # the image at 1.3x the sensor, so the pan never leaves it
    scale = 1.3 * max(w / visible.shape[1], h / visible.shape[0])
    canvas = cv2.resize(visible, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gain = np.ones_like(canvas)
    level, shot, noise_hz = 1.0, 0.0, 0.1
    if light == "night":
        level, shot, noise_hz = 0.01, 0.02, 0.3
    elif light == "hdr":
        gain[:, canvas.shape[1] // 2:] = 50.0
    radiance = (canvas * gain * level).astype(np.float32)
    x0 = (canvas.shape[1] - w) / 2 - speed * move_s / 2

    def offset(t_s: float) -> float:
        return x0 + speed * min(t_s, move_s)

    def render(t_s: float, lit: bool = True) -> np.ndarray:
        m = np.float32([[1, 0, offset(t_s)], [0, 1, (canvas.shape[0] - h) / 2]])
        return cv2.warpAffine(radiance, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REFLECT_101)

    def fastest(t0_s: float, t1_s: float) -> float:
        return speed if t0_s < move_s else 0.0

    dvs = DvsSimulator(DvsConfig(**{"width": w, "height": h, "noise_rate_hz": noise_hz,
                                    **(sensor or {})}), rng)
    counts, frames, means = simulate_windows(render, fastest, dvs, rng, (w, h), PERIOD_NS,
                                             windows, K, shot=shot, white=1.0,
                                             keep_mean=True)
    cam = ApsCamera(ApsConfig(), rng)
    aps = np.stack([cam.expose(m, min(cam.auto_exposure(m), PERIOD_NS)) for m in means])
    stop = int(np.ceil(move_s * 1e9 / PERIOD_NS)) if rest_s else windows
    return StopGoRecording(counts, frames, aps, PERIOD_NS, stop)
