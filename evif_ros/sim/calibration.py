"""A calibration recording of the synthetic rig: a heated checkerboard moved by hand in
front of a DAVIS346 and a thermal camera, both with lens distortion, the thermal camera a
few centimetres beside the DAVIS and slightly rotated, its frames stamped by a host clock
that is offset from the event clock. Ground truth of every parameter goes beside the bag.

The rig stays still and the board moves (as when one person holds the target in front of
a fixed rig). Each camera renders the board by intersecting its pixels' rays (through its
lens distortion) with the board plane; edges are antialiased by the pixel's footprint on
the board. APS frames average the renders inside their exposure, thermal frames average 7
(the paper's blur); events come from the DVS simulator at ``render_hz``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from evif_ros.paths import output_dir
from evif_ros.runtime import topics
from evif_ros.runtime.calibration import Calibration
from evif_ros.runtime.camera_model import CameraModel, RigGeometry
from evif_ros.runtime.target import Checkerboard
from evif_ros.sim.aps import ApsCamera, ApsConfig
from evif_ros.sim.bagwriter import REORDER_NS, OrderedBag
from evif_ros.sim.dvs import DvsConfig, DvsSimulator

US = 1000


def _davis_model() -> CameraModel:
    # a DAVIS346 behind a 4 mm lens (18.5 um pixels): wide, strong barrel distortion
    return CameraModel(346, 260, np.array([[252.4, 0, 171.3], [0, 251.8, 133.6], [0, 0, 1]]),
                       np.array([-0.34, 0.14, 0.0009, -0.0007, -0.028]))


def _ir_model() -> CameraModel:
    # a 320x256 microbolometer (12 um pixels) behind a ~4 mm germanium lens
    return CameraModel(320, 256, np.array([[338.6, 0, 158.2], [0, 338.1, 129.7], [0, 0, 1]]),
                       np.array([-0.19, 0.07, -0.0006, 0.0008, 0.0]))


def _ir_pose() -> tuple[np.ndarray, np.ndarray]:
    """(R, t) with X_ir = R X_davis + t: the thermal camera 5.5 cm right of the DAVIS,
    4 mm lower, 1 cm behind, turned by about a degree about each axis."""
    R, _ = cv2.Rodrigues(np.deg2rad(np.array([0.7, -1.3, 0.9])))
    centre = np.array([0.055, 0.004, -0.010])  # IR camera centre in the DAVIS frame
    return R, -R @ centre


@dataclass(frozen=True)
class CalibrationRigConfig:
    duration_s: float = 20.0
    seed: int = 0
    board: Checkerboard = field(default_factory=Checkerboard)
    davis: CameraModel = field(default_factory=_davis_model)
    ir: CameraModel = field(default_factory=_ir_model)
    ir_pose: tuple = field(default_factory=_ir_pose)
    time_offset_ns: int = 17_300_000  # event clock = IR host stamp + offset
    ir_rate_hz: float = 30.0
    ir_exposure_ns: int = 25_000_000
    ir_sub_frames: int = 7
    ir_latency_ns: tuple[int, int] = (6_000_000, 14_000_000)
    aps_rate_hz: float = 30.0
    aps_exposure_ns: int = 8_000_000
    render_hz: float = 1000.0  # events and the APS blur
    events: bool = True
    pose_every_s: float = 1.5  # a new hand-held pose this often
    start_ns: int = 1_000_000_000
    working_distance_m: float = 10.0  # of the ground-truth mapping

    def geometry(self) -> RigGeometry:
        R, t = self.ir_pose
        return RigGeometry(self.davis, self.ir, R, t, self.working_distance_m)


class Trajectory:
    """Board poses in the DAVIS frame: hand-held keyframes (distance 0.55-1.1 m, tilts up
    to 35 deg, rolls up to 20 deg, all over the DAVIS's view), moved between with a smooth start
    and stop, plus a few millimetres and tenths of a degree of hand tremor."""

    def __init__(self, cfg: CalibrationRigConfig, rng: np.random.Generator):
        n = int(np.ceil(cfg.duration_s / cfg.pose_every_s)) + 2
        z = rng.uniform(0.55, 1.1, n)
        # over the DAVIS's whole view, so now and then out of the narrower thermal one
        self.centres = np.column_stack([rng.uniform(-0.32, 0.32, n) * z,
                                        rng.uniform(-0.24, 0.24, n) * z, z])
        self.angles = np.column_stack([rng.uniform(-35, 35, n), rng.uniform(-35, 35, n),
                                       rng.uniform(-20, 20, n)])
        self.every = cfg.pose_every_s
        self.board_centre = cfg.board.centre
        self.tremor = rng.uniform(0, 2 * np.pi, 6), rng.uniform(4.0, 9.0, 6)

    def pose(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(R, t): board point P (board frame) is at R P + t in the DAVIS frame."""
        k = int(t_s // self.every)
        a = (t_s - k * self.every) / self.every
        s = a * a * a * (a * (6 * a - 15) + 10)  # smootherstep: rests at each keyframe
        centre = (1 - s) * self.centres[k] + s * self.centres[k + 1]
        angles = (1 - s) * self.angles[k] + s * self.angles[k + 1]
        phase, freq = self.tremor
        wobble = np.sin(2 * np.pi * freq * t_s + phase)
        centre = centre + 0.002 * wobble[:3]
        angles = angles + 0.3 * wobble[3:]
        R, _ = cv2.Rodrigues(np.deg2rad(angles))
        return R, centre - R @ self.board_centre


class BoardRenderer:
    """One camera's view of the board: fixed rays (the rig does not move)."""

    def __init__(self, cam: CameraModel, board: Checkerboard, values: tuple[float, float],
                 margin: float, background: np.ndarray):
        self.cam, self.board = cam, board
        self.rays = cam.rays(cam.pixel_grid())  # (N, 3), z = 1
        self.ray_len = np.linalg.norm(self.rays, axis=1)
        self.focal = float(np.sqrt(cam.K[0, 0] * cam.K[1, 1]))
        self.dark, self.light = values
        self.margin = margin  # value of the plate around the squares
        self.background = background.ravel()

    def render(self, R: np.ndarray, t: np.ndarray) -> np.ndarray:
        sq, b = self.board.square_m, self.board
        n = R[:, 2]
        den = self.rays @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (n @ t) / den  # depth (ray parameter) of the hit, z = 1 rays
        hit = self.rays * s[:, None] - t
        bx, by = hit @ R[:, 0], hit @ R[:, 1]
        # antialiasing: half the pixel's footprint on the board, metres
        cos = np.abs(den) / self.ray_len
        w = 0.5 * np.abs(s) * self.ray_len / self.focal / np.maximum(cos, 0.2)
        tx = (-1.0) ** np.floor(bx / sq) * np.clip(np.abs(bx - sq * np.round(bx / sq)) / w, 0, 1)
        ty = (-1.0) ** np.floor(by / sq) * np.clip(np.abs(by - sq * np.round(by / sq)) / w, 0, 1)
        squares = 0.5 * (self.dark + self.light) + 0.5 * (self.dark - self.light) * tx * ty
        in_squares = (bx > -sq) & (bx < b.cols * sq) & (by > -sq) & (by < b.rows * sq)
        on_plate = (bx > -1.5 * sq) & (bx < (b.cols + 0.5) * sq) & (by > -1.5 * sq) \
            & (by < (b.rows + 0.5) * sq) & (s > 0)
        out = np.where(on_plate, np.where(in_squares, squares, self.margin), self.background)
        return out.reshape(self.cam.height, self.cam.width).astype(np.float32)


def _smooth_texture(rng: np.random.Generator, h: int, w: int, lo: float, hi: float) -> np.ndarray:
    """A smooth random background (a lab wall and its clutter) between lo and hi."""
    small = rng.random((max(2, h // 24), max(2, w // 24))).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), 6)
    big = (big - big.min()) / max(float(big.max() - big.min()), 1e-6)
    return lo + (hi - lo) * big


@dataclass
class CalibrationStats:
    aps_frames: int = 0
    ir_frames: int = 0  # one trigger pulse each (none missed here)
    events: int = 0
    wall_s: float = 0.0


def ground_truth(cfg: CalibrationRigConfig) -> dict:
    geo = cfg.geometry().to_dict()
    return {
        "davis": geo["davis_camera"], "ir": geo["ir_camera"],
        "ir_from_davis": geo["ir_from_davis"],
        "time_offset_ns": int(cfg.time_offset_ns),
        "ir_latency_ns": [int(v) for v in cfg.ir_latency_ns],
        "ir_exposure_ns": int(cfg.ir_exposure_ns),
        "board": cfg.board.to_dict(),
        "working_distance_m": geo["working_distance_m"],
    }


def ground_truth_calibration(cfg: CalibrationRigConfig) -> Calibration:
    geo = cfg.geometry()
    return Calibration(geo.best_homography(), (cfg.davis.width, cfg.davis.height),
                       (cfg.ir.width, cfg.ir.height), cfg.ir_exposure_ns, cfg.time_offset_ns,
                       cfg.ir_latency_ns, geometry=geo)


def simulate_calibration(out_dir: Path, cfg: CalibrationRigConfig,
                         progress: bool = True) -> CalibrationStats:
    """Write ``out_dir/rig.mcap`` (+ the rosbag2 folder ``out_dir/rig``),
    ``out_dir/ground_truth.yaml`` and ``out_dir/ground_truth_calibration.yaml``."""
    out_dir = Path(out_dir)
    output_dir(out_dir)
    rng = np.random.default_rng(cfg.seed)
    traj = Trajectory(cfg, rng)
    R_ir, t_ir = cfg.ir_pose
    aps_cfg = ApsConfig()
    # a user sets the APS exposure for the room: white squares near 200 DN
    illum = 200.0 / (0.85 * aps_cfg.gain_dn * cfg.aps_exposure_ns * 1e-9)
    vis_bg = _smooth_texture(rng, cfg.davis.height, cfg.davis.width, 0.15, 0.6)
    ir_bg = _smooth_texture(rng, cfg.ir.height, cfg.ir.width, 19.0, 22.5)
    davis_view = BoardRenderer(cfg.davis, cfg.board, (0.05 * illum, 0.85 * illum),
                               0.85 * illum, vis_bg * illum)
    # heated board: dark squares at 36 C, the bare plate at 25 C
    ir_view = BoardRenderer(cfg.ir, cfg.board, (36.0, 25.0), 25.0, ir_bg)
    aps = ApsCamera(aps_cfg, rng)
    dvs = DvsSimulator(DvsConfig(width=cfg.davis.width, height=cfg.davis.height), rng)
    stats = CalibrationStats()
    start = cfg.start_ns
    t_end = start + int(cfg.duration_s * 1e9)
    step_ns = int(round(1e9 / cfg.render_hz / US)) * US
    aps_period = int(round(1e9 / cfg.aps_rate_hz / US)) * US
    ir_period = int(round(1e9 / cfg.ir_rate_hz / US)) * US

    def davis_frame(t_ns: int) -> np.ndarray:
        R, t = traj.pose((t_ns - start) * 1e-9)
        return davis_view.render(R, t)

    def ir_frame(t_trig: int) -> np.ndarray:
        n, exp = cfg.ir_sub_frames, cfg.ir_exposure_ns
        temps = []
        for i in range(n):
            R, t = traj.pose((t_trig + (i + 0.5) * exp / n - start) * 1e-9)
            temp = ir_view.render(R_ir @ R, R_ir @ t + t_ir)
            temps.append(cv2.GaussianBlur(temp, (0, 0), 0.7))  # germanium optics
        blurry = np.mean(temps, 0) + rng.normal(0, 0.05, temps[0].shape).astype(np.float32)
        counts = np.clip(8192 + 50.0 * (blurry - 20.0), 0, 65535)
        return counts.round().astype(np.uint16)

    started = time.perf_counter()
    with OrderedBag(out_dir, "rig") as bag:
        mt = bag.mt
        bag.put(topics.DAVIS_INFO, mt.camera_info(cfg.davis.width, cfg.davis.height,
                                                  np.zeros((3, 3)), start, topics.DAVIS_FRAME),
                start)
        bar = tqdm(total=round(cfg.duration_s * 1000), unit="ms sim", disable=not progress,
                   desc="simulate calibration")
        lo, hi = cfg.ir_latency_ns
        jobs = sorted([(t0, "aps") for t0 in range(start, t_end - cfg.aps_exposure_ns + 1,
                                                     aps_period)]
                      + [(t0, "ir") for t0 in range(start + 10_000_000,
                                                    t_end - cfg.ir_exposure_ns + 1, ir_period)])
        renders = iter(range(start, t_end + 1, step_ns) if cfg.events else ())
        t_ev = next(renders, None)

        def events_until(t_ns: float) -> None:  # the DVS, one render step at a time
            nonlocal t_ev
            while t_ev is not None and t_ev <= t_ns:
                ev = dvs.step(davis_frame(t_ev), t_ev)
                if ev.size:
                    bag.put(topics.EVENTS, mt.events(ev, topics.DAVIS_FRAME), int(ev["t"][-1]))
                    stats.events += ev.size
                bag.drain(t_ev - REORDER_NS)
                t_ev = next(renders, None)

        done_ms = 0
        for t0, kind in jobs:
            events_until(t0)
            if kind == "aps":  # the mean of the renders inside the exposure
                k = max(1, int(round(cfg.aps_exposure_ns / step_ns)))
                sub = [davis_frame(t0 + int((i + 0.5) * cfg.aps_exposure_ns / k))
                       for i in range(k)]
                img = aps.expose(np.mean(sub, 0), cfg.aps_exposure_ns)
                bag.put(topics.APS, mt.image(img, "mono8", t0 + cfg.aps_exposure_ns // 2,
                                             topics.DAVIS_FRAME), t0 + cfg.aps_exposure_ns)
                stats.aps_frames += 1
            else:  # a trigger pulse opens the exposure; the frame arrives later over USB
                bag.put(topics.TRIGGERS, mt.time_reference(t0, topics.DAVIS_FRAME,
                                                           topics.TRIGGER_SOURCE), t0)
                counts = ir_frame(t0)
                arrival = t0 + cfg.ir_exposure_ns + int(rng.integers(lo, hi + 1))
                host = arrival - cfg.time_offset_ns  # the host clock's stamp of that instant
                bag.put(topics.IR_IMAGE, mt.image(counts, "mono16", host, topics.IR_FRAME),
                        arrival)
                stats.ir_frames += 1
            bag.drain(t0 - REORDER_NS)
            now_ms = (t0 - start) // 1_000_000
            bar.update(now_ms - done_ms)
            done_ms = now_ms
        events_until(t_end)
        bar.update(bar.total - done_ms)
        bar.close()
    stats.wall_s = time.perf_counter() - started
    (out_dir / "ground_truth.yaml").write_text(
        "# evif simulate --scenario calibration: the true parameters of this recording\n"
        + yaml.safe_dump(ground_truth(cfg), sort_keys=False))
    ground_truth_calibration(cfg).save(out_dir / "ground_truth_calibration.yaml")
    return stats
