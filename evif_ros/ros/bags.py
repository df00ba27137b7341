"""Offline rosbag2 access through rosbags (mcap and sqlite3), including the bags of
libcaer_driver (``event_camera_msgs/msg/EventPacket``)."""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from evif_ros.errors import InputFileError, LayoutError
from evif_ros.runtime.msgs import EVENT_PACKET, events_from_any, stamp_to_ns  # noqa: F401 - re-exported

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


MCAP_MAGIC = b"\x89MCAP0\r\n"


def _mcap_complete(path: Path) -> bool:
    """An mcap file ends with its magic once its writer closed it."""
    try:
        with open(path, "rb") as f:
            if f.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
                return True  # not a truncated mcap: let the reader say what it is
            f.seek(-len(MCAP_MAGIC), 2)
            return f.read() == MCAP_MAGIC
    except OSError:
        return True


def cut_short(path: Path) -> Path | None:
    """The mcap file of a bag whose writer never closed it (SIGKILL, power loss, a copy
    that stopped half-way: no ``metadata.yaml`` or no end magic), else None."""
    if path.is_file() and path.suffix == ".mcap":
        return None if _mcap_complete(path) else path
    if path.is_dir():
        files = sorted(path.glob("*.mcap"))
        if len(files) == 1 and (not (path / "metadata.yaml").exists()
                                or not _mcap_complete(files[0])):
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


class BagReader:
    """An opened bag: its connections, messages and deserialisation, with every error of
    the storage layer turned into one naming the bag (a corrupt sqlite3 page, a bad
    record) instead of a library traceback."""

    def __init__(self, reader, path: Path):
        self._reader, self.path = reader, path
        self.connections = reader.connections

    def messages(self, connections=None) -> Iterator[tuple]:
        it = iter(self._reader.messages(connections=connections or self.connections))
        n = 0
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - storage libraries raise many types
                raise InputFileError(f"{self.path}: unreadable after {n} messages "
                                     f"({type(exc).__name__}: {exc})") from exc
            n += 1
            yield item

    def deserialize(self, raw, msgtype: str):
        try:
            return self._reader.deserialize(raw, msgtype)
        except Exception as exc:  # noqa: BLE001 - a corrupt message, whatever it raises
            raise LayoutError(f"{self.path}: a {msgtype} message does not deserialize "
                              f"({type(exc).__name__}: {exc})") from exc


def bag_path(path: Path) -> Path:
    """The bag a path names: a directory, or ``NAME.mcap`` beside ``NAME/`` as `evif
    simulate` writes them; InputFileError when there is none."""
    path = Path(path)
    if path.is_file() and path.suffix == ".mcap" and (path.parent / path.stem).is_dir():
        path = path.parent / path.stem  # rig.mcap written by `evif simulate`
    if not path.exists():
        raise InputFileError(f"{path}: no such bag")
    return path


def recover_once(path: Path, into: Path) -> Path:
    """``path`` itself, or for a bag that was never closed (see :func:`cut_short`) a copy
    of what it holds up to its last complete chunk, written under ``into`` (a warning says
    so); InputFileError when not one message survives."""
    path = bag_path(path)
    if (mcap_file := cut_short(path)) is None:
        return path
    n = recover_mcap(mcap_file, Path(into) / "bag")
    if n == 0:
        raise InputFileError(f"{path}: never closed and no complete chunk: nothing to read")
    logging.getLogger("evif_ros").warning(
        "%s: never closed (recording cut short); read %d messages up to the last complete "
        "chunk", path, n)
    return Path(into) / "bag"


@contextmanager
def open_bag(path: Path, shown: Path | None = None) -> Iterator[BagReader]:
    """A reader over a bag directory or a single ``.mcap`` file. A bag that was never
    closed is read as far as it got (:func:`recover_once`, in a temporary directory).
    Errors name the bag (``shown``, when ``path`` is a recovered copy of it)."""
    from rosbags.highlevel import AnyReader

    path = bag_path(path)
    shown = shown or path
    with tempfile.TemporaryDirectory(prefix="evif_recovered_") as tmp:
        path = recover_once(path, Path(tmp))
        try:
            reader = AnyReader([path], default_typestore=typestore())
            reader.open()
        except Exception as exc:  # noqa: BLE001 - rosbags, sqlite, yaml, codecs all raise
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputFileError(f"{shown}: not a readable rosbag2 ({reason})") from exc
        try:
            yield BagReader(reader, shown)
        finally:
            reader.close()


def header_ns(msg) -> int:
    return stamp_to_ns(msg.header.stamp)
