"""A rosbag2 (mcap) writer for simulated rigs: takes messages a little out of log-time
order (an IR frame arrives after its latency, an APS frame after its exposure) and writes
each once nothing earlier can still come; the finished bag carries chunk CRCs."""

from __future__ import annotations

import heapq
import itertools
import shutil
from pathlib import Path

from evif_ros.errors import InputFileError
from evif_ros.runtime import topics
from evif_ros.runtime.mcap_crc import add_chunk_crcs
from evif_ros.runtime.msgs import MsgTypes

# Records come out of a rig at most this much later than their log time (APS frames after
# their exposure, IR frames after their latency); 100 ms leaves a wide margin.
REORDER_NS = 100_000_000


class OrderedBag:
    """``put(topic, msg, log_ns)`` in roughly increasing time, ``drain(now - REORDER_NS)``
    as time passes; use as a context manager. ``out_dir/<name>.mcap`` is the bag, and the
    rosbag2 directory ``out_dir/<name>`` (metadata.yaml) links to it, so both ``ros2 bag
    info out_dir/<name>`` and mcap tools work."""

    def __init__(self, out_dir: Path, name: str = "rig"):
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self.out_dir, self.name = Path(out_dir), name
        self.bag_dir = self.out_dir / name
        for stale in (self.bag_dir, self.out_dir / f"{name}.mcap"):
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
        self.typestore = get_typestore(Stores.ROS2_KILTED)
        self.mt = MsgTypes.from_typestore(self.typestore)
        self.writer = Writer(self.bag_dir, version=9, storage_plugin=StoragePlugin.MCAP)
        self.heap: list[tuple[int, int, str, bytes]] = []
        self.order = itertools.count()  # ties keep the order of put()
        self.conns: dict = {}

    def __enter__(self) -> "OrderedBag":
        self.writer.open()
        self.conns = {name: self.writer.add_connection(name, msgtype, typestore=self.typestore)
                      for name, msgtype in topics.TYPES.items() if not name.startswith("/evif")}
        return self

    def put(self, topic: str, msg, log_ns: int) -> None:
        data = self.typestore.serialize_cdr(msg, topics.TYPES[topic])
        heapq.heappush(self.heap, (log_ns, next(self.order), topic, data))

    def drain(self, upto_ns: float) -> None:
        while self.heap and self.heap[0][0] <= upto_ns:
            log_ns, _, topic, data = heapq.heappop(self.heap)
            self.writer.write(self.conns[topic], log_ns, data)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.drain(float("inf"))
        self.writer.close()
        if exc_type is not None:
            return
        mcaps = sorted(self.bag_dir.glob("*.mcap"))
        if len(mcaps) != 1:
            raise InputFileError(f"{self.bag_dir}: expected one .mcap file, found {len(mcaps)}")
        add_chunk_crcs(mcaps[0])
        target = self.out_dir / f"{self.name}.mcap"
        mcaps[0].replace(target)
        (self.bag_dir / mcaps[0].name).symlink_to(Path("..") / target.name)
