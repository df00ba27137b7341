"""The synchronizer's one front end: messages in, exposure windows out (ROS-free).

Every consumer of the rig's streams — ``evif_node``, ``evif rig``/``demo``, ``evif eval
--bag``, the latency benchmark, the tests — builds its :class:`SyncConfig` from the
calibration (:func:`evif_ros.core.sync.sync_config`, time offset included) and feeds
messages through :class:`WindowFeeder`. Messages are duck-typed: rclpy messages and
rosbags' deserialized ones carry the same fields.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evif_ros import topics
from evif_ros.core.calibration import Calibration
from evif_ros.core.sync import ExposureSynchronizer, ExposureWindow, sync_config
from evif_ros.errors import LayoutError
from evif_ros.msgs import EVENT_PACKET, POINTCLOUD2, events_from_any, image_from_msg, stamp_to_ns

IR_ENCODINGS = ("mono16", "mono8")


class WindowFeeder:
    """Events, triggers and IR frames in, in any interleaving; each call returns the
    exposure windows that became complete. Malformed messages raise
    :class:`~evif_ros.errors.LayoutError` naming the topic (callers count and drop)."""

    def __init__(self, calib: Calibration, sub_windows: int, **overrides: Any):
        self.calib = calib
        self.sync = ExposureSynchronizer(sync_config(calib, sub_windows, **overrides))

    def events(self, events: np.ndarray) -> list[ExposureWindow]:
        return self.sync.add_events(events)

    def trigger(self, t_ns: int) -> list[ExposureWindow]:
        return self.sync.add_trigger(t_ns)

    def frame(self, image: np.ndarray, stamp_ns: int,
              topic: str = topics.IR_IMAGE) -> list[ExposureWindow]:
        if image.shape[1::-1] != self.calib.ir_size:
            raise LayoutError(f"{topic}: {image.shape[1]}x{image.shape[0]} frame, calibration "
                              f"expects {self.calib.ir_size[0]}x{self.calib.ir_size[1]}")
        return self.sync.add_frame(image, stamp_ns)

    def events_msg(self, msg, msgtype: str = POINTCLOUD2, topic: str = topics.EVENTS,
                   max_events: int | None = None) -> np.ndarray:
        """Decode an event message (PointCloud2 or a libcaer EventPacket) without feeding
        it, so that callers can filter the events first."""
        if max_events is not None and msgtype == POINTCLOUD2 \
                and msg.width * msg.height > max_events:
            raise LayoutError(f"{topic}: packet of {msg.width * msg.height} events exceeds "
                              f"max_packet_events={max_events}")
        return events_from_any(msg, msgtype, topic)

    def trigger_msg(self, msg) -> list[ExposureWindow]:
        return self.trigger(stamp_to_ns(msg.header.stamp))

    def frame_msg(self, msg, topic: str = topics.IR_IMAGE) -> list[ExposureWindow]:
        image = image_from_msg(msg, topic, allowed=IR_ENCODINGS)
        return self.frame(image.copy(), stamp_to_ns(msg.header.stamp), topic)

    def message(self, topic: str, msgtype: str, msg) -> list[ExposureWindow]:
        """Feed any message of the rig's topics (others are ignored)."""
        if msgtype in (POINTCLOUD2, EVENT_PACKET):
            return self.events(self.events_msg(msg, msgtype, topic))
        if topic == topics.TRIGGERS:
            return self.trigger_msg(msg)
        if topic == topics.IR_IMAGE:
            return self.frame_msg(msg, topic)
        return []
