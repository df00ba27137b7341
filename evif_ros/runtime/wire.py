"""The event wire layout of DESIGN.md (PointCloud2 payload), ROS-free.

A packet is ``height 1, width N, little-endian, is_dense, point_step 9`` with fields
``x`` UINT16 @0, ``y`` UINT16 @2, ``t`` UINT32 @4 (ns after ``header.stamp``) and
``p`` UINT8 @8; ``header.stamp`` is the time of the first event. The message <-> numpy
glue for rclpy and rosbags lives in :mod:`evif_ros.runtime.msgs`; this module only checks the
layout and converts buffers.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np

from evif_ros.errors import LayoutError
from evif_ros.runtime.events import EVENT_DTYPE

# sensor_msgs/PointField datatype codes.
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)

WIRE_DTYPE = np.dtype({
    "names": ["x", "y", "t", "p"],
    "formats": ["<u2", "<u2", "<u4", "u1"],
    "offsets": [0, 2, 4, 8],
    "itemsize": 9,
})
POINT_STEP = WIRE_DTYPE.itemsize
# The same 9 bytes as one little-endian word (x | y << 16 | t << 32) plus p: one strided
# field instead of four makes encode/decode about twice as fast.
_WORD_DTYPE = np.dtype([("w", "<u8"), ("p", "u1")])
MAX_PACKET_SPAN_NS = np.iinfo(np.uint32).max


class Field(NamedTuple):
    name: str
    offset: int
    datatype: int
    count: int


WIRE_FIELDS: tuple[Field, ...] = (
    Field("x", 0, UINT16, 1),
    Field("y", 2, UINT16, 1),
    Field("t", 4, UINT32, 1),
    Field("p", 8, UINT8, 1),
)


def encode(events: np.ndarray) -> tuple[int, np.ndarray]:
    """Pack sorted events for the wire.

    Returns ``(stamp_ns, payload)``: ``stamp_ns`` is the first event's time and
    ``payload`` a uint8 view of the packed records (``len == 9 * N``).
    Raises LayoutError if the packet spans more than 2**32 - 1 ns (~4.29 s).
    """
    n = events.shape[0]
    if n == 0:
        return 0, np.empty(0, dtype=np.uint8)
    stamp_ns = int(events["t"][0])
    rel = events["t"] - stamp_ns
    if rel.min() < 0 or rel.max() > MAX_PACKET_SPAN_NS:
        raise LayoutError(
            f"events: field 't' spans {int(rel.max())} ns from the first event; a packet must "
            f"be time-sorted and span at most {MAX_PACKET_SPAN_NS} ns")
    word = rel.astype(np.uint64)
    word <<= np.uint64(32)
    word |= events["y"].astype(np.uint64) << np.uint64(16)
    word |= events["x"]
    packed = np.empty(n, dtype=_WORD_DTYPE)
    packed["w"] = word
    packed["p"] = events["p"]
    return stamp_ns, packed.view(np.uint8)


def check_layout(fields: Iterable, point_step: int, height: int, width: int,
                 is_bigendian: bool, data_len: int, source: str = "PointCloud2") -> None:
    """Reject anything but the DESIGN.md layout with a one-line reason naming the field."""
    got = tuple(Field(f.name, int(f.offset), int(f.datatype), int(f.count)) for f in fields)
    if got != WIRE_FIELDS:
        names = ", ".join(f"{f.name}@{f.offset}:{f.datatype}x{f.count}" for f in got) or "none"
        want = ", ".join(f"{f.name}@{f.offset}:{f.datatype}x{f.count}" for f in WIRE_FIELDS)
        raise LayoutError(f"{source}: fields [{names}] differ from the event layout [{want}]")
    if point_step != POINT_STEP:
        raise LayoutError(f"{source}: point_step {point_step} != {POINT_STEP}")
    if is_bigendian:
        raise LayoutError(f"{source}: is_bigendian is true; events are little-endian")
    if height > 1:
        raise LayoutError(f"{source}: height {height} != 1")
    n = height * width
    if data_len != n * POINT_STEP:
        raise LayoutError(
            f"{source}: data has {data_len} bytes, expected width {width} x point_step "
            f"{POINT_STEP} = {n * POINT_STEP}")


def view(data, source: str = "PointCloud2") -> np.ndarray:
    """Zero-copy view of a payload (bytes, memoryview, array.array or uint8 array)."""
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if buf.size % POINT_STEP:
        raise LayoutError(f"{source}: data length {buf.size} is not a multiple of {POINT_STEP}")
    return buf.view(WIRE_DTYPE) if buf.size else np.empty(0, dtype=WIRE_DTYPE)


def decode(data, stamp_ns: int, source: str = "PointCloud2") -> np.ndarray:
    """Payload -> event array with absolute int64 ns times (one vectorized copy)."""
    packed = view(data, source).view(_WORD_DTYPE)
    word = packed["w"]
    ev = np.empty(packed.shape[0], dtype=EVENT_DTYPE)
    ev["x"] = word & np.uint64(0xFFFF)
    ev["y"] = (word >> np.uint64(16)) & np.uint64(0xFFFF)
    ev["t"] = (word >> np.uint64(32)).astype(np.int64) + np.int64(stamp_ns)
    ev["p"] = packed["p"]
    return ev


# libcaer_driver's event_camera_msgs/EventPacket, encoding "libcaer": 8 bytes per event,
# little-endian uint32 data (bit0 valid, bit1 polarity, bits 2-16 y, bits 17-31 x) then
# int32 timestamp (us); t_ns = time_base + ts * 1000. The timestamp holds the low 31 bits of
# the sensor clock: where it decreases inside a packet the clock has rolled over (every
# 2^31 us, about 36 min) and later events are 2^31 us further on, as event_camera_codecs
# decodes them.
LIBCAER_ROLLOVER_US = 1 << 31
LIBCAER_DTYPE = np.dtype([("data", "<u4"), ("ts", "<i4")])


def decode_libcaer(data, time_base_ns: int, source: str = "EventPacket") -> np.ndarray:
    """libcaer-encoded payload -> event array; invalid (bit 0 clear) events are dropped."""
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if buf.size % LIBCAER_DTYPE.itemsize:
        raise LayoutError(
            f"{source}: libcaer payload of {buf.size} bytes is not a multiple of 8")
    rec = buf.view(LIBCAER_DTYPE)
    ts_us = rec["ts"].astype(np.int64)
    if ts_us.size > 1:  # rollovers counted over every event, valid or not
        wraps = np.concatenate(([0], np.cumsum(ts_us[1:] < ts_us[:-1])))
        ts_us += wraps * LIBCAER_ROLLOVER_US
    word = rec["data"]
    valid = (word & 1).astype(bool)
    word = word[valid]
    ev = np.empty(word.shape[0], dtype=EVENT_DTYPE)
    ev["x"] = word >> 17
    ev["y"] = (word >> 2) & 0x7FFF
    ev["p"] = (word >> 1) & 1
    ev["t"] = ts_us[valid] * 1000 + np.int64(time_base_ns)
    return ev


def encode_libcaer(events: np.ndarray, time_base_ns: int) -> np.ndarray:
    """Inverse of :func:`decode_libcaer` (for tests and conversion tools)."""
    rec = np.empty(events.shape[0], dtype=LIBCAER_DTYPE)
    rec["data"] = (1 | (events["p"].astype(np.uint32) << 1)
                   | (events["y"].astype(np.uint32) << 2)
                   | (events["x"].astype(np.uint32) << 17))
    rec["ts"] = ((events["t"] - time_base_ns) // 1000) % LIBCAER_ROLLOVER_US
    return rec.view(np.uint8)
