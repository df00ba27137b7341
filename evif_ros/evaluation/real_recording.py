"""Real recordings with APS frames, in three layouts:

- an AEDAT4 file as DV writes it (events and frames; dv-processing reads it);
- a folder holding ``events.npz`` (``x``, ``y``, ``t_us``, ``p``, ``width``, ``height``) and
  ``frames.csv`` (``index, aps, exposure_start_us, exposure_end_us``, one row per APS frame,
  ``aps`` a file name relative to the folder), as the eSL-Net ``cups`` example is laid out;
- a rosbag2 (``evif record``, ``evif simulate``, a libcaer_driver bag): the events topic and
  the APS frames, stamped at mid-exposure on the event clock (the exposure's length is not
  in the message: each frame is taken as its middle instant).

Times become int64 ns on the sensor clock.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from evif_ros.errors import InputFileError, dv_reason, reason
from evif_ros.runtime.events import EVENT_DTYPE


@dataclass
class ApsFrame:
    image: np.ndarray  # (H, W) uint8
    start_ns: int
    end_ns: int

    @property
    def mid_ns(self) -> int:
        return (self.start_ns + self.end_ns) // 2


@dataclass
class RealRecording:
    path: Path
    events: np.ndarray  # EVENT_DTYPE, time-sorted
    frames: list[ApsFrame]
    width: int
    height: int


def load_recording(path: Path) -> RealRecording:
    """A recording in either layout; one-line :class:`InputFileError` naming the file and
    field at fault otherwise."""
    path = Path(path)
    if _is_bag(path):
        return _load_bag(path)
    if path.is_dir():
        return _load_folder(path)
    if path.is_file():
        return _load_aedat4(path)
    raise InputFileError(f"{path}: no such recording (an .aedat4 file, a rosbag2 or a folder "
                         "with events.npz and frames.csv)")


def with_aps_offset(rec: RealRecording, offset_ns: int) -> RealRecording:
    """The same recording with every APS exposure moved ``offset_ns`` later on the events'
    clock: where a recording's frame times and its events disagree (a timestamp convention,
    the pixels' latency, events missing before each exposure), the offset at which the
    reconstructions match the frames best shows it."""
    if not offset_ns:
        return rec
    return replace(rec, frames=[replace(f, start_ns=f.start_ns + offset_ns,
                                        end_ns=f.end_ns + offset_ns) for f in rec.frames])


def _sorted(events: np.ndarray) -> np.ndarray:
    if events.size and np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    return events


def _load_folder(root: Path) -> RealRecording:
    ev_path, csv_path = root / "events.npz", root / "frames.csv"
    for p in (ev_path, csv_path):
        if not p.is_file():
            raise InputFileError(f"{root}: no {p.name} (expected events.npz and frames.csv)")
    try:
        z = np.load(ev_path)
        cols = {k: z[k] for k in ("x", "y", "t_us", "p")}
        width, height = int(z["width"]), int(z["height"])
    except KeyError as exc:
        raise InputFileError(f"{ev_path}: missing array {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - numpy/zipfile raise many kinds
        raise InputFileError(f"{ev_path}: unreadable ({reason(exc)})") from exc
    n = cols["x"].shape[0]
    if any(c.shape != (n,) for c in cols.values()):
        raise InputFileError(f"{ev_path}: x, y, t_us and p differ in length")
    if n and (cols["x"].max() >= width or cols["y"].max() >= height):
        raise InputFileError(f"{ev_path}: events outside the {width}x{height} sensor")
    ev = np.empty(n, EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"] = cols["x"], cols["y"], cols["p"] > 0
    ev["t"] = cols["t_us"].astype(np.int64) * 1000
    frames = []
    try:
        with open(csv_path, newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh, skipinitialspace=True)):
                img_path = root / row["aps"].strip()
                img = cv2.imread(str(img_path), cv2.IMREAD_GRAYSCALE)
                if img is None:
                    raise InputFileError(f"{csv_path}: row {i + 1}: {img_path.name} is not a "
                                         "readable image")
                if img.shape != (height, width):
                    raise InputFileError(f"{img_path}: {img.shape[1]}x{img.shape[0]}, the "
                                         f"events' sensor is {width}x{height}")
                frames.append(ApsFrame(img, int(row["exposure_start_us"]) * 1000,
                                       int(row["exposure_end_us"]) * 1000))
    except (KeyError, ValueError, TypeError) as exc:
        raise InputFileError(f"{csv_path}: needs columns aps, exposure_start_us, "
                             f"exposure_end_us ({reason(exc)})") from exc
    if not frames:
        raise InputFileError(f"{csv_path}: no APS frames")
    return RealRecording(root, _sorted(ev), frames, width, height)


def _is_bag(path: Path) -> bool:
    if path.is_dir():
        return (path / "metadata.yaml").is_file() or any(path.glob("*.mcap"))
    return path.suffix == ".mcap"


def _load_bag(path: Path) -> RealRecording:
    from evif_ros.ros.bags import EVENT_PACKET, events_from_any, header_ns, open_bag
    from evif_ros.runtime import topics
    from evif_ros.runtime.msgs import POINTCLOUD2, image_from_msg

    chunks, frames = [], []
    dropped: dict[str, int] = {}
    with open_bag(path) as reader:
        conns = [c for c in reader.connections if c.topic == topics.APS
                 or (c.topic == topics.EVENTS and c.msgtype in (POINTCLOUD2, EVENT_PACKET))]
        for conn, _, raw in reader.messages(conns):
            try:
                msg = reader.deserialize(raw, conn.msgtype)
                if conn.topic == topics.APS:
                    mid = header_ns(msg)
                    img = image_from_msg(msg, conn.topic, ("mono8",)).copy()
                    frames.append(ApsFrame(img, mid, mid))
                else:
                    chunks.append(events_from_any(msg, conn.msgtype, conn.topic))
            except Exception:  # noqa: BLE001 - a damaged message is dropped and counted
                dropped[conn.topic] = dropped.get(conn.topic, 0) + 1
    for topic, n in dropped.items():
        print(f"warning: {path}: dropped {n} malformed message(s) on {topic}", file=sys.stderr)
    if not chunks or not sum(c.size for c in chunks):
        raise InputFileError(f"{path}: no events on {topics.EVENTS}")
    if not frames:
        raise InputFileError(f"{path}: no APS frames on {topics.APS}")
    frames.sort(key=lambda f: f.mid_ns)
    height, width = frames[0].image.shape
    events = np.concatenate(chunks)
    if events["x"].max() >= width or events["y"].max() >= height:
        raise InputFileError(f"{path}: events outside the APS frames' {width}x{height}")
    return RealRecording(path, _sorted(events), frames, width, height)


def _load_aedat4(path: Path) -> RealRecording:
    import dv_processing as dv

    from evif_ros.drivers.davis_sources import events_from_dv

    try:
        rec = dv.io.MonoCameraRecording(str(path))
    except RuntimeError as exc:
        raise InputFileError(f"{path}: not a readable AEDAT4 file ({dv_reason(exc)})") from exc
    res = rec.getEventResolution()
    if res is None:
        raise InputFileError(f"{path}: has no event stream")
    if not rec.isFrameStreamAvailable():
        raise InputFileError(f"{path}: has no APS frame stream to score against")
    width, height = int(res[0]), int(res[1])
    chunks = []
    while (store := rec.getNextEventBatch()) is not None:
        if store.size():
            chunks.append(events_from_dv(store))
    frames = []
    while (fr := rec.getNextFrame()) is not None:
        img = fr.image
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        start = int(fr.timestamp) * 1000
        frames.append(ApsFrame(np.ascontiguousarray(img, np.uint8), start,
                               start + int(fr.exposure.total_seconds() * 1e9)))
    if not chunks:
        raise InputFileError(f"{path}: no events")
    if not frames:
        raise InputFileError(f"{path}: no APS frames")
    return RealRecording(path, _sorted(np.concatenate(chunks)), frames, width, height)
