"""The frames a calibration needs from a recording: APS frames (stamp = mid-exposure, event
clock), thermal frames (host stamps), trigger times (event clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evif_ros.errors import InputFileError
from evif_ros.ros.bags import header_ns, open_bag
from evif_ros.runtime import topics
from evif_ros.runtime.msgs import image_from_msg


@dataclass
class CalibrationRecording:
    aps: list[tuple[int, np.ndarray]] = field(default_factory=list)
    ir: list[tuple[int, np.ndarray]] = field(default_factory=list)
    triggers: list[int] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)


def read_recording(bag: Path, aps_topic: str = topics.APS, ir_topic: str = topics.IR_IMAGE,
                   trigger_topic: str = topics.TRIGGERS) -> CalibrationRecording:
    """Frames and triggers of a rosbag2; a malformed message is dropped and counted."""
    rec = CalibrationRecording()
    wanted = {aps_topic, ir_topic, trigger_topic}
    with open_bag(bag) as reader:
        conns = [c for c in reader.connections if c.topic in wanted]
        for conn, _, raw in reader.messages(conns):
            try:
                msg = reader.deserialize(raw, conn.msgtype)
                if conn.topic == trigger_topic:
                    rec.triggers.append(header_ns(msg))
                    continue
                allowed = ("mono8",) if conn.topic == aps_topic else ("mono8", "mono16")
                img = image_from_msg(msg, conn.topic, allowed).copy()
                (rec.aps if conn.topic == aps_topic else rec.ir).append((header_ns(msg), img))
            except Exception:  # noqa: BLE001 - a damaged message is dropped, not fatal
                rec.dropped[conn.topic] = rec.dropped.get(conn.topic, 0) + 1
    for name, frames, topic in (("APS", rec.aps, aps_topic), ("thermal", rec.ir, ir_topic)):
        if not frames:
            raise InputFileError(f"{bag}: no {name} frames on {topic}")
        frames.sort(key=lambda f: f[0])
    rec.triggers.sort()
    return rec
