"""Write a synthetic rig session to a rosbag2 (mcap) and to an AEDAT4 file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evif_ros.errors import InputFileError
from evif_ros.evaluation.metrics import psnr
from evif_ros.paths import output_dir
from evif_ros.runtime import topics
from evif_ros.runtime.events import EVENT_DTYPE
from evif_ros.sim.bagwriter import REORDER_NS, OrderedBag
from evif_ros.sim.rig import ApsFrame, EventChunk, ImuSample, IrFrame, Rig, RigConfig, Trigger


@dataclass
class RecordingStats:
    duration_s: float
    wall_s: float = 0.0
    events: int = 0
    on_events: int = 0
    ir_frames: int = 0
    triggers: int = 0
    aps_frames: int = 0
    aps_underexposed: list[float] = field(default_factory=list)
    ir_psnr_db: list[float] = field(default_factory=list)
    image: str = ""  # the image pair of the scene ("" = procedural)

    @property
    def event_rate_mev_s(self) -> float:
        return self.events / self.duration_s / 1e6

    @property
    def sim_speed(self) -> float:
        """Simulated seconds per wall-clock second."""
        return self.duration_s / self.wall_s if self.wall_s else float("nan")


def ir_intrinsics(width: int, height: int, focal_px: float) -> np.ndarray:
    return np.array([[focal_px, 0, width / 2], [0, focal_px, height / 2], [0, 0, 1.0]])


def psnr_counts(a: np.ndarray, b: np.ndarray, peak: float | None = None) -> float:
    """PSNR (dB) of two count images; the peak is the reference's dynamic range."""
    peak = float(b.max()) - float(b.min()) if peak is None else peak
    return psnr(a, b, peak)


class _Aedat4Sink:
    """dv-processing writer for events, APS frames, IMU and triggers (timestamps in us)."""

    def __init__(self, path: Path, width: int, height: int):
        import dv_processing as dv
        self.dv = dv
        cfg = dv.io.MonoCameraWriter.DAVISConfig("DAVIS346_SYNTH", (width, height))
        self.writer = dv.io.MonoCameraWriter(str(path), cfg)

    def events(self, ev: np.ndarray) -> None:
        store = self.dv.EventStore()
        # dv-processing offers no bulk constructor from numpy; push_back runs in C++
        for t, x, y, p in zip((ev["t"] // 1000).tolist(), ev["x"].tolist(),
                              ev["y"].tolist(), ev["p"].tolist()):
            store.push_back(t, x, y, bool(p))
        self.writer.writeEvents(store)

    def frame(self, rec: ApsFrame) -> None:
        self.writer.writeFrame(self.dv.Frame(rec.t_ns // 1000, rec.exposure_ns // 1000, 0, 0,
                                             rec.image, self.dv.FrameSource.SENSOR))

    def trigger(self, t_ns: int) -> None:
        self.writer.writeTrigger(self.dv.Trigger(
            t_ns // 1000, self.dv.TriggerType.EXTERNAL_SIGNAL_RISING_EDGE))

    def imu(self, rec: ImuSample) -> None:
        g = np.rad2deg(rec.gyro)  # dv IMU: accel in g, gyro in deg/s
        a = rec.accel / 9.81
        self.writer.writeImu(self.dv.IMU(rec.t_ns // 1000, 25.0, a[0], a[1], a[2], g[0], g[1],
                                         g[2], 0.0, 0.0, 0.0))

    def close(self) -> None:
        del self.writer


def simulate_recording(out_dir: Path, duration_s: float, config: RigConfig,
                       packet_ns: int = 5_000_000, progress: bool = True) -> RecordingStats:
    """Run the rig and write ``out_dir/rig.mcap`` and ``out_dir/davis.aedat4``.

    The rosbag2 directory ``out_dir/rig`` (metadata.yaml) links to ``rig.mcap``, so both
    ``ros2 bag info out_dir/rig`` and mcap tools work."""
    out_dir = Path(out_dir)
    output_dir(out_dir)
    stale = out_dir / "davis.aedat4"
    if stale.exists():
        stale.unlink()
    rig = Rig(config)
    th = config.thermal
    k_ir = ir_intrinsics(th.width, th.height, config.focal_px * 346 / th.width)
    stats = RecordingStats(duration_s, image=rig.image)
    aedat = _Aedat4Sink(out_dir / "davis.aedat4", config.dvs.width, config.dvs.height)
    started = time.perf_counter()
    try:
        with OrderedBag(out_dir, "rig") as bag:
            mt, put, drain = bag.mt, bag.put, bag.drain
            put(topics.DAVIS_INFO, mt.camera_info(config.dvs.width, config.dvs.height,
                                                  np.zeros((3, 3)), config.start_ns,
                                                  topics.DAVIS_FRAME), config.start_ns)
            pending: list[np.ndarray] = []
            pending_start = None

            def flush_events() -> None:
                nonlocal pending, pending_start
                if pending:
                    ev = np.concatenate(pending)
                    put(topics.EVENTS, mt.events(ev, topics.DAVIS_FRAME), int(ev["t"][-1]))
                    aedat.events(ev)
                    stats.events += ev.size
                    stats.on_events += int(ev["p"].sum())
                pending, pending_start = [], None

            bar = tqdm(total=round(duration_s * 1000), unit="ms sim", disable=not progress,
                       desc=f"simulate {config.scenario}")
            last_ms = 0
            for rec in rig.run(duration_s):
                now_ns = int(rec.events["t"][-1]) if isinstance(rec, EventChunk) and \
                    rec.events.size else getattr(rec, "t_ns", 0)
                drain(now_ns - REORDER_NS)
                if isinstance(rec, EventChunk):
                    ev = rec.events
                    if pending_start is None:
                        pending_start = int(ev["t"][0])
                    pending.append(ev)
                    if int(ev["t"][-1]) - pending_start >= packet_ns:
                        flush_events()
                    now_ms = (int(ev["t"][-1]) - config.start_ns) // 1_000_000
                    bar.update(max(0, min(now_ms, bar.total) - last_ms))
                    last_ms = max(last_ms, min(now_ms, bar.total))
                    continue
                flush_events()  # keep the bag in time order
                if isinstance(rec, ApsFrame):
                    t_mid = rec.t_ns + rec.exposure_ns // 2
                    put(topics.APS, mt.image(rec.image, "mono8", t_mid, topics.DAVIS_FRAME),
                        rec.t_ns + rec.exposure_ns)
                    aedat.frame(rec)
                    stats.aps_frames += 1
                    stats.aps_underexposed.append(float(np.mean(rec.image < 16)))
                elif isinstance(rec, Trigger):
                    put(topics.TRIGGERS, mt.time_reference(rec.t_ns, topics.DAVIS_FRAME,
                                                           topics.TRIGGER_SOURCE), rec.t_ns)
                    aedat.trigger(rec.t_ns)
                    stats.triggers += 1
                elif isinstance(rec, ImuSample):
                    put(topics.IMU, mt.imu(rec.t_ns, topics.DAVIS_FRAME, rec.gyro, rec.accel),
                        rec.t_ns)
                    aedat.imu(rec)
                elif isinstance(rec, IrFrame):
                    put(topics.IR_IMAGE, mt.image(rec.counts, "mono16", rec.host_ns,
                                                  topics.IR_FRAME), rec.host_ns)
                    put(topics.IR_INFO, mt.camera_info(th.width, th.height, k_ir, rec.host_ns,
                                                       topics.IR_FRAME), rec.host_ns)
                    put(topics.GT_IR, mt.image(rec.sharp_counts, "mono16", rec.t_trigger_ns,
                                               topics.IR_FRAME), rec.host_ns)
                    put(topics.GT_VISIBLE, mt.image(rec.visible, "mono8", rec.t_trigger_ns,
                                                    topics.DAVIS_FRAME), rec.host_ns)
                    stats.ir_frames += 1
                    stats.ir_psnr_db.append(psnr_counts(rec.counts, rec.sharp_counts))
            flush_events()
            bar.update(bar.total - last_ms)
            bar.close()
    finally:
        aedat.close()
    stats.wall_s = time.perf_counter() - started
    return stats


def read_events_aedat4(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """All events of an AEDAT4 file through dv-processing, as an event array (t in ns)."""
    import dv_processing as dv

    if not Path(path).is_file():
        raise InputFileError(f"{path}: no such AEDAT4 file")
    try:
        rec = dv.io.MonoCameraRecording(str(path))
    except RuntimeError as exc:
        raise InputFileError(f"{path}: not a readable AEDAT4 file ({exc})") from exc
    if not rec.isEventStreamAvailable():
        raise InputFileError(f"{path}: has no event stream")
    chunks = []
    while rec.isRunning():
        batch = rec.getNextEventBatch()
        if batch is None:
            break
        a = batch.numpy()
        ev = np.empty(a.shape[0], dtype=EVENT_DTYPE)
        ev["x"], ev["y"], ev["p"] = a["x"], a["y"], a["polarity"]
        ev["t"] = a["timestamp"] * 1000
        chunks.append(ev)
    res = rec.getEventResolution()
    events = np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)
    return events, (int(res[0]), int(res[1]))
