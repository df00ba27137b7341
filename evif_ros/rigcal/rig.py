"""A whole rig calibration from a recording: both lenses, the thermal camera's pose, its
clock offset (checked against the trigger pairing), and the calibration file's content."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evif_ros.errors import ConfigError
from evif_ros.rigcal.extrinsics import BoardPath, ThermalPose, coarse_delay, thermal_pose
from evif_ros.rigcal.intrinsics import (
    LensFit,
    Views,
    calibrate_lens,
    check_views,
    coverage,
    find_views,
)
from evif_ros.rigcal.recording import CalibrationRecording
from evif_ros.runtime.calibration import Calibration
from evif_ros.runtime.camera_model import RigGeometry
from evif_ros.runtime.target import Checkerboard


@dataclass
class TriggerCheck:
    """Thermal frames paired with the recorded trigger pulses through the estimated offset."""

    paired: int  # frames with exactly one trigger within a third of the period
    frames: int
    offset_ns: float  # the offset the pairs imply (mean latency assumed)
    residual_std_ns: float  # spread of trigger - predicted exposure start (latency jitter)


@dataclass
class RigCalibration:
    davis_views: Views
    ir_views: Views
    davis: LensFit
    ir: LensFit
    pose: ThermalPose
    time_offset_ns: int
    triggers: TriggerCheck | None
    calibration: Calibration
    coverage: dict[str, dict[str, float]]

    @property
    def geometry(self) -> RigGeometry:
        assert self.calibration.geometry is not None
        return self.calibration.geometry


def offset_from_delay(delay_ns: float, exposure_ns: int, latency_ns: tuple[int, int]) -> int:
    """``time_offset_ns`` (event clock = host stamp + offset) from the delay of a frame's
    view (event-clock mid-exposure = host stamp + delay): a frame arrives its exposure's
    second half plus the USB latency after its view."""
    return int(round(delay_ns + exposure_ns / 2 + (latency_ns[0] + latency_ns[1]) / 2))


def check_triggers(triggers: list[int], host_ns: np.ndarray, offset_ns: int, exposure_ns: int,
                   latency_ns: tuple[int, int]) -> TriggerCheck | None:
    if len(triggers) < 2:
        return None
    trig = np.asarray(triggers, np.int64)
    period = float(np.median(np.diff(trig)))
    lat_mid = (latency_ns[0] + latency_ns[1]) / 2
    predicted = host_ns + offset_ns - exposure_ns - lat_mid  # exposure starts, event clock
    j = np.clip(np.searchsorted(trig, predicted), 1, len(trig) - 1)
    nearest = np.where(np.abs(trig[j] - predicted) < np.abs(trig[j - 1] - predicted),
                       trig[j], trig[j - 1])
    res = nearest - predicted
    ok = np.abs(res) < period / 3
    if not ok.any():
        return TriggerCheck(0, len(host_ns), float("nan"), float("nan"))
    implied = nearest[ok] + exposure_ns + lat_mid - host_ns[ok]
    return TriggerCheck(int(ok.sum()), len(host_ns), float(np.mean(implied)),
                        float(np.std(res[ok])))


def calibrate_rig(rec: CalibrationRecording, board: Checkerboard, exposure_ns: int,
                  latency_ns: tuple[int, int], working_distance_m: float, where: str,
                  max_delay_ns: int = 500_000_000, progress: bool = True) -> RigCalibration:
    """ConfigError (one line naming ``where``) when the views cannot calibrate."""
    if not working_distance_m > 0:
        raise ConfigError(f"working distance must be positive, got {working_distance_m} m")
    davis_views = find_views(rec.aps, board, "APS", progress)
    ir_views = find_views(rec.ir, board, "thermal", progress)
    check_views(davis_views, board, where)
    check_views(ir_views, board, where)
    davis = calibrate_lens(davis_views, board)
    ir = calibrate_lens(ir_views, board)
    davis_path = BoardPath.from_views(davis_views, davis.model, board)
    ir_path = BoardPath.from_views(ir_views, ir.model, board)
    delay0 = coarse_delay(davis_path, ir_path, max_delay_ns)
    pose = thermal_pose(davis_path, ir_views, ir.model, board, delay0)
    offset = offset_from_delay(pose.delay_ns, exposure_ns, latency_ns)
    trig = check_triggers(rec.triggers, np.array([t for t, _ in rec.ir], np.int64), offset,
                          exposure_ns, latency_ns)
    geometry = RigGeometry(davis.model, ir.model, pose.R, pose.t, working_distance_m)
    calib = Calibration(geometry.best_homography(), davis_views.size, ir_views.size,
                        exposure_ns, offset, latency_ns, geometry=geometry)
    return RigCalibration(davis_views, ir_views, davis, ir, pose, offset, trig, calib,
                          {"APS": coverage(davis_views, board),
                           "thermal": coverage(ir_views, board)})
