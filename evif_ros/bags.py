"""Offline rosbag2 access through rosbags (mcap and sqlite3), including the bags of
libcaer_driver (``event_camera_msgs/msg/EventPacket``)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from evif_ros.core import wire
from evif_ros.errors import InputFileError, LayoutError
from evif_ros.msgs import events_from_msg, stamp_to_ns

EVENT_PACKET = "event_camera_msgs/msg/EventPacket"
# upstream: ros-event-camera/event_camera_msgs, msg_ros2/EventPacket.msg. Bags that store
# their message definitions (mcap, newer sqlite3) are read with their own instead.
EVENT_PACKET_DEF = """std_msgs/Header header
uint32 height
uint32 width
uint64 seq
uint64 time_base
string encoding
bool is_bigendian
uint8[] events
"""


def typestore():
    """The Kilted typestore plus event_camera_msgs/EventPacket."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg(EVENT_PACKET_DEF, EVENT_PACKET))
    return store


@contextmanager
def open_bag(path: Path) -> Iterator:
    """A rosbags AnyReader over a bag directory or a single ``.mcap`` file."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import ReaderError

    path = Path(path)
    if path.is_file() and path.suffix == ".mcap" and (path.parent / path.stem).is_dir():
        path = path.parent / path.stem  # rig.mcap written by `evif simulate`
    if not path.exists():
        raise InputFileError(f"{path}: no such bag")
    try:
        with AnyReader([path], default_typestore=typestore()) as reader:
            yield reader
    except (ReaderError, OSError) as exc:
        raise InputFileError(f"{path}: not a readable rosbag2 ({exc})") from exc


def events_from_any(msg, msgtype: str, topic: str) -> np.ndarray:
    """Events of a PointCloud2 (DESIGN layout) or a libcaer-encoded EventPacket."""
    if msgtype == "sensor_msgs/msg/PointCloud2":
        return events_from_msg(msg, topic)
    if msgtype == EVENT_PACKET:
        if msg.encoding != "libcaer":
            raise LayoutError(f"{topic}: EventPacket encoding {msg.encoding!r} is not supported "
                              "(only 'libcaer')")
        if msg.is_bigendian:
            raise LayoutError(f"{topic}: big-endian EventPacket is not supported")
        return wire.decode_libcaer(msg.events, int(msg.time_base), topic)
    raise LayoutError(f"{topic}: {msgtype} does not carry events")


def header_ns(msg) -> int:
    return stamp_to_ns(msg.header.stamp)
