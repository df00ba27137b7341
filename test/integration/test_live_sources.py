"""Live sources up to the device call: dv-processing's camera and OpenCV's V4L2 capture are
replaced by fakes (no camera here); everything after them is the real code path."""


import cv2
import dv_processing as dv
import numpy as np
import pytest

from evif_ros.drivers import davis_sources, ir_sources
from evif_ros.errors import InputFileError


class FakeDavis:
    """Stands in for dv.io.camera.DAVIS: records configuration, serves real dv objects."""

    def __init__(self, batches=3):
        self.calls = {}
        self.left = batches
        self.t = 1_000_000  # us

    def __getattr__(self, name):
        if name.startswith("set"):
            return lambda value: self.calls.__setitem__(name, value)
        raise AttributeError(name)

    def getEventResolution(self):
        return (346, 260)

    def isRunning(self):
        self.left -= 1
        return self.left >= 0

    def isTriggerStreamAvailable(self):
        return True

    isFrameStreamAvailable = isImuStreamAvailable = isTriggerStreamAvailable

    def getNextEventBatch(self):
        self.t += 1000
        return dv.data.generate.uniformlyDistributedEvents(self.t, (346, 260), 500, self.left)

    def getNextTriggerBatch(self):
        return [dv.Trigger(self.t, dv.TriggerType.EXTERNAL_SIGNAL_RISING_EDGE),
                dv.Trigger(self.t + 1, dv.TriggerType.APS_FRAME_START)]

    def getNextFrame(self):
        f = dv.Frame(self.t, 2000, 0, 0, np.full((260, 346), 7, np.uint8),
                     dv.FrameSource.SENSOR)
        return f

    def getNextImuBatch(self):
        return [dv.IMU(self.t, 25.0, 0.0, -1.0, 0.0, 90.0, 0.0, 0.0, 0, 0, 0)]


def test_live_davis_configures_camera_and_converts_batches(monkeypatch):
    cam = FakeDavis()
    opened = []
    monkeypatch.setattr(dv.io.camera, "open", lambda *a: opened.append(a) or cam)
    src = davis_sources.LiveDavisSource("DAVIS346_00000123", detect_triggers=True, aps=False,
                                        imu=True, noise_filter=True)
    assert opened == [("DAVIS346_00000123",)]
    assert cam.calls["setDetectorRisingEdges"] is True and cam.calls["setDetectorRunning"]
    assert cam.calls["setFramesRunning"] is False
    assert cam.calls["setBackgroundActivityFilter"] == 8  # 2 ms in 250 us units
    batches = list(src)
    assert len(batches) == 3
    b = batches[0]
    assert b.events.size == 500 and b.events["t"].min() >= 1_001_000_000
    assert b.triggers == [1_001_000_000]  # the APS trigger is not an exposure pulse
    assert b.frames[0][0] == 1_002_000_000  # stamped at mid-exposure (1 ms after start)
    assert b.imu[0].gyro[0] == pytest.approx(np.pi / 2)
    assert b.imu[0].accel[1] == pytest.approx(-9.81)


def test_live_davis_open_failure_is_one_line(monkeypatch):
    def boom(*a):
        raise RuntimeError("no device found")
    monkeypatch.setattr(dv.io.camera, "open", boom)
    with pytest.raises(InputFileError, match=r"serial X1\): cannot open"):
        davis_sources.LiveDavisSource("X1")


class FakeCapture:
    def __init__(self, dev, api, frames):
        self.dev, self.api, self.props = dev, api, {}
        self.frames = list(frames)

    def isOpened(self):
        return self.dev != "/dev/missing"

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)


def test_v4l2_source_asks_for_y16_and_yields_counts(monkeypatch):
    counts = np.arange(256 * 320, dtype=np.uint16).reshape(256, 320)
    raw = counts.view(np.uint8).reshape(256, 640)  # what some backends return for Y16
    made = []
    monkeypatch.setattr(cv2, "VideoCapture",
                        lambda d, a: made.append(FakeCapture(d, a, [counts, raw])) or made[-1])
    src = ir_sources.V4l2IrSource("/dev/video3", 320, 256, 30.0)
    cap = made[0]
    assert cap.api == cv2.CAP_V4L2
    assert cap.props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc("Y", "1", "6", " ")
    assert cap.props[cv2.CAP_PROP_CONVERT_RGB] == 0
    it = iter(src)
    a, b = next(it), next(it)
    assert a.live and a.image.dtype == np.uint16
    np.testing.assert_array_equal(a.image, counts)
    np.testing.assert_array_equal(b.image, counts)
    with pytest.raises(InputFileError, match="frame grab failed"):
        next(it)


def test_v4l2_missing_device(monkeypatch):
    monkeypatch.setattr(cv2, "VideoCapture", lambda d, a: FakeCapture(d, a, []))
    with pytest.raises(InputFileError, match="/dev/missing"):
        ir_sources.V4l2IrSource("/dev/missing")


def test_non_y16_frames_are_rejected():
    with pytest.raises(InputFileError, match="Y16"):
        ir_sources.as_counts(np.zeros((4, 4, 3), np.uint8), "/dev/video0")
