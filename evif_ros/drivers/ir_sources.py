"""Thermal camera sources: a live camera through OpenCV/V4L2 (Y16), a recording (a bag's
IR topic), or the synthetic rig. Each yields :class:`IrImage` in arrival order."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from evif_ros.errors import InputFileError
from evif_ros.runtime import topics


@dataclass
class IrImage:
    host_ns: int  # arrival stamp (host clock; the synthetic rig uses the event clock)
    image: np.ndarray  # (h, w) uint16 raw counts (or uint8)
    live: bool = False  # stamped on arrival: publish at once


class V4l2IrSource:
    """A UVC thermal camera (e.g. FLIR Boson/Lepton on a PureThermal board) in Y16 mode,
    externally triggered; frames are stamped with the host clock on arrival."""

    def __init__(self, device: str, width: int = 0, height: int = 0, fps: float = 0.0):
        import cv2

        self.cv2 = cv2
        dev = int(device) if device.isdigit() else device
        self.cap = cv2.VideoCapture(dev, cv2.CAP_V4L2)
        if not self.cap.isOpened():
            raise InputFileError(f"{device}: cannot open V4L2 device")
        self.cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc("Y", "1", "6", " "))
        self.cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)  # keep raw 16-bit counts
        if width and height:
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            self.cap.set(cv2.CAP_PROP_FPS, fps)
        self.device = device

    def __iter__(self) -> Iterator[IrImage]:
        while True:
            ok, frame = self.cap.read()
            host = time.time_ns()
            if not ok or frame is None:
                raise InputFileError(f"{self.device}: frame grab failed (camera unplugged?)")
            yield IrImage(host, as_counts(frame, self.device), live=True)


def as_counts(frame: np.ndarray, source: str) -> np.ndarray:
    """Y16 frames come back as uint16 (h, w), or as raw bytes (h, 2w) uint8 / (1, 2hw)."""
    if frame.dtype == np.uint16 and frame.ndim == 2:
        return frame
    if frame.dtype == np.uint8 and frame.ndim == 2 and frame.shape[1] % 2 == 0:
        return np.ascontiguousarray(frame).view("<u2")
    raise InputFileError(f"{source}: unexpected frame format {frame.dtype} {frame.shape} "
                         "(is the camera in Y16 mode?)")


class BagIrSource:
    """IR frames of a recorded rosbag2 (mcap or sqlite3), in recording order."""

    def __init__(self, path: Path, topic: str = topics.IR_IMAGE):
        self.path, self.topic = Path(path), topic
        if not self.path.exists():
            raise InputFileError(f"{self.path}: no such bag")

    def __iter__(self) -> Iterator[IrImage]:
        from evif_ros.ros.bags import open_bag
        from evif_ros.runtime.msgs import image_from_msg, stamp_to_ns

        with open_bag(self.path) as reader:
            conns = [c for c in reader.connections if c.topic == self.topic]
            if not conns:
                raise InputFileError(f"{self.path}: no topic {self.topic}")
            for conn, _, raw in reader.messages(connections=conns):
                msg = reader.deserialize(raw, conn.msgtype)
                yield IrImage(stamp_to_ns(msg.header.stamp),
                              image_from_msg(msg, f"{self.path}:{self.topic}",
                                             allowed=("mono16", "mono8")))
