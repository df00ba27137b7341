"""Scenes from registered visible/infrared image pairs (e.g. RoadScene) under synthesized
camera motion, as E2VID and its successors do with still photographs.

A pair folder holds ``vi/NAME`` and ``ir/NAME``: same-named, same-sized images that show
the same view pixel for pixel. :class:`ImagePairScene` puts the pair on one canvas (visible
linear radiance, temperature, illumination), so the procedural renderer's camera motion,
roll and sprites move both modalities together and registration holds at every instant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from evif_ros.errors import ConfigError, InputFileError
from evif_ros.sim.scenarios import PAIR_MOTION_SCALE, Scenario
from evif_ros.sim.scene import Scene, Sprite, illumination

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
TEST_FRACTION = 0.2
# Darkest linear visible radiance kept (relative to white): JPEG black is "below the
# camera's range", not zero light, and log(0) would make every dark pixel fire.
VISIBLE_FLOOR = 1e-3
MIN_MARGIN_PX = 64  # canvas beyond the sensor view on each side, before motion fitting


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """Display-referred sRGB values in [0, 1] to linear light (IEC 61966-2-1)."""
    v = v.astype(np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def image_split(name: str, test_fraction: float = TEST_FRACTION) -> str:
    """``train`` or ``test`` from a hash of the file name: stable when images are added or
    removed, and the same on every machine."""
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 2 ** 32
    return "test" if h < test_fraction else "train"


@dataclass(frozen=True)
class PairLibrary:
    """The image pairs of one folder (``vi/`` and ``ir/`` subfolders)."""

    root: Path
    names: tuple[str, ...]

    @classmethod
    def open(cls, root: Path | str) -> "PairLibrary":
        root = Path(root)
        vi, ir = root / "vi", root / "ir"
        for d in (vi, ir):
            if not d.is_dir():
                raise InputFileError(f"{root}: no {d.name}/ folder (expected vi/ and ir/ "
                                     "with same-named registered images)")
        names = sorted(p.name for p in vi.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                       and (ir / p.name).is_file())
        if not names:
            raise InputFileError(f"{root}: no image in vi/ has a same-named image in ir/")
        return cls(root, tuple(names))

    def split(self, split: str) -> tuple[str, ...]:
        """The images of ``split`` (``train`` or ``test``); never empty."""
        if split not in ("train", "test"):
            raise ConfigError(f"--split {split!r} is not one of train, test")
        names = tuple(n for n in self.names if image_split(n) == split)
        if not names:
            raise InputFileError(f"{self.root}: no {split} image among {len(self.names)} "
                                 "(the split takes ~20 % of the images for test)")
        return names

    def load(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(visible linear radiance in [VISIBLE_FLOOR, 1], IR value in [0, 1])``, same size."""
        vi_path, ir_path = self.root / "vi" / name, self.root / "ir" / name
        bgr = cv2.imread(str(vi_path), cv2.IMREAD_COLOR)
        ir = cv2.imread(str(ir_path), cv2.IMREAD_UNCHANGED)
        for path, img in ((vi_path, bgr), (ir_path, ir)):
            if img is None:
                raise InputFileError(f"{path}: not a readable image")
        if bgr.shape[:2] != ir.shape[:2]:
            raise InputFileError(f"{ir_path}: {ir.shape[1]}x{ir.shape[0]} differs from its "
                                 f"visible image ({bgr.shape[1]}x{bgr.shape[0]}); pairs must "
                                 "be registered pixel for pixel")
        lin = srgb_to_linear(bgr[..., ::-1] / 255.0)
        lum = lin @ np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 luminance
        if ir.ndim == 3:
            ir = cv2.cvtColor(ir, cv2.COLOR_BGR2GRAY)
        ir_unit = ir.astype(np.float32) / float(np.iinfo(ir.dtype).max)
        return np.clip(lum, VISIBLE_FLOOR, 1.0).astype(np.float32), ir_unit


class ImagePairScene(Scene):
    """A registered visible/IR pair seen by the moving rig camera.

    The scenario's peak speeds and roll are scaled by ``motion_scale``. The pair is scaled
    so the sensor view plus a margin fits in it; where the motion's amplitude would leave the
    picture, the motion oscillates faster with a smaller amplitude (same peak speed), so
    views stay on real content. Sprites are patches cut from the same pair (both
    modalities), moving on their own paths. The IR value maps linearly to a random
    temperature span.
    """

    def __init__(self, scenario: Scenario, seed: int, visible: np.ndarray, ir: np.ndarray,
                 width: int = 346, height: int = 260, sprites: tuple[int, int] = (0, 2),
                 motion_scale: float = PAIR_MOTION_SCALE):
        if motion_scale < 0:
            raise ConfigError(f"--motion-scale must not be negative, got {motion_scale}")
        scenario = replace(scenario, ego_speed_px_s=scenario.ego_speed_px_s * motion_scale,
                           ego_rot_deg_s=scenario.ego_rot_deg_s * motion_scale,
                           object_speed_px_s=scenario.object_speed_px_s * motion_scale)
        self.scenario = scenario
        self.width, self.height = width, height
        rng = np.random.default_rng(seed)
        h0, w0 = visible.shape
        scale = max((width + 2 * MIN_MARGIN_PX) / w0, (height + 2 * MIN_MARGIN_PX) / h0)
        cw, ch = int(np.ceil(w0 * scale)), int(np.ceil(h0 * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        vis = np.clip(cv2.resize(visible, (cw, ch), interpolation=interp), VISIBLE_FLOOR, 1.0)
        unit = np.clip(cv2.resize(ir, (cw, ch), interpolation=interp), 0.0, 1.0)
        t_low = float(rng.uniform(-5.0, 15.0))
        temp = t_low + float(rng.uniform(15.0, 35.0)) * unit
        self._motion(rng)
        self._fit_motion(cw, ch)
        illum = illumination(rng, scenario, ch, cw, ch // 3)
        self.canvas = np.stack([vis, temp, illum], axis=-1).astype(np.float32)
        # the view's top-left corner at zero offset: the canvas centre
        self.canvas_origin = np.array([(cw - width) / 2.0, (ch - height) / 2.0])
        n = int(rng.integers(sprites[0], sprites[1] + 1))
        self.sprites = [self._patch_sprite(rng, vis, temp) for _ in range(n)]

    def _fit_motion(self, cw: int, ch: int) -> None:
        """Shrink the translation amplitude (raising its frequency, same peak speed) so the
        view stays inside the canvas at every instant."""
        half_diag = np.hypot(self.width, self.height) / 2.0
        roll_px = abs(self.rot_amp) * half_diag + 2.0
        room = np.array([(cw - self.width) / 2.0, (ch - self.height) / 2.0]) - roll_px
        room = np.maximum(room, 4.0)
        need = np.abs(self.ego_amp).sum(axis=1)
        factor = np.maximum(need / room, 1.0)[:, None]
        self.ego_amp = self.ego_amp / factor
        self.ego_omega = self.ego_omega * factor

    def _patch_sprite(self, rng: np.random.Generator, vis: np.ndarray,
                      temp: np.ndarray) -> Sprite:
        ch, cw = vis.shape
        h = int(rng.integers(min(40, ch // 4), min(110, ch // 2) + 1))
        w = int(rng.integers(min(30, cw // 4), min(130, cw // 2) + 1))
        y0, x0 = int(rng.integers(0, ch - h + 1)), int(rng.integers(0, cw - w + 1))
        alpha = np.zeros((h, w), np.float32)
        cv2.ellipse(alpha, (w // 2, h // 2), (max(w // 2 - 2, 1), max(h // 2 - 2, 1)), 0, 0,
                    360, 1.0, -1, cv2.LINE_AA)
        alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)  # a soft edge, not a cut-out
        speed = self.scenario.object_speed_px_s
        omega = rng.uniform(1.5, 5.0, size=2)
        amp = speed * rng.dirichlet([1.5, 1.0]) / omega if speed > 0 else np.zeros(2)
        center = np.array([rng.uniform(0.15, 0.85) * self.width,
                           rng.uniform(0.2, 0.85) * self.height])
        return Sprite(alpha, vis[y0:y0 + h, x0:x0 + w].copy(), temp[y0:y0 + h, x0:x0 + w].copy(),
                      center, amp, omega, rng.uniform(0, 2 * np.pi, size=2))
