"""The synchronizer's one front end: messages in, exposure windows out (ROS-free).

Every consumer of the rig's streams — ``evif_node``, ``evif rig``/``demo``, ``evif eval
--bag``, the latency benchmark, the tests — builds its :class:`SyncConfig` from the
calibration (:func:`evif_ros.runtime.sync.sync_config`, time offset included) and feeds
messages through :class:`WindowFeeder`, which also takes the event pixels' latency
(``davis_latency_ns``) off every event before the synchronizer sees it. Messages are
duck-typed: rclpy messages and rosbags' deserialized ones carry the same fields.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any

import numpy as np

from evif_ros.errors import LayoutError
from evif_ros.runtime import topics
from evif_ros.runtime.calibration import Calibration
from evif_ros.runtime.events import time_shifted
from evif_ros.runtime.msgs import (
    EVENT_PACKET,
    POINTCLOUD2,
    events_from_any,
    image_from_msg,
    stamp_to_ns,
)
from evif_ros.runtime.sync import ExposureSynchronizer, ExposureWindow, sync_config
from evif_ros.runtime.voxel import WindowVoxelizer

IR_ENCODINGS = ("mono16", "mono8")


class WindowFeeder:
    """Events, triggers and IR frames in, in any interleaving; each call returns the
    exposure windows that became complete. Malformed messages raise
    :class:`~evif_ros.errors.LayoutError` naming the topic (callers count and drop).

    ``prebin=True``: each exposure's voxel grids are filled as its packets arrive (from its
    trigger on), so a window comes out with ``grids`` ready and only the binning of the
    last packet is left when the exposure closes. Up to ``max_grids`` grid buffers
    (25 MB each at K=6) are in use at once: open exposures plus windows not yet released;
    a buffer returns when its window is garbage-collected. A window that got none (the
    buffers all in use, or a clock reset) comes out without grids, as with
    ``prebin=False``."""

    def __init__(self, calib: Calibration, sub_windows: int, prebin: bool = False,
                 max_grids: int = 6, **overrides: Any):
        self.calib = calib
        self.sync = ExposureSynchronizer(sync_config(calib, sub_windows, **overrides))
        self.prebin, self.max_grids = prebin, max_grids
        self._open: dict[int, WindowVoxelizer] = {}  # by exposure start
        self._pool: list[WindowVoxelizer] = []
        self._made = 0
        self._resets = 0
        self.prebinned = 0  # windows emitted with their grids

    def events(self, events: np.ndarray) -> list[ExposureWindow]:
        if self.calib.davis_latency_ns:
            # the pixels report the scene this late (the calibration's davis_latency_ns):
            # from here on events are on the scene's clock, so an exposure's window holds
            # the events its scene made (and closes that much later). A copy: the caller's
            # array may be a message's buffer or kept elsewhere.
            events = time_shifted(events, -self.calib.davis_latency_ns)
        accepted = self.sync.stats.packets
        windows = self.sync.add_events(events)
        if self.prebin and not self._reset_seen() and self.sync.stats.packets != accepted:
            for vox in self._open.values():  # the windows emitted just now included
                vox.add(events)
        return self._finish(windows)

    def trigger(self, t_ns: int) -> list[ExposureWindow]:
        return self._finish(self.sync.add_trigger(t_ns))

    def frame(self, image: np.ndarray, stamp_ns: int,
              topic: str = topics.IR_IMAGE) -> list[ExposureWindow]:
        if image.shape[1::-1] != self.calib.ir_size:
            raise LayoutError(f"{topic}: {image.shape[1]}x{image.shape[0]} frame, calibration "
                              f"expects {self.calib.ir_size[0]}x{self.calib.ir_size[1]}")
        return self._finish(self.sync.add_frame(image, stamp_ns))

    # --- binning as packets arrive ----------------------------------------------------
    def _reset_seen(self) -> bool:
        """The synchronizer reset (a new clock): the open grids belong to the old one."""
        if self.sync.stats.resets == self._resets:
            return False
        self._resets = self.sync.stats.resets
        self._pool += self._open.values()
        self._open.clear()
        return True

    def _finish(self, windows: list[ExposureWindow]) -> list[ExposureWindow]:
        if not self.prebin:
            return windows
        self._reset_seen()
        out = []
        for w in windows:
            vox = self._open.pop(w.t_start_ns, None)
            if vox is None:
                out.append(w)
                continue
            w = dataclasses.replace(w, grids=vox.grids())
            weakref.finalize(w, self._pool.append, vox)  # its buffer is reused after it
            self.prebinned += 1
            out.append(w)
        pending = set(self.sync.pending_triggers())
        for t in [t for t in self._open if t not in pending]:  # orphaned or dropped
            self._pool.append(self._open.pop(t))
        for t in sorted(pending - self._open.keys()):
            vox = self._grid_buffer()
            if vox is None:
                break
            edges, first, end = self.sync.window_span(t)
            vox.begin(t, self.sync.cfg.exposure_ns, edges)
            vox.add(self.sync.buffer.gather(first, end))  # what came before its trigger
            self._open[t] = vox
        return out

    def _grid_buffer(self) -> WindowVoxelizer | None:
        if self._pool:
            return self._pool.pop()
        if self._made >= self.max_grids:
            return None
        self._made += 1
        w, h = self.calib.davis_size
        return WindowVoxelizer(h, w, self.sync.cfg.sub_windows)

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
