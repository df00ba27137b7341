"""The synthetic rig: one scene seen by a DAVIS346 (events, APS, IMU, trigger input) and a
hardware-triggered thermal camera, streamed as time-ordered records.

All times are int64 ns on the event camera's clock, quantised to its 1 us resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Union

import numpy as np

from evif_ros.errors import InputFileError
from evif_ros.sim.aps import ApsCamera, ApsConfig, tonemap_log
from evif_ros.sim.dvs import DvsConfig, DvsSimulator
from evif_ros.sim.pairs import ImagePairScene, PairLibrary
from evif_ros.sim.scenarios import PAIR_MOTION_SCALE, get_scenario
from evif_ros.sim.scene import Scene
from evif_ros.sim.thermal import SYNTHETIC_IR_TO_DAVIS, ThermalCamera, ThermalConfig

US = 1000


@dataclass(frozen=True)
class RigConfig:
    scenario: str = "day"
    seed: int = 0
    dvs: DvsConfig = field(default_factory=DvsConfig)
    aps: ApsConfig = field(default_factory=ApsConfig)
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    imu_rate_hz: float = 200.0
    render_hz: float = 0.0  # sub-frame rate; 0 = auto (>= 1 kHz, <= 1 px motion per step)
    start_ns: int = 1_000_000_000  # event clock at t = 0 of the scene (ROS time 0 means unset)
    first_trigger_ns: int = 10_000_000  # after start
    missed_pulse_prob: float = 0.0  # trigger not recorded, frame still arrives
    dropped_frame_prob: float = 0.0  # trigger recorded, frame never arrives
    focal_px: float = 243.0  # DAVIS346 with a 4.5 mm lens (18.5 um pixels), for the IMU
    pairs_dir: str = ""  # folder of vi/ + ir/ image pairs: a real scene instead of procedural
    image: str = ""  # the pair's file name; "" = drawn from the seed
    motion_scale: float = PAIR_MOTION_SCALE  # with pairs: speeds are the scenario's times this


@dataclass
class EventChunk:
    events: np.ndarray


@dataclass
class ApsFrame:
    t_ns: int  # exposure start
    exposure_ns: int
    image: np.ndarray  # (260, 346) uint8


@dataclass
class Trigger:
    t_ns: int


@dataclass
class ImuSample:
    t_ns: int
    gyro: np.ndarray  # rad/s (x, y, z)
    accel: np.ndarray  # m/s^2


@dataclass
class IrFrame:
    seq: int
    t_trigger_ns: int  # exposure start (true, even when the pulse was missed)
    exposure_ns: int
    host_ns: int  # arrival stamp
    counts: np.ndarray  # (h, w) uint16, blurry
    sharp_counts: np.ndarray  # (h, w) uint16, ground truth at mid-exposure
    visible: np.ndarray  # (260, 346) uint8, ground-truth visible at mid-exposure


Record = Union[EventChunk, ApsFrame, Trigger, ImuSample, IrFrame]


def render_rate_hz(scene: Scene, requested: float) -> float:
    """Sub-frame rate: the request, or enough that nothing moves more than ~1 px a step."""
    if requested > 0:
        return requested
    s = scene.scenario
    diag = np.hypot(scene.width, scene.height) / 2
    v = s.ego_speed_px_s + s.object_speed_px_s + np.deg2rad(s.ego_rot_deg_s) * diag
    return float(np.clip(v, 1000.0, 5000.0))


class Rig:
    """Streams the rig's records in time order (by the time each becomes available)."""

    def __init__(self, config: RigConfig):
        self.cfg = config
        self.scenario = get_scenario(config.scenario)
        root = np.random.SeedSequence(config.seed)
        s_scene, s_dvs, s_aps, s_ir, s_imu, s_sync = root.spawn(6)
        scene_seed = int(s_scene.generate_state(1)[0])
        if config.pairs_dir:
            library = PairLibrary.open(config.pairs_dir)
            if config.image and config.image not in library.names:
                raise InputFileError(f"{config.pairs_dir}: no pair named {config.image!r} "
                                     "in vi/ and ir/")
            self.image = config.image or library.names[scene_seed % len(library.names)]
            vis, ir = library.load(self.image)
            self.scene: Scene = ImagePairScene(self.scenario, scene_seed, vis, ir,
                                               config.dvs.width, config.dvs.height,
                                               motion_scale=config.motion_scale)
        else:
            self.image = ""
            self.scene = Scene(self.scenario, scene_seed, config.dvs.width, config.dvs.height)
        self.dvs = DvsSimulator(config.dvs, np.random.default_rng(s_dvs))
        if self.scenario.night:
            self.dvs.noise_scale = 3.0  # low light: more leak/shot-noise events
        self.aps = ApsCamera(config.aps, np.random.default_rng(s_aps))
        self.ir = ThermalCamera(config.thermal, np.random.default_rng(s_ir),
                                (config.dvs.width, config.dvs.height))
        self.imu_rng = np.random.default_rng(s_imu)
        self.sync_rng = np.random.default_rng(s_sync)
        self.render_hz = render_rate_hz(self.scene, config.render_hz)

    def scene_time(self, t_ns: int) -> float:
        return (t_ns - self.cfg.start_ns) * 1e-9

    def radiance(self, t_ns: int) -> np.ndarray:
        return self.scene.render(self.scene_time(t_ns))[0]

    def temperature(self, t_s: float) -> np.ndarray:
        """Temperature on the DAVIS grid at rig time ``t_s`` (s; the thermal camera's
        sub-frame times), on the scene's clock like the events and the visible frames."""
        return self.scene.render(t_s - self.cfg.start_ns * 1e-9)[1]

    def run(self, duration_s: float) -> Iterator[Record]:
        cfg = self.cfg
        t_start = cfg.start_ns
        t_end = t_start + int(duration_s * 1e9)
        step_ns = max(US, int(round(1e9 / self.render_hz / US)) * US)
        schedule = self._ir_schedule(t_end)
        next_ir = next(schedule, None)
        pending_ir: list[IrFrame] = []
        aps_period = int(round(1e9 / cfg.aps.rate_hz / US)) * US
        next_aps = t_start
        aps_acc: np.ndarray | None = None
        aps_n = 0
        aps_exp = self.aps.exposure_ns
        aps_t0 = 0
        imu_period = int(round(1e9 / cfg.imu_rate_hz / US)) * US
        next_imu = t_start

        t = t_start
        while t <= t_end:
            rad, _ = self.scene.render(self.scene_time(t))
            ev = self.dvs.step(rad, t)
            if ev.size:
                yield EventChunk(ev)
            # APS: start an exposure on its period, average sub-frames inside it
            if aps_acc is None and t >= next_aps:
                aps_t0, aps_exp = t, self.aps.exposure_ns
                aps_acc, aps_n = np.zeros_like(rad), 0
                next_aps += aps_period
            if aps_acc is not None:
                aps_acc += rad
                aps_n += 1
                if t + step_ns > aps_t0 + aps_exp:
                    mean = aps_acc / aps_n
                    yield ApsFrame(aps_t0, aps_exp, self.aps.expose(mean, aps_exp))
                    self.aps.exposure_ns = self.aps.auto_exposure(mean)
                    aps_acc = None
            while t >= next_imu:
                yield self._imu(next_imu)
                next_imu += imu_period
            # IR: a trigger pulse opens each exposure; the frame arrives later over USB
            while next_ir is not None and t >= next_ir[0]:
                t_trig, recorded, frame = next_ir
                if recorded:
                    yield Trigger(t_trig)
                if frame is not None:
                    pending_ir.append(frame)
                next_ir = next(schedule, None)
            while pending_ir and pending_ir[0].host_ns <= t:
                yield pending_ir.pop(0)
            t += step_ns
        # frames still in flight at the end are delivered (they were exposed in time)
        yield from pending_ir

    def _ir_schedule(self, t_end: int) -> Iterator[tuple[int, bool, IrFrame | None]]:
        """Per trigger: ``(t_trigger, pulse recorded, frame or None if dropped)``.

        Shared by :meth:`run` and :meth:`ir_frames`, so both draw the same random
        decisions and a thermal-only rig matches the full one frame for frame.
        """
        cfg = self.cfg
        t_trig = cfg.start_ns + cfg.first_trigger_ns
        seq = 0
        while t_trig + cfg.thermal.exposure_ns <= t_end:
            recorded = self.sync_rng.random() >= cfg.missed_pulse_prob
            dropped = self.sync_rng.random() < cfg.dropped_frame_prob
            yield t_trig, recorded, None if dropped else self._ir_frame(seq, t_trig)
            seq += 1
            t_trig += cfg.thermal.period_ns // US * US

    def ir_frames(self, duration_s: float) -> Iterator[IrFrame]:
        """The thermal camera alone (no events rendered): frames in arrival order."""
        t_end = self.cfg.start_ns + int(duration_s * 1e9)
        for _, _, frame in self._ir_schedule(t_end):
            if frame is not None:
                yield frame

    def _ir_frame(self, seq: int, t_trig: int) -> IrFrame:
        ir_cfg = self.cfg.thermal
        blurry, sharp = self.ir.capture(self.temperature, t_trig)
        mid = t_trig + ir_cfg.exposure_ns // 2
        lo, hi = ir_cfg.latency_ns
        host = t_trig + ir_cfg.exposure_ns + int(self.sync_rng.integers(lo, hi + 1))
        visible = (tonemap_log(self.radiance(mid), self.cfg.dvs.log_eps) * 255).round()
        return IrFrame(seq, t_trig, ir_cfg.exposure_ns, host,
                       blurry.round().astype(np.uint16), sharp.round().astype(np.uint16),
                       visible.astype(np.uint8))

    def _imu(self, t_ns: int) -> ImuSample:
        vel, roll_rate = self.scene.ego_rates(self.scene_time(t_ns))
        f = self.cfg.focal_px
        # image motion (vx, vy) from small rotations about y (pan) and x (tilt)
        gyro = np.array([vel[1] / f, -vel[0] / f, roll_rate])
        gyro += self.imu_rng.normal(0, 0.003, 3)
        accel = np.array([0.0, -9.81, 0.0]) + self.imu_rng.normal(0, 0.02, 3)
        return ImuSample(t_ns, gyro, accel)


def synthetic_rig_config(p: dict):
    """RigConfig from driver parameters (``scenario``, ``seed``, ``aligned``); the
    misaligned IR camera matches calibration/synthetic_rig.yaml."""
    thermal = (ThermalConfig(width=346, height=260) if p["aligned"] else
               ThermalConfig(ir_to_davis=tuple(map(tuple, SYNTHETIC_IR_TO_DAVIS))))
    return RigConfig(scenario=p["scenario"], seed=p["seed"], thermal=thermal)


def rig_windows(records, feeder) -> list:
    """The exposure windows of a rig run (``Rig.run``), through the node's front end
    (``evif_ros.runtime.feeder.WindowFeeder``), in the order they complete."""
    out = []
    for rec in records:
        if isinstance(rec, EventChunk):
            out += feeder.events(rec.events)
        elif isinstance(rec, Trigger):
            out += feeder.trigger(rec.t_ns)
        elif isinstance(rec, IrFrame):
            out += feeder.frame(rec.counts, rec.host_ns)
    return out
