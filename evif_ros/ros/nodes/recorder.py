"""evif_recorder: writes topics to a rosbag2 (mcap) through rosbags, without ros2cli
(``evif record``).

Serialized CDR bytes go straight into the bag (no deserialisation). The DESIGN.md topics
(and any other topic whose type is known) are subscribed at start, before a publisher
exists, twice: reliable (lossless from reliable publishers; large best-effort samples such
as IR frames do get lost on a busy host) and best effort (the only match for best-effort
publishers). A message that arrives on both is written once, by its publisher GID and
sequence number. Queues are 1000 deep for bursts (IMU, event packets). Ctrl-C or SIGTERM,
once or twice, first writes what has already arrived (a recorder that fell behind a burst
still holds it in its queues), then closes the bag completely.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import InvalidHandle
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from evif_ros.errors import InputFileError
from evif_ros.ros.bags import typestore
from evif_ros.ros.nodes.common import close_nodes, init_rclpy, message_class, spin_until_stopped
from evif_ros.ros.nodes.stop import handle_stop_signals
from evif_ros.runtime import topics
from evif_ros.runtime.mcap_crc import checksum_bag

KNOWN_TYPES = {**topics.TYPES, topics.CLOCK: "rosgraph_msgs/msg/Clock"}
# reliable: KEEP_ALL, so a recorder that falls behind a burst slows the reliable writers
# down (DDS flow control) instead of overwriting what it has not written yet; best effort:
# a deep queue (the sender does not wait for anyone)
RECORD_QOS = (QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE),
              QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                         reliability=ReliabilityPolicy.BEST_EFFORT))
SEEN_PER_PUBLISHER = 4096  # sequence numbers remembered per publisher for de-duplication
DRAIN_LIMIT_S = 30.0  # at most this long writing the backlog after a stop signal


class SeenFilter:
    """True the first time a (publisher, sequence number) pair is offered."""

    def __init__(self):
        self.seen: dict[bytes, collections.OrderedDict] = {}

    def first(self, info: dict) -> bool:
        seq = info.get("publication_sequence_number")
        if seq is None:  # an RMW without sequence numbers: cannot tell, keep it
            return True
        recent = self.seen.setdefault(bytes(info["publisher_gid"]["data"]),
                                      collections.OrderedDict())
        if seq in recent:
            return False
        recent[seq] = None
        if len(recent) > SEEN_PER_PUBLISHER:
            recent.popitem(last=False)
        return True


class Recorder(Node):
    """Writes the given topics (default: every DESIGN.md topic seen) to an mcap bag."""

    def __init__(self, out: Path, wanted: list[str]):
        super().__init__("evif_recorder")
        from rosbags.rosbag2 import StoragePlugin, Writer

        out = Path(out)
        if out.exists():
            raise InputFileError(f"{out}: already exists; choose a new --out")
        self.store = typestore()
        self.out = out
        self.writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.lock = threading.Lock()
        self.wanted = set(wanted) if wanted else set(topics.TYPES) | {topics.CLOCK}
        self.conns: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        self.filters: dict[str, SeenFilter] = {}
        # topics of known type are subscribed now, before any publisher is seen, so that
        # nothing sent after the recorder started is missed; others as they appear
        for name in sorted(self.wanted):
            if name in KNOWN_TYPES:
                self._subscribe(name, KNOWN_TYPES[name])
        self.create_timer(0.2, self._discover)
        self._discover()

    def _subscribe(self, name: str, msgtype: str) -> None:
        with self.lock:
            self.conns[name] = self.writer.add_connection(name, msgtype, typestore=self.store)
        self.counts[name] = 0
        self.filters[name] = SeenFilter()
        for qos in RECORD_QOS:
            # one of the pair never matches a given publisher: that is by design, not
            # worth a warning per publisher
            kind = "reliable" if qos.reliability == ReliabilityPolicy.RELIABLE else "best-effort"
            quiet = SubscriptionEventCallbacks(
                incompatible_qos=lambda _event: None,
                matched=lambda status, n=name, k=kind: self._on_matched(n, k, status))
            self.create_subscription(message_class(msgtype), name,
                                     lambda raw, info, n=name: self._on(n, raw, info), qos,
                                     raw=True, event_callbacks=quiet)
        self.get_logger().info(f"recording {name} ({msgtype})")

    def _on_matched(self, name: str, kind: str, status) -> None:
        """Logged because samples a best-effort publisher sends before this side has
        matched it are lost: tools wait for this line before they publish."""
        if status.current_count_change > 0:
            self.get_logger().info(f"{name}: {kind} subscription matched "
                                   f"{status.current_count} publisher(s)")

    def _discover(self) -> None:
        for name, types in self.get_topic_names_and_types():
            if name in self.wanted and name not in self.conns and types:
                self._subscribe(name, types[0])

    def _on(self, topic: str, raw: bytes, info: dict) -> None:
        with self.lock:
            if self.writer is not None and self.filters[topic].first(info):
                self.writer.write(self.conns[topic], self.get_clock().now().nanoseconds, raw)
                self.counts[topic] += 1

    def close(self) -> None:
        with self.lock:
            if self.writer is not None:
                self.writer.close()  # metadata written: the bag is complete
                self.writer = None
                checksum_bag(self.out)

    stop = close  # close_nodes() stops nodes before destroying them


def drain(node: Recorder, limit_s: float = DRAIN_LIMIT_S) -> None:
    """Write what DDS received before the stop: take from every subscription until all are
    empty. Taken directly rather than through executor passes, whose count says nothing
    about the queues: on a starved CPU consecutive passes went to the discovery timer and
    event handlers, and acknowledged messages were lost (seen in `make test` under load)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 <= limit_s:
        took = 0
        for sub in list(node.subscriptions):
            try:
                with sub.handle:
                    got = sub.handle.take_message(sub.msg_type, sub.raw)
            except InvalidHandle:  # destroyed meanwhile
                continue
            if got is not None:
                sub.callback(*got)  # (raw bytes, message info), as the executor calls it
                took += 1
        if not took:
            return
    node.get_logger().warning(f"stopped writing the backlog after {limit_s:g} s")


def record(out: Path, wanted: list[str], duration_s: float = 0.0) -> dict[str, int]:
    """Record until Ctrl-C/SIGTERM (or ``duration_s``); returns message counts per topic."""
    handle_stop_signals()
    init_rclpy()
    node = None
    try:
        node = Recorder(out, wanted)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_until_stopped(executor, timeout_s=duration_s if duration_s > 0 else float("inf"))
        drain(node)
    finally:
        counts = dict(node.counts) if node else {}
        close_nodes([node] if node is not None else [])
    return counts


def main(args=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="evif_recorder", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("topics", nargs="*")
    ns = ap.parse_args(args)
    counts = record(Path(ns.out), ns.topics)
    print(f"wrote {ns.out}: {sum(counts.values())} messages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
