"""Offline rosbag2 access through rosbags (mcap and sqlite3), including the bags of
libcaer_driver (``event_camera_msgs/msg/EventPacket``)."""

from __future__ import annotations

import logging
import tempfile
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


def cut_short(path: Path) -> Path | None:
    """The mcap file of a rosbag2 directory whose recorder died before closing it (no
    ``metadata.yaml``: SIGKILL, power loss), else None."""
    if path.is_dir() and not (path / "metadata.yaml").exists():
        files = sorted(path.glob("*.mcap"))
        if len(files) == 1:
            return files[0]
    return None


def recover_mcap(src: Path, dest: Path) -> int:
    """Copy every complete record of a truncated mcap file into a new rosbag2 at ``dest``
    (the recorder writes 1 MiB chunks as they fill, so all but the last, open chunk
    survive); returns the number of messages recovered."""
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import TypesysError, get_types_from_msg

    schemas: dict[int, Schema] = {}
    conns: dict[int, object] = {}
    count = 0
    store = typestore()
    with open(src, "rb") as f, Writer(dest, version=9,
                                      storage_plugin=StoragePlugin.MCAP) as writer:
        try:
            for record in StreamReader(f).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel) and record.schema_id in schemas:
                    schema = schemas[record.schema_id]
                    msgdef = schema.data.decode()
                    if schema.encoding == "ros2msg" and msgdef:
                        try:  # the bag's own definition, when it differs from ours
                            store.register(get_types_from_msg(msgdef, schema.name))
                        except TypesysError:
                            pass
                    conns[record.id] = writer.add_connection(record.topic, schema.name,
                                                             typestore=store)
                elif isinstance(record, Message) and record.channel_id in conns:
                    writer.write(conns[record.channel_id], record.log_time, record.data)
                    count += 1
        except Exception:  # noqa: BLE001 - the cut: a truncated record, whatever it raises
            pass
    return count


@contextmanager
def open_bag(path: Path) -> Iterator:
    """A rosbags AnyReader over a bag directory or a single ``.mcap`` file. A bag whose
    recorder was killed (no ``metadata.yaml``) is read as far as it got, through a
    recovered copy in a temporary directory (a warning says so)."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import ReaderError

    path = Path(path)
    if path.is_file() and path.suffix == ".mcap" and (path.parent / path.stem).is_dir():
        path = path.parent / path.stem  # rig.mcap written by `evif simulate`
    if not path.exists():
        raise InputFileError(f"{path}: no such bag")
    shown = path
    with tempfile.TemporaryDirectory(prefix="evif_recovered_") as tmp:
        if (mcap_file := cut_short(path)) is not None:
            n = recover_mcap(mcap_file, Path(tmp) / "bag")
            logging.getLogger("evif_ros").warning(
                "%s: no metadata.yaml (recording cut short); read %d messages up to the "
                "last complete chunk", path, n)
            path = Path(tmp) / "bag"
        try:
            with AnyReader([path], default_typestore=typestore()) as reader:
                yield reader
        except (ReaderError, OSError) as exc:
            raise InputFileError(f"{shown}: not a readable rosbag2 ({exc})") from exc


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
