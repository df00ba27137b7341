"""DAVIS346 sources: a live camera (dv-processing), an AEDAT4 file, or the synthetic rig.

Each source is an iterator of :class:`DavisBatch`; times are int64 ns on the camera clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from evif_ros.errors import InputFileError, dv_reason
from evif_ros.runtime.events import EVENT_DTYPE, empty_events


@dataclass
class ImuReading:
    t_ns: int
    gyro: np.ndarray  # rad/s
    accel: np.ndarray  # m/s^2


@dataclass
class DavisBatch:
    events: np.ndarray = field(default_factory=empty_events)
    triggers: list[int] = field(default_factory=list)
    frames: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (t_ns, mono8)
    imu: list[ImuReading] = field(default_factory=list)

    @property
    def end_ns(self) -> int:
        ends = [int(self.events["t"][-1])] if self.events.size else []
        ends += self.triggers[-1:] + [f[0] for f in self.frames[-1:]]
        ends += [r.t_ns for r in self.imu[-1:]]
        return max(ends) if ends else 0


def events_from_dv(store) -> np.ndarray:
    """dv-processing EventStore -> event array (us -> ns), one vectorized copy."""
    a = store.numpy()
    ev = np.empty(a.shape[0], dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"] = a["x"], a["y"], a["polarity"]
    np.multiply(a["timestamp"], 1000, out=ev["t"])
    return ev


def imu_from_dv(sample) -> ImuReading:
    """dv IMU (accel in g, gyro in deg/s) -> SI units."""
    return ImuReading(int(sample.timestamp) * 1000,
                      np.deg2rad([sample.gyroscopeX, sample.gyroscopeY, sample.gyroscopeZ]),
                      9.81 * np.array([sample.accelerometerX, sample.accelerometerY,
                                       sample.accelerometerZ]))


def frame_mid_ns(frame) -> int:
    """APS frames are stamped at mid-exposure (dv stamps the exposure start, us)."""
    return (int(frame.timestamp) + int(frame.exposure.total_seconds() * 1e6) // 2) * 1000


_TRIGGER_TYPES = ("EXTERNAL_SIGNAL_RISING_EDGE", "EXTERNAL_SIGNAL_PULSE",
                  "EXTERNAL_GENERATOR_RISING_EDGE")


def _is_exposure_trigger(trigger) -> bool:
    return trigger.type.name in _TRIGGER_TYPES


class Pacer:
    """Sleeps so that camera time advances at ``rate`` x wall time (``rate <= 0``: free)."""

    def __init__(self, rate: float):
        self.rate = rate
        self.origin: tuple[int, float] | None = None

    def wait(self, t_ns: int) -> None:
        if self.rate <= 0:
            return
        if self.origin is None:
            self.origin = (t_ns, time.monotonic())
            return
        due = self.origin[1] + (t_ns - self.origin[0]) * 1e-9 / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def reset(self) -> None:
        self.origin = None


class AedatSource:
    """Plays an AEDAT4 recording; frames, IMU and triggers are interleaved by time."""

    def __init__(self, path: Path, rate: float = 1.0, loop: bool = False):
        import dv_processing as dv

        self.path = Path(path)
        if not self.path.is_file():
            raise InputFileError(f"{self.path}: no such AEDAT4 file")
        self.dv = dv
        self.rate, self.loop = rate, loop
        self._open()
        res = self.rec.getEventResolution()
        if res is None:
            raise InputFileError(f"{self.path}: has no event stream")
        self.width, self.height = int(res[0]), int(res[1])

    def _open(self) -> None:
        try:
            self.rec = self.dv.io.MonoCameraRecording(str(self.path))
        except RuntimeError as exc:
            # dv-processing appends a C++ stack trace: its first line says what is wrong
            raise InputFileError(f"{self.path}: not a readable AEDAT4 file "
                                 f"({dv_reason(exc)})") from exc
        # side streams are small: read them up front and merge them in by time
        self.triggers, self.frames, self.imu = [], [], []
        if self.rec.isTriggerStreamAvailable():
            while (batch := self.rec.getNextTriggerBatch()) is not None:
                self.triggers += [int(t.timestamp) * 1000 for t in batch
                                  if _is_exposure_trigger(t)]
        if self.rec.isFrameStreamAvailable():
            while (fr := self.rec.getNextFrame()) is not None:
                self.frames.append((frame_mid_ns(fr), fr.image))
        if self.rec.isImuStreamAvailable():
            while (batch := self.rec.getNextImuBatch()) is not None:
                self.imu += [imu_from_dv(s) for s in batch]

    def __iter__(self) -> Iterator[DavisBatch]:
        pacer = Pacer(self.rate)
        while True:
            ti = fi = ii = 0
            while True:
                store = self.rec.getNextEventBatch()
                if store is None:
                    break
                ev = events_from_dv(store)
                if ev.size == 0:
                    continue
                end = int(ev["t"][-1])
                batch = DavisBatch(ev)
                while ti < len(self.triggers) and self.triggers[ti] <= end:
                    batch.triggers.append(self.triggers[ti])
                    ti += 1
                while fi < len(self.frames) and self.frames[fi][0] <= end:
                    batch.frames.append(self.frames[fi])
                    fi += 1
                while ii < len(self.imu) and self.imu[ii].t_ns <= end:
                    batch.imu.append(self.imu[ii])
                    ii += 1
                pacer.wait(end)
                yield batch
            tail = DavisBatch(triggers=self.triggers[ti:], frames=self.frames[fi:],
                              imu=self.imu[ii:])
            if tail.end_ns:
                yield tail
            if not self.loop:
                return
            self._open()
            pacer.reset()


class LiveDavisSource:
    """A DAVIS over USB through dv-processing."""

    def __init__(self, serial: str = "", detect_triggers: bool = True, aps: bool = True,
                 imu: bool = True, noise_filter: bool = False, noise_filter_us: int = 2000):
        import dv_processing as dv

        self.dv = dv
        try:
            self.cam = dv.io.camera.open(serial) if serial else dv.io.camera.open()
        except RuntimeError as exc:
            who = f"serial {serial}" if serial else "any camera"
            raise InputFileError(f"DAVIS ({who}): cannot open ({exc})") from exc
        self._configure(detect_triggers, aps, imu, noise_filter, noise_filter_us)
        res = self.cam.getEventResolution()
        self.width, self.height = int(res[0]), int(res[1])

    def _configure(self, detect_triggers, aps, imu, noise_filter, noise_filter_us) -> None:
        cam = self.cam
        if hasattr(cam, "setDetectorRunning"):  # DAVIS family
            cam.setDetectorRisingEdges(detect_triggers)
            cam.setDetectorRunning(detect_triggers)
            cam.setFramesRunning(aps)
            cam.setImuRunningAccelerometer(imu)
            cam.setImuRunningGyroscope(imu)
            # on-FPGA background-activity filter, support time in 250 us units (0 = off)
            cam.setBackgroundActivityFilter(max(1, noise_filter_us // 250) if noise_filter
                                            else 0)

    def __iter__(self) -> Iterator[DavisBatch]:
        cam = self.cam
        while cam.isRunning():
            batch = DavisBatch()
            store = cam.getNextEventBatch()
            if store is not None:
                batch.events = events_from_dv(store)
            trig = cam.getNextTriggerBatch() if cam.isTriggerStreamAvailable() else None
            if trig is not None:
                batch.triggers = [int(t.timestamp) * 1000 for t in trig
                                  if _is_exposure_trigger(t)]
            frame = cam.getNextFrame() if cam.isFrameStreamAvailable() else None
            if frame is not None:
                batch.frames.append((frame_mid_ns(frame), frame.image))
            imu = cam.getNextImuBatch() if cam.isImuStreamAvailable() else None
            if imu is not None:
                batch.imu = [imu_from_dv(s) for s in imu]
            if batch.end_ns:
                yield batch
            else:
                time.sleep(0.0005)  # nothing ready yet
