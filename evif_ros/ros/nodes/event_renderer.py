"""event_renderer: /davis/events -> /evif/events_image (bgr8) at a fixed rate, for RViz.

Each image shows the events received since the previous one (ON blue, OFF red), at the
sensor size of ``/davis/camera_info`` (the ``width``/``height`` parameters until one
arrives). Malformed event messages are dropped, counted and logged once per reason; events
outside the image are counted, not cropped silently.
"""

from __future__ import annotations

import threading

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from evif_ros.errors import LayoutError
from evif_ros.ros.nodes.common import (
    EVENTS_BEST_EFFORT,
    SENSOR_INFO_QOS,
    SENSOR_QOS,
    Diagnostics,
    SafePublisher,
    declare,
    rclpy_msgs,
    run,
)
from evif_ros.runtime import topics
from evif_ros.runtime.events import merge_sorted
from evif_ros.runtime.msgs import events_from_msg
from evif_ros.runtime.render import events_image


class EventRenderer(Node):
    def __init__(self, **kwargs):
        super().__init__("event_renderer", **kwargs)
        rate = declare(self, "rate", 30.0, "Images per second", lo=0.1, hi=1000.0)
        self.width = declare(self, "width", 346, "Sensor width (px) until /davis/camera_info "
                             "says otherwise", lo=1, hi=4096)
        self.height = declare(self, "height", 260, "Sensor height (px) until "
                              "/davis/camera_info says otherwise", lo=1, hi=4096)
        self.out_of_range = 0
        self.mt = rclpy_msgs()
        self.lock = threading.Lock()
        self.pending = []
        self.dropped = 0
        self.received = 0
        self._reasons: set[str] = set()
        self.pub = SafePublisher(self, Image, topics.EVENTS_IMAGE, SENSOR_QOS)
        self.create_subscription(PointCloud2, topics.EVENTS, self._on_events, EVENTS_BEST_EFFORT)
        self.create_subscription(CameraInfo, topics.DAVIS_INFO, self._on_info, SENSOR_INFO_QOS)
        self.create_timer(1.0 / rate, self._render)
        self.diag = Diagnostics(self, "event_renderer", lambda: {
            "received_packets": self.received, "dropped_packets": self.dropped,
            "out_of_range_events": self.out_of_range, "width": self.width,
            "height": self.height, "images": self.pub.sent})

    def _on_info(self, msg: CameraInfo) -> None:
        if msg.width and msg.height:
            self.width, self.height = int(msg.width), int(msg.height)

    def _on_events(self, msg: PointCloud2) -> None:
        try:
            ev = events_from_msg(msg, topics.EVENTS)
        except LayoutError as exc:
            self.dropped += 1
            reason = str(exc).split(":", 1)[-1].strip()[:40]
            if reason not in self._reasons:
                self._reasons.add(reason)
                self.get_logger().warning(f"dropping malformed event message: {exc}")
            return
        self.received += 1
        with self.lock:
            self.pending.append(ev)

    def _render(self) -> None:
        with self.lock:
            chunks, self.pending = self.pending, []
        if not chunks:
            return
        ev = merge_sorted(*chunks)
        inside = (ev["x"] < self.width) & (ev["y"] < self.height)
        if not inside.all():
            self.out_of_range += int(ev.size - inside.sum())
            self.diag.set(DiagnosticStatus.WARN, f"{self.out_of_range} events outside the "
                          f"{self.width}x{self.height} image (set width/height or publish "
                          f"{topics.DAVIS_INFO})")
        img = events_image(ev[inside], self.width, self.height)
        self.pub.publish(self.mt.image(img, "bgr8", int(ev["t"][-1]), topics.DAVIS_FRAME))


def main(args=None) -> int:
    return run(EventRenderer, args)


if __name__ == "__main__":
    raise SystemExit(main())
