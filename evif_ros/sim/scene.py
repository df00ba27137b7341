"""Procedural world: a textured background canvas seen by a moving camera, plus sprites.

A :class:`Scene` is a pure function of time: ``render(t_s)`` gives the visible radiance
and the temperature (deg C) on the event camera's pixel grid, so every sensor model can
sample it at its own instants. Motion is a sum of sinusoids, so a scene of any duration
stays within its canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from evif_ros.sim import textures
from evif_ros.sim.scenarios import Scenario


@dataclass
class Sprite:
    """A moving object: alpha mask, albedo and temperature maps, and a Lissajous path."""

    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    albedo: np.ndarray
    temp: np.ndarray
    center: np.ndarray  # (2,) path centre in frame pixels (x, y)
    amp: np.ndarray  # (2,) path amplitude, px
    omega: np.ndarray  # (2,) angular rate, rad/s
    phase: np.ndarray  # (2,)

    def position(self, t_s: float) -> np.ndarray:
        return self.center + self.amp * np.sin(self.omega * t_s + self.phase)


class Scene:
    """Visible + thermal world for one scenario, on a ``width x height`` camera grid."""

    def __init__(self, scenario: Scenario, seed: int, width: int = 346, height: int = 260):
        self.scenario = scenario
        self.width, self.height = width, height
        rng = np.random.default_rng(seed)
        self._motion(rng)
        margin = int(np.ceil(self.ego_amp.max())) + 48
        ch, cw = height + 2 * margin, width + 2 * margin
        self.canvas_origin = np.array([margin, margin], dtype=np.float64)
        self.canvas = self._background(rng, ch, cw)
        self.sprites = [self._sprite(rng) for _ in range(
            int(rng.integers(scenario.objects[0], scenario.objects[1] + 1)))]

    # --- construction -------------------------------------------------------------
    def _motion(self, rng: np.random.Generator) -> None:
        s = self.scenario
        # two sinusoids per axis; peak speed = sum(amp * omega)
        self.ego_omega = rng.uniform(2.0, 7.0, size=(2, 2))
        if s.ego_speed_px_s > 0:
            split = rng.dirichlet([2, 2, 2, 2]).reshape(2, 2)
            self.ego_amp = s.ego_speed_px_s * split / self.ego_omega
        else:
            self.ego_amp = np.zeros((2, 2))
        self.ego_phase = rng.uniform(0, 2 * np.pi, size=(2, 2))
        self.rot_omega = float(rng.uniform(1.0, 4.0))
        self.rot_amp = np.deg2rad(s.ego_rot_deg_s) / self.rot_omega
        self.rot_phase = float(rng.uniform(0, 2 * np.pi))

    def _background(self, rng: np.random.Generator, ch: int, cw: int) -> np.ndarray:
        s = self.scenario
        albedo = 0.1 + 0.55 * textures.pink_noise(rng, ch, cw, beta=2.2)
        albedo += 0.12 * textures.fine_grain(rng, ch, cw)
        temp = 10.0 + 10.0 * textures.pink_noise(rng, ch, cw, beta=2.4, cutoff=0.2)
        horizon = int(ch * rng.uniform(0.3, 0.45))
        sky = np.linspace(0.95, 0.7, horizon, dtype=np.float32)[:, None]
        clouds = textures.pink_noise(rng, horizon, cw, beta=3.2)
        albedo[:horizon] = sky * (0.85 + 0.15 * clouds)
        temp[:horizon] = -25.0 + 10.0 * clouds  # clear sky is cold in LWIR
        textures.draw_buildings(rng, albedo, temp, horizon, int(rng.integers(3, 8)),
                                warm_windows=s.night)
        textures.draw_road(rng, albedo, temp, horizon)
        illum = illumination(rng, s, ch, cw, horizon)
        stack = np.stack([np.clip(albedo, 0.02, 1.0), temp, illum], axis=-1)
        return stack.astype(np.float32)

    def _sprite(self, rng: np.random.Generator) -> Sprite:
        kind = rng.choice(["person", "vehicle", "animal", "cold"], p=[0.45, 0.3, 0.15, 0.1])
        if kind == "person":
            h, w = int(rng.integers(50, 110)), 0
            w = max(12, h // 3)
            alpha = np.zeros((h, w), np.float32)
            cv2.ellipse(alpha, (w // 2, int(h * 0.6)), (w // 2 - 1, int(h * 0.4)), 0, 0, 360,
                        1.0, -1, cv2.LINE_AA)
            cv2.circle(alpha, (w // 2, h // 7), max(3, h // 9), 1.0, -1, cv2.LINE_AA)
            t_body = float(rng.uniform(29.0, 34.0))
        elif kind == "vehicle":
            h, w = int(rng.integers(35, 60)), int(rng.integers(70, 130))
            alpha = np.zeros((h, w), np.float32)
            cv2.rectangle(alpha, (0, h // 3), (w - 1, h - 8), 1.0, -1, cv2.LINE_AA)
            cv2.rectangle(alpha, (w // 5, 0), (4 * w // 5, h // 3), 1.0, -1, cv2.LINE_AA)
            t_body = float(rng.uniform(18.0, 28.0))
        elif kind == "animal":
            h, w = int(rng.integers(25, 45)), int(rng.integers(40, 70))
            alpha = np.zeros((h, w), np.float32)
            cv2.ellipse(alpha, (w // 2, h // 2), (w // 2 - 1, h // 3), 0, 0, 360, 1.0, -1,
                        cv2.LINE_AA)
            t_body = float(rng.uniform(30.0, 37.0))
        else:  # cold: water tank, ice box
            h, w = int(rng.integers(30, 70)), int(rng.integers(30, 70))
            alpha = np.zeros((h, w), np.float32)
            cv2.circle(alpha, (w // 2, h // 2), min(h, w) // 2 - 1, 1.0, -1, cv2.LINE_AA)
            t_body = float(rng.uniform(-5.0, 6.0))
        base = float(rng.uniform(0.05, 0.9))
        albedo = base + 0.25 * textures.fine_grain(rng, h, w)
        # clothes/body panels: horizontal bands of different albedo
        bands = rng.uniform(-0.2, 0.2, size=4)
        albedo += np.repeat(bands, int(np.ceil(h / 4)))[:h, None]
        temp = t_body + 1.5 * textures.pink_noise(rng, h, w, beta=3.0, cutoff=0.1)
        if kind == "vehicle":  # hot engine / exhaust
            temp[h // 3:, : w // 4] += float(rng.uniform(20.0, 45.0))
        speed = self.scenario.object_speed_px_s
        omega = rng.uniform(1.5, 5.0, size=2)
        direction = rng.dirichlet([1.5, 1.0])
        amp = speed * direction / omega if speed > 0 else np.zeros(2)
        center = np.array([rng.uniform(0.15, 0.85) * self.width,
                           rng.uniform(0.35, 0.85) * self.height])
        return Sprite(alpha, np.clip(albedo, 0.02, 1.0).astype(np.float32),
                      temp.astype(np.float32), center, amp, omega,
                      rng.uniform(0, 2 * np.pi, size=2))

    # --- rendering ------------------------------------------------------------------
    def ego_pose(self, t_s: float) -> tuple[np.ndarray, float]:
        """Camera offset (x, y) px into the canvas and roll angle (rad) at ``t_s``."""
        off = (self.ego_amp * np.sin(self.ego_omega * t_s + self.ego_phase)).sum(axis=1)
        roll = self.rot_amp * np.sin(self.rot_omega * t_s + self.rot_phase)
        return off, float(roll)

    def ego_rates(self, t_s: float) -> tuple[np.ndarray, float]:
        """Image velocity (px/s) and roll rate (rad/s) of the camera motion (for the IMU)."""
        vel = (self.ego_amp * self.ego_omega * np.cos(self.ego_omega * t_s + self.ego_phase)
               ).sum(axis=1)
        rate = self.rot_amp * self.rot_omega * np.cos(self.rot_omega * t_s + self.rot_phase)
        return vel, float(rate)

    def render(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Visible radiance (linear) and temperature (deg C), each ``(height, width)``."""
        off, roll = self.ego_pose(t_s)
        c, s = np.cos(roll), np.sin(roll)
        cx, cy = self.width / 2.0, self.height / 2.0
        # frame pixel p -> canvas pixel: R(p - c) + c + origin + off  (inverse map)
        ox, oy = self.canvas_origin + off
        m = np.array([[c, -s, cx + ox - c * cx + s * cy],
                      [s, c, cy + oy - s * cx - c * cy]])
        bg = cv2.warpAffine(self.canvas, m, (self.width, self.height),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REFLECT)
        albedo, temp, illum = bg[..., 0], bg[..., 1], bg[..., 2]
        for sp in self.sprites:
            self._composite(sp, t_s, albedo, temp)
        radiance = albedo * illum * np.float32(self.scenario.illumination)
        return radiance, temp

    def _composite(self, sp: Sprite, t_s: float, albedo: np.ndarray, temp: np.ndarray) -> None:
        """Blend a sprite at sub-pixel position into its bounding box only."""
        x, y = sp.position(t_s)
        h, w = sp.alpha.shape
        x0, y0 = int(np.floor(x - w / 2)), int(np.floor(y - h / 2))
        x1, y1 = x0 + w + 1, y0 + h + 1
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x1, self.width), min(y1, self.height)
        if cx0 >= cx1 or cy0 >= cy1:
            return
        # shift by the sub-pixel remainder into the clipped ROI
        m = np.array([[1.0, 0.0, (x - w / 2) - cx0], [0.0, 1.0, (y - h / 2) - cy0]])
        size = (cx1 - cx0, cy1 - cy0)
        stack = np.dstack([sp.alpha, sp.albedo, sp.temp])
        warped = cv2.warpAffine(stack, m, size, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a = warped[..., 0]
        roi = (slice(cy0, cy1), slice(cx0, cx1))
        albedo[roi] += a * (warped[..., 1] - albedo[roi])
        temp[roi] += a * (warped[..., 2] - temp[roi])


def illumination(rng: np.random.Generator, scenario: Scenario, ch: int, cw: int,
                 ground_top: int = 0) -> np.ndarray:
    """Light falling on a ``ch x cw`` canvas (linear, multiplies the albedo).

    Daylight is flat; ``night`` dims it and adds street-lamp pools below ``ground_top``;
    ``hdr`` has a sunlit half, a deep shadow and a lamp (~1e4 between extremes).
    """
    illum = np.ones((ch, cw), dtype=np.float32)
    if scenario.hdr:
        return _hdr_illumination(rng, ch, cw)
    if scenario.night:
        illum *= 0.3
        for _ in range(int(rng.integers(2, 5))):
            cx, cy = rng.uniform(0, cw), rng.uniform(ground_top, ch)
            yy, xx = np.mgrid[0:ch, 0:cw]
            illum += 4.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 60.0 ** 2))
    return illum


def _hdr_illumination(rng: np.random.Generator, ch: int, cw: int) -> np.ndarray:
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    d = (xx - cw / 2) * np.cos(ang) + (yy - ch / 2) * np.sin(ang)
    log_illum = np.where(d > 0, np.log(8.0), np.log(3e-3)).astype(np.float32)
    log_illum = cv2.GaussianBlur(log_illum, (0, 0), 6.0)
    cx, cy = rng.uniform(0.2, 0.8) * cw, rng.uniform(0.2, 0.8) * ch
    lamp = 30.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 25.0 ** 2))
    return (np.exp(log_illum) + lamp).astype(np.float32)
