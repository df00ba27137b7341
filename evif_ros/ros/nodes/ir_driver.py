"""ir_driver: publishes a thermal camera (V4L2 Y16, a recording, or the synthetic rig) as
/ir/image_raw (mono16 counts) + /ir/camera_info on sensor-data QoS.

Recorded and synthetic frames are released when the node's clock (``/clock`` with
``use_sim_time``, else wall time from the first frame, scaled by ``rate``) reaches their
stamp, so they stay in step with the event stream.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from evif_ros.errors import EvifError
from evif_ros.ros.nodes.common import (
    RELIABLE_SENSOR_QOS,
    SENSOR_QOS,
    Diagnostics,
    SafePublisher,
    calibrated_camera,
    declare,
    join_worker,
    rclpy_msgs,
    run,
)
from evif_ros.runtime import topics

SOURCES = ("synthetic", "recording", "v4l2")


class IrDriver(Node):
    def __init__(self, **kwargs):
        super().__init__("ir_driver", **kwargs)
        p = {}
        p["source"] = declare(self, "source", "synthetic", "Thermal source", choices=SOURCES)
        p["device"] = declare(self, "device", "/dev/video0", "V4L2 device path or index")
        p["width"] = declare(self, "width", 0, "V4L2 frame width (0 = camera default)",
                             lo=0, hi=8192)
        p["height"] = declare(self, "height", 0, "V4L2 frame height (0 = camera default)",
                              lo=0, hi=8192)
        p["fps"] = declare(self, "fps", 0.0, "V4L2 frame rate (0 = camera default)",
                           lo=0.0, hi=1000.0)
        p["file"] = declare(self, "file", "", "Bag with recorded IR frames (source recording)")
        p["topic"] = declare(self, "topic", topics.IR_IMAGE, "IR topic inside the bag")
        p["rate"] = declare(self, "rate", 1.0, "Replay speed when not on sim time",
                            lo=0.01, hi=100.0)
        p["scenario"] = declare(self, "scenario", "day", "Synthetic rig scenario")
        p["seed"] = declare(self, "seed", 0, "Synthetic rig seed", lo=0, hi=2**31 - 1)
        p["duration"] = declare(self, "duration", 10.0, "Synthetic rig length (s)",
                                lo=0.01, hi=1e6)
        p["aligned"] = declare(self, "aligned", False, "Synthetic IR camera on the DAVIS grid")
        p["focal_px"] = declare(self, "focal_px", 260.0, "Focal length for CameraInfo (px)",
                                lo=1.0, hi=1e5)
        p["frame_id"] = declare(self, "frame_id", topics.IR_FRAME, "Thermal camera frame id")
        p["calibration"] = declare(self, "calibration", "", "Rig calibration YAML whose "
                                   "thermal lens model goes into /ir/camera_info ('' = the "
                                   "focal_px guess)")
        p["reliable"] = declare(self, "reliable", False,
                                "Reliable QoS instead of sensor data (lossless recording, "
                                "tests); subscribers may use either")
        p["wait_for_subscribers"] = declare(
            self, "wait_for_subscribers", 0,
            "Hold frames until this many /ir/image_raw subscribers are matched", lo=0, hi=100)
        self.params = p
        self.mt = rclpy_msgs()
        qos = RELIABLE_SENSOR_QOS if p["reliable"] else SENSOR_QOS
        self.pub_img = SafePublisher(self, Image, topics.IR_IMAGE, qos)
        self.pub_info = SafePublisher(self, CameraInfo, topics.IR_INFO, qos)
        self.dropped = 0
        self.finished = False
        self.diag = Diagnostics(self, "ir", lambda: {
            "source": p["source"], "frames": self.pub_img.sent, "dropped": self.dropped,
            "publish_failures": self.pub_img.failed + self.pub_info.failed,
            "finished": self.finished})
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="ir_driver", daemon=True)
        self.thread.start()

    def _open_source(self):
        from evif_ros.drivers import ir_sources as irs
        p = self.params
        if p["source"] == "v4l2":
            return irs.V4l2IrSource(p["device"], p["width"], p["height"], p["fps"])
        if p["source"] == "recording":
            if not p["file"]:
                raise EvifError("parameter 'file': needed for source recording")
            return irs.BagIrSource(p["file"], p["topic"])
        from evif_ros.drivers.synthetic import SyntheticIrSource  # the simulator only now
        return SyntheticIrSource(p, p["duration"])

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _wait_until(self, stamp_ns: int, origin: list) -> bool:
        """Block until the clock reaches ``stamp_ns``; False when stopping."""
        sim = self.get_parameter("use_sim_time").value
        if not sim:
            if not origin:
                origin.append((stamp_ns, time.monotonic()))
            due = origin[0][1] + (stamp_ns - origin[0][0]) * 1e-9 / self.params["rate"]
            while not self._stop.is_set() and time.monotonic() < due:
                time.sleep(min(0.005, due - time.monotonic()))
            return not self._stop.is_set()
        while not self._stop.is_set() and self._now_ns() < stamp_ns:
            time.sleep(0.001)
        return not self._stop.is_set()

    def _loop(self) -> None:
        fid = self.params["frame_id"]
        origin: list = []
        while self.pub_img.subscribers() < self.params["wait_for_subscribers"]:
            if self._stop.wait(0.05):
                return
        lens = calibrated_camera(self, self.params["calibration"], "ir")
        try:
            source = self._open_source()
            for frame in source:
                if not frame.live and not self._wait_until(frame.host_ns, origin):
                    return
                img = frame.image
                enc = "mono16" if img.dtype == np.uint16 else "mono8"
                h, w = img.shape[:2]
                self.pub_img.publish(self.mt.image(img, enc, frame.host_ns, fid))
                if lens is not None and (lens.width, lens.height) == (w, h):
                    info = self.mt.camera_info(w, h, lens.K, frame.host_ns, fid, lens.dist)
                else:
                    f = self.params["focal_px"]
                    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
                    info = self.mt.camera_info(w, h, k, frame.host_ns, fid)
                self.pub_info.publish(info)
        except EvifError as exc:
            self.get_logger().error(str(exc))
            self.diag.set(DiagnosticStatus.ERROR, str(exc))
        self.finished = True
        self.diag.publish()

    def stop(self) -> None:
        self._stop.set()
        join_worker(self, self.thread)


def main(args=None) -> int:
    return run(IrDriver, args)


if __name__ == "__main__":
    raise SystemExit(main())
