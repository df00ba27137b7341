"""Conversions between ROS messages and numpy: the only place that knows message layouts.

Works with both message flavours used here: rosbags' typestore dataclasses (bags,
offline tools) and rclpy's generated classes (nodes). Builders take the message classes
from a :class:`MsgTypes`; readers only use attribute access, so they accept either.
"""

from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from evif_ros.errors import LayoutError
from evif_ros.runtime import wire

POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
# libcaer_driver's events (ros-event-camera/event_camera_msgs); definition in bags.py
EVENT_PACKET = "event_camera_msgs/msg/EventPacket"
IMAGE_ENCODINGS = {"mono8": (np.uint8, 1), "mono16": (np.uint16, 1), "bgr8": (np.uint8, 3),
                   "rgb8": (np.uint8, 3), "32FC1": (np.float32, 1)}


def split_ns(t_ns: int) -> tuple[int, int]:
    sec, nsec = divmod(int(t_ns), 1_000_000_000)
    return sec, nsec


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass(frozen=True)
class MsgTypes:
    """Message classes of one flavour; ``rosbags`` needs all fields at construction."""

    Header: Any
    Time: Any
    PointField: Any
    PointCloud2: Any
    Image: Any
    CameraInfo: Any
    TimeReference: Any
    Imu: Any
    Quaternion: Any
    Vector3: Any
    RegionOfInterest: Any

    @classmethod
    def from_typestore(cls, typestore) -> "MsgTypes":
        t = typestore.types
        return cls(t["std_msgs/msg/Header"], t["builtin_interfaces/msg/Time"],
                   t["sensor_msgs/msg/PointField"], t["sensor_msgs/msg/PointCloud2"],
                   t["sensor_msgs/msg/Image"], t["sensor_msgs/msg/CameraInfo"],
                   t["sensor_msgs/msg/TimeReference"], t["sensor_msgs/msg/Imu"],
                   t["geometry_msgs/msg/Quaternion"], t["geometry_msgs/msg/Vector3"],
                   t["sensor_msgs/msg/RegionOfInterest"])

    # --- builders -------------------------------------------------------------------
    def header(self, t_ns: int, frame_id: str):
        sec, nsec = split_ns(t_ns)
        return self.Header(stamp=self.Time(sec=sec, nanosec=nsec), frame_id=frame_id)

    def events(self, events: np.ndarray, frame_id: str):
        """PointCloud2 in the DESIGN.md event layout (stamp = first event)."""
        stamp, payload = wire.encode(events)
        fields = [self.PointField(name=f.name, offset=f.offset, datatype=f.datatype,
                                  count=f.count) for f in wire.WIRE_FIELDS]
        n = events.shape[0]
        return self.PointCloud2(header=self.header(stamp, frame_id), height=1, width=n,
                                fields=fields, is_bigendian=False, point_step=wire.POINT_STEP,
                                row_step=wire.POINT_STEP * n, data=self._bytes(payload),
                                is_dense=True)

    def image(self, array: np.ndarray, encoding: str, t_ns: int, frame_id: str):
        dtype, ch = IMAGE_ENCODINGS[encoding]
        arr = np.ascontiguousarray(array, dtype=dtype)
        h, w = arr.shape[:2]
        return self.Image(header=self.header(t_ns, frame_id), height=h, width=w,
                          encoding=encoding, is_bigendian=0,
                          step=w * ch * arr.itemsize,
                          data=self._bytes(arr.reshape(-1).view(np.uint8)))

    def camera_info(self, width: int, height: int, k: np.ndarray, t_ns: int, frame_id: str,
                    d: np.ndarray | None = None):
        """``k`` all zeros: an uncalibrated camera (REP 104); ``d``: plumb_bob
        coefficients (k1, k2, p1, p2, k3), zeros when None."""
        roi = self.RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0,
                                    do_rectify=False)
        p = np.zeros((3, 4))
        p[:, :3] = k
        d = np.zeros(5) if d is None else np.asarray(d, np.float64).ravel()
        return self.CameraInfo(header=self.header(t_ns, frame_id), height=height, width=width,
                               distortion_model="plumb_bob", d=d,
                               k=np.asarray(k, dtype=np.float64).reshape(9),
                               r=np.eye(3).reshape(9), p=p.reshape(12), binning_x=0,
                               binning_y=0, roi=roi)

    def time_reference(self, t_ns: int, frame_id: str, source: str, host_ns: int | None = None):
        sec, nsec = split_ns(t_ns if host_ns is None else host_ns)
        return self.TimeReference(header=self.header(t_ns, frame_id),
                                  time_ref=self.Time(sec=sec, nanosec=nsec), source=source)

    def imu(self, t_ns: int, frame_id: str, gyro, accel):
        cov_unknown = np.zeros(9)
        cov_unknown[0] = -1.0  # no orientation estimate (REP 145)
        return self.Imu(
            header=self.header(t_ns, frame_id),
            orientation=self.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
            orientation_covariance=cov_unknown,
            angular_velocity=self.Vector3(x=float(gyro[0]), y=float(gyro[1]), z=float(gyro[2])),
            angular_velocity_covariance=np.zeros(9),
            linear_acceleration=self.Vector3(x=float(accel[0]), y=float(accel[1]),
                                             z=float(accel[2])),
            linear_acceleration_covariance=np.zeros(9))

    def _bytes(self, payload: np.ndarray):
        # rosbags wants a uint8 ndarray; rclpy stores uint8[] as array('B') and checks
        # anything else element by element, so hand it one (a single memcpy)
        if self.PointCloud2.__module__.startswith("rosbags"):
            return payload
        out = array.array("B")
        out.frombytes(np.ascontiguousarray(payload))
        return out


# --- readers (either flavour) ---------------------------------------------------------
def events_from_msg(msg, topic: str = "PointCloud2", max_events: int | None = None
                    ) -> np.ndarray:
    """PointCloud2 -> event array; LayoutError (naming ``topic``) on any other layout or,
    with ``max_events``, on a packet larger than that (checked before decoding)."""
    if max_events is not None and msg.width * msg.height > max_events:
        raise LayoutError(f"{topic}: packet of {msg.width * msg.height} events exceeds "
                          f"max_packet_events={max_events}")
    wire.check_layout(msg.fields, msg.point_step, msg.height, msg.width, msg.is_bigendian,
                      len(msg.data), source=topic)
    return wire.decode(_buffer(msg.data), stamp_to_ns(msg.header.stamp), source=topic)


def image_from_msg(msg, topic: str = "Image", allowed: tuple[str, ...] | None = None
                   ) -> np.ndarray:
    """Image -> ``(h, w)`` or ``(h, w, c)`` array view; LayoutError on an unknown or
    disallowed encoding, a big-endian payload or a size mismatch."""
    enc = msg.encoding
    if enc not in IMAGE_ENCODINGS or (allowed is not None and enc not in allowed):
        ok = ", ".join(allowed or IMAGE_ENCODINGS)
        raise LayoutError(f"{topic}: encoding {enc!r} is not one of {ok}")
    dtype, ch = IMAGE_ENCODINGS[enc]
    itemsize = np.dtype(dtype).itemsize
    if msg.is_bigendian and itemsize > 1:
        raise LayoutError(f"{topic}: big-endian {enc} is not supported")
    buf = _buffer(msg.data)
    row = msg.width * ch * itemsize
    if msg.step < row or buf.size < msg.step * msg.height:
        raise LayoutError(f"{topic}: data of {buf.size} bytes / step {msg.step} does not hold "
                          f"{msg.height}x{msg.width} {enc}")
    rows = buf[: msg.step * msg.height].reshape(msg.height, msg.step)[:, :row]
    arr = np.ascontiguousarray(rows).view(dtype)
    return arr.reshape(msg.height, msg.width, ch) if ch > 1 else arr


def _buffer(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    return np.frombuffer(data, dtype=np.uint8)


def events_from_any(msg, msgtype: str, topic: str) -> np.ndarray:
    """Events of a PointCloud2 (DESIGN layout) or a libcaer-encoded EventPacket."""
    if msgtype == POINTCLOUD2:
        return events_from_msg(msg, topic)
    if msgtype == EVENT_PACKET:
        if msg.encoding != "libcaer":
            raise LayoutError(f"{topic}: EventPacket encoding {msg.encoding!r} is not supported "
                              "(only 'libcaer')")
        if msg.is_bigendian:
            raise LayoutError(f"{topic}: big-endian EventPacket is not supported")
        return wire.decode_libcaer(msg.events, int(msg.time_base), topic)
    raise LayoutError(f"{topic}: {msgtype} does not carry events")
