"""ESIM-style DAVIS346 event simulation from sharp sub-frames (vectorized per step).

Per pixel, the log intensity ``L = log(I + eps)`` is linearly interpolated between two
consecutive sub-frames; every crossing of the pixel's reference level by its ON (OFF)
contrast threshold emits an event at the interpolated crossing time, and the reference
moves by one threshold. Thresholds vary per pixel (mismatch). A refractory period,
background-activity noise (Poisson, random polarity) and hot pixels complete the model.
Optionally the photoreceptor's bandwidth: the pixel compares a first-order low-pass of its
log intensity (``photoreceptor_tau_ns``), so its events trail the scene by about that time
constant, as real pixels do in dim light (v2e's pixel bandwidth; Delbruck et al. 2020).
Timestamps are quantised to the DAVIS346's 1 us.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evif_ros.runtime.events import EVENT_DTYPE, empty_events


@dataclass(frozen=True)
class DvsConfig:
    width: int = 346
    height: int = 260
    c_on: float = 0.25  # nominal ON contrast threshold (log units)
    c_off: float = 0.25
    c_sigma: float = 0.03  # per-pixel threshold mismatch (std, log units)
    refractory_ns: int = 50_000
    log_eps: float = 1e-5  # response floor: ~120 dB below the brightest highlight
    noise_rate_hz: float = 0.1  # background activity per pixel
    hot_pixel_fraction: float = 1e-4
    hot_pixel_rate_hz: float = 300.0
    time_resolution_ns: int = 1000
    photoreceptor_tau_ns: int = 0  # low-pass of the log intensity (0: an ideal pixel)


class DvsSimulator:
    """Stateful event generator: feed sub-frames in time order with :meth:`step`."""

    def __init__(self, config: DvsConfig, rng: np.random.Generator):
        self.cfg = config
        self.rng = rng
        n = config.width * config.height
        self.c_on = np.clip(rng.normal(config.c_on, config.c_sigma, n), 0.05, None)
        self.c_off = np.clip(rng.normal(config.c_off, config.c_sigma, n), 0.05, None)
        hot = rng.random(n) < config.hot_pixel_fraction
        self.hot_pixels = np.flatnonzero(hot)
        self.ref: np.ndarray | None = None
        self.last_log: np.ndarray | None = None
        self.last_t_ns = 0
        self.last_event_ns = np.full(n, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self.noise_scale = 1.0

    def log_intensity(self, radiance: np.ndarray) -> np.ndarray:
        return np.log(radiance.reshape(-1).astype(np.float64) + self.cfg.log_eps)

    def reset(self, radiance: np.ndarray, t_ns: int) -> None:
        """Start from a sub-frame without events (references at its log intensity)."""
        self.last_log = self.log_intensity(radiance)
        self.ref = self.last_log.copy()
        self.last_t_ns = int(t_ns)

    def step(self, radiance: np.ndarray, t_ns: int) -> np.ndarray:
        """Events in ``(last_t, t_ns]`` given the sub-frame at ``t_ns``; time-sorted."""
        if self.ref is None:
            self.reset(radiance, t_ns)
            return empty_events()
        new = self.log_intensity(radiance)
        t0, dt = self.last_t_ns, int(t_ns) - self.last_t_ns
        tau = self.cfg.photoreceptor_tau_ns
        if tau > 0:  # exact if the log intensity jumped to its new value at the step start
            new = self.last_log + (new - self.last_log) * -np.expm1(-dt / tau)
        signal = self._crossings(self.last_log, new, t0, dt)
        noise = self._noise(t0, dt)
        self.last_log, self.last_t_ns = new, int(t_ns)
        ev = np.concatenate([signal, noise]) if noise.size else signal
        order = np.argsort(ev["t"], kind="stable")
        return ev[order]

    def _crossings(self, old: np.ndarray, new: np.ndarray, t0: int, dt: int) -> np.ndarray:
        ref = self.ref
        d = new - ref
        n_on = np.floor(np.maximum(d, 0) / self.c_on).astype(np.int64)
        n_off = np.floor(np.maximum(-d, 0) / self.c_off).astype(np.int64)
        counts = n_on + n_off  # a pixel crosses one way per step
        pix = np.flatnonzero(counts)
        if pix.size == 0:
            return empty_events()
        cnt = counts[pix]
        rep = np.repeat(pix, cnt)
        # k = 1..cnt within each pixel's run
        k = np.arange(rep.size) - np.repeat(np.cumsum(cnt) - cnt, cnt) + 1
        on = n_on[rep] > 0
        step = np.where(on, self.c_on[rep], -self.c_off[rep])
        level = ref[rep] + k * step
        slope = new[rep] - old[rep]
        frac = np.clip((level - old[rep]) / np.where(slope == 0, 1.0, slope), 0.0, 1.0)
        t = t0 + np.round(frac * dt).astype(np.int64)
        res = self.cfg.time_resolution_ns
        t = (t + res - 1) // res * res
        # refractory: drop a crossing closer than the period to the previous one of
        # the same pixel (the previous step's last event for k == 1)
        prev = np.empty_like(t)
        prev[1:] = t[:-1]
        first = k == 1
        prev[first] = self.last_event_ns[rep[first]]
        keep = (t - prev) >= self.cfg.refractory_ns
        ref += n_on * self.c_on - n_off * self.c_off
        rep, t, on = rep[keep], t[keep], on[keep]
        if rep.size:
            # last kept event per pixel (runs are pixel-sorted, times ascending)
            last = np.flatnonzero(np.append(rep[1:] != rep[:-1], True))
            self.last_event_ns[rep[last]] = t[last]
        ev = np.empty(rep.size, dtype=EVENT_DTYPE)
        ev["x"] = rep % self.cfg.width
        ev["y"] = rep // self.cfg.width
        ev["t"] = t
        ev["p"] = on
        return ev

    def _noise(self, t0: int, dt: int) -> np.ndarray:
        cfg = self.cfg
        n_pix = cfg.width * cfg.height
        lam_ba = cfg.noise_rate_hz * self.noise_scale * n_pix * dt * 1e-9
        n_ba = int(self.rng.poisson(lam_ba))
        lam_hot = cfg.hot_pixel_rate_hz * dt * 1e-9
        n_hot = self.rng.poisson(lam_hot, self.hot_pixels.size)
        pix = np.concatenate([self.rng.integers(0, n_pix, n_ba),
                              np.repeat(self.hot_pixels, n_hot)])
        if pix.size == 0:
            return empty_events()
        res = cfg.time_resolution_ns
        t = t0 + 1 + self.rng.integers(0, max(dt, 1), pix.size)
        ev = np.empty(pix.size, dtype=EVENT_DTYPE)
        ev["x"] = pix % cfg.width
        ev["y"] = pix // cfg.width
        ev["t"] = (t + res - 1) // res * res
        ev["p"] = self.rng.integers(0, 2, pix.size)
        return ev
