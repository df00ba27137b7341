"""davis_driver: publishes a DAVIS346 (live, AEDAT4 file or synthetic rig) on ROS 2.

Topics: /davis/events (PointCloud2, DESIGN.md layout), /davis/triggers (TimeReference),
/davis/image_raw (mono8), /davis/imu, /diagnostics, and /clock when ``publish_clock``.
Packets are cut every ``packet_time_us`` of event time and at ``packet_max_events``.
"""

from __future__ import annotations

import threading

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, Imu, PointCloud2, TimeReference

from evif_ros.errors import EvifError
from evif_ros.ros.nodes.common import (
    CLOCK_QOS,
    SENSOR_INFO_QOS,
    SENSOR_QOS,
    TRIGGERS_QOS,
    Diagnostics,
    Rate,
    SafePublisher,
    calibrated_camera,
    declare,
    events_qos,
    join_worker,
    rclpy_msgs,
    run,
)
from evif_ros.runtime import topics
from evif_ros.runtime.cdr import PointCloud2Encoder
from evif_ros.runtime.events import EventPacker

SOURCES = ("synthetic", "aedat4", "live")


class DavisDriver(Node):
    def __init__(self, **kwargs):
        super().__init__("davis_driver", **kwargs)
        p = {}
        p["source"] = declare(self, "source", "synthetic", "Event source", choices=SOURCES)
        p["file"] = declare(self, "file", "", "AEDAT4 file (source aedat4)")
        p["rate"] = declare(self, "rate", 1.0, "Playback speed vs real time; 0 = as fast as "
                            "possible (aedat4, synthetic)", lo=0.0, hi=100.0)
        p["loop"] = declare(self, "loop", False, "Restart the file at its end (aedat4)")
        p["serial"] = declare(self, "serial", "", "Camera serial number; empty = first found")
        p["detect_triggers"] = declare(self, "detect_triggers", True,
                                       "Rising-edge detector on the external input (live)")
        p["aps"] = declare(self, "aps", True, "Publish APS frames")
        p["imu"] = declare(self, "imu", True, "Publish IMU samples")
        p["noise_filter"] = declare(self, "noise_filter", False,
                                    "On-camera background-activity filter (live)")
        p["scenario"] = declare(self, "scenario", "day", "Synthetic rig scenario")
        p["seed"] = declare(self, "seed", 0, "Synthetic rig seed", lo=0, hi=2**31 - 1)
        p["duration"] = declare(self, "duration", 10.0, "Synthetic rig length (s)",
                                lo=0.01, hi=1e6)
        p["aligned"] = declare(self, "aligned", False,
                               "Synthetic IR camera on the DAVIS grid (else the shipped "
                               "calibration's homography)")
        p["packet_time_us"] = declare(self, "packet_time_us", 5000,
                                      "Cut an event packet every this much event time",
                                      lo=50, hi=1_000_000)
        # 10 k events = 90 KB: above ~100 KB per message Fast DDS throughput collapses here
        p["packet_max_events"] = declare(self, "packet_max_events", 10_000,
                                         "Cut an event packet at this many events",
                                         lo=1, hi=10_000_000)
        p["reliable_events"] = declare(self, "reliable_events", False,
                                       "Reliable instead of best-effort events QoS")
        p["frame_id"] = declare(self, "frame_id", topics.DAVIS_FRAME, "Event camera frame id")
        p["calibration"] = declare(self, "calibration", "", "Rig calibration YAML whose lens "
                                   "model goes into /davis/camera_info ('' = uncalibrated)")
        self.encode_events = PointCloud2Encoder(p["frame_id"])
        p["publish_clock"] = declare(self, "publish_clock", False,
                                     "Publish /clock from the camera clock (files, synthetic)")
        p["wait_for_subscribers"] = declare(
            self, "wait_for_subscribers", 0, "Hold playback until this many /davis/events "
            "subscribers (and a /clock one with publish_clock) are matched", lo=0, hi=100)
        self.params = p
        self.mt = rclpy_msgs()
        self.pub_events = SafePublisher(self, PointCloud2, topics.EVENTS,
                                        events_qos(p["reliable_events"]))
        self.pub_trig = SafePublisher(self, TimeReference, topics.TRIGGERS, TRIGGERS_QOS)
        self.pub_aps = SafePublisher(self, Image, topics.APS, SENSOR_QOS)
        self.pub_imu = SafePublisher(self, Imu, topics.IMU, SENSOR_QOS)
        self.pub_info = SafePublisher(self, CameraInfo, topics.DAVIS_INFO, SENSOR_INFO_QOS)
        self.pub_clock = (SafePublisher(self, Clock, topics.CLOCK, CLOCK_QOS)
                          if p["publish_clock"] else None)
        self.rate = Rate()
        self.events_sent = 0
        self.finished = False
        self.diag = Diagnostics(self, "davis", self._diag_values)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="davis_driver", daemon=True)
        self.thread.start()

    def _open_source(self):
        from evif_ros.drivers import davis_sources as ds
        p = self.params
        if p["source"] == "aedat4":
            if not p["file"]:
                raise EvifError("parameter 'file': needed for source aedat4")
            return ds.AedatSource(p["file"], p["rate"], p["loop"])
        if p["source"] == "live":
            return ds.LiveDavisSource(p["serial"], p["detect_triggers"], p["aps"], p["imu"],
                                      p["noise_filter"])
        from evif_ros.drivers.synthetic import SyntheticDavisSource  # the simulator only now
        return SyntheticDavisSource(p, p["duration"], p["rate"])

    def _camera_info(self, width: int, height: int, fid: str):
        cam = calibrated_camera(self, self.params["calibration"], "davis")
        if cam is not None and (cam.width, cam.height) != (width, height):
            self.get_logger().error(f"parameter 'calibration': lens model for {cam.width}x"
                                    f"{cam.height}, the camera is {width}x{height}; "
                                    "CameraInfo uncalibrated")
            cam = None
        if cam is None:
            return self.mt.camera_info(width, height, np.zeros((3, 3)), 0, fid)
        return self.mt.camera_info(width, height, cam.K, 0, fid, cam.dist)

    def _diag_values(self) -> dict:
        pubs = (self.pub_events, self.pub_trig, self.pub_aps, self.pub_imu)
        return {"source": self.params["source"], "events": self.events_sent,
                "packets": self.pub_events.sent, "event_rate_mev_s": self.rate.value / 1e6,
                "triggers": self.pub_trig.sent, "aps_frames": self.pub_aps.sent,
                "imu": self.pub_imu.sent, "publish_failures": sum(x.failed for x in pubs),
                "finished": self.finished}

    def _wait_for_subscribers(self) -> None:
        need = self.params["wait_for_subscribers"]
        if not need:
            return
        self.get_logger().info(f"waiting for {need} subscriber(s) on {topics.EVENTS}")
        while not self._stop.is_set():
            ok = self.pub_events.subscribers() >= need
            if self.pub_clock is not None and self.params["source"] == "synthetic":
                # the synthetic IR driver runs on this /clock; nothing else needs to wait
                # for it (an AEDAT4 replay may have no sim-time node at all)
                ok = ok and self.pub_clock.subscribers() >= 1
            if ok:
                return
            self._stop.wait(0.05)

    def _publish_clock(self, t_ns: int) -> None:
        if self.pub_clock is not None and t_ns:
            msg = Clock()
            msg.clock = self.mt.header(t_ns, "").stamp
            self.pub_clock.publish(msg)

    def _publish_events(self, packets) -> None:
        for pkt in packets:
            # serialized here in one copy: rclpy's field-by-field conversion of a message
            # cost more than everything else of a packet
            if self.pub_events.publish(self.encode_events(pkt)):
                self.events_sent += pkt.size
                self.rate.add(pkt.size)

    def _loop(self) -> None:
        p = self.params
        span = p["packet_time_us"] * 1000
        fid = p["frame_id"]
        self._wait_for_subscribers()
        end_ns = 0
        packer = EventPacker(span, p["packet_max_events"])
        try:
            source = self._open_source()
            # the sensor size travels with the events: consumers check it against theirs
            # (K stays zero without a calibration: uncalibrated, as CameraInfo defines it)
            self.pub_info.publish(self._camera_info(source.width, source.height, fid))
            for batch in source:
                if self._stop.is_set():
                    return
                # events before the triggers of the same batch: a trigger on the wire
                # should not overtake the events that precede it
                self._publish_events(packer.add(batch.events) if not batch.triggers
                                     else packer.add(batch.events) + packer.flush())
                for t in batch.triggers:
                    self.pub_trig.publish(self.mt.time_reference(t, fid, topics.TRIGGER_SOURCE))
                if p["aps"]:
                    for t, img in batch.frames:
                        self.pub_aps.publish(self.mt.image(img, "mono8", t, fid))
                if p["imu"]:
                    for r in batch.imu:
                        self.pub_imu.publish(self.mt.imu(r.t_ns, fid, r.gyro, r.accel))
                end_ns = max(end_ns, batch.end_ns)
                self._publish_clock(batch.end_ns)
        except EvifError as exc:
            self.get_logger().error(str(exc))
            self.diag.set(DiagnosticStatus.ERROR, str(exc))
        self._publish_events(packer.flush())
        self.finished = True
        self.diag.publish()
        self.get_logger().info(f"source ended after {self.events_sent} events")
        # time goes on after a recording ends: keep /clock ahead of the last data so that
        # sim-time nodes release what they hold (repeated: /clock is best effort)
        while self.pub_clock is not None and not self._stop.wait(0.1):
            self._publish_clock(end_ns + 1_000_000_000)

    def stop(self) -> None:
        self._stop.set()
        join_worker(self, self.thread)


def main(args=None) -> int:
    return run(DavisDriver, args)


if __name__ == "__main__":
    raise SystemExit(main())
