"""evif_replay: publishes a rosbag2 with its recorded timing and ``/clock``
(``evif replay``); libcaer_driver ``EventPacket`` topics become ``/davis/events``
PointCloud2 packets.

Serialized bytes are published as they are (no deserialisation) except event packets,
which are decoded and re-packed. ``wait_for`` holds playback until the named nodes have
subscribed (``replay.launch.py`` waits for ``evif_node``).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from evif_ros.errors import EvifError, LayoutError
from evif_ros.ros.bags import EVENT_PACKET, events_from_any, open_bag, recover_once
from evif_ros.ros.nodes.common import (
    CLOCK_QOS,
    SENSOR_INFO_QOS,
    TRIGGERS_QOS,
    close_nodes,
    init_rclpy,
    join_worker,
    message_class,
    rclpy_msgs,
    spin_until_stopped,
)
from evif_ros.ros.nodes.stop import handle_stop_signals
from evif_ros.runtime import topics

NOT_DATA = {topics.CLOCK, "/parameter_events", "/rosout"}
# Reliable writers serve reliable and best-effort readers; deep histories, because a
# reliable KEEP_LAST writer overwrites what a busy reader has not acknowledged yet.
REPLAY_EVENTS_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                               reliability=ReliabilityPolicy.RELIABLE)
ACK_TIMEOUT_S = 10.0  # the longest a finished replay waits for its reliable subscribers
REPLAY_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                        reliability=ReliabilityPolicy.RELIABLE)


def publish_qos(topic: str):
    if topic == topics.TRIGGERS:
        return TRIGGERS_QOS
    if topic == topics.DAVIS_INFO:
        return SENSOR_INFO_QOS  # latched, as davis_driver offers it
    return REPLAY_EVENTS_QOS if topic == topics.EVENTS else REPLAY_QOS


class Replayer(Node):
    """Publishes a bag's topics with their recorded timing and /clock."""

    def __init__(self, bag: Path, rate: float = 1.0, loop: bool = False,
                 convert_events: bool = True, delay_s: float = 1.0,
                 wait_for: tuple[str, ...] = ()):
        super().__init__("evif_replay")
        self.bag, self.rate, self.loop = Path(bag), rate, loop
        # a bag never closed is recovered once, not at every open (and every loop)
        self._recovered = tempfile.TemporaryDirectory(prefix="evif_replay_")
        self.source = recover_once(self.bag, Path(self._recovered.name))
        self.convert_events = convert_events
        self.mt = rclpy_msgs()
        self.pubs: dict[str, object] = {}
        self.clock = self.create_publisher(Clock, topics.CLOCK, CLOCK_QOS)
        self.published = 0
        self.dropped = 0
        self.done = threading.Event()
        self.error: EvifError | None = None
        # publishers up front, then a pause so that subscribers match before the first
        # message (as `ros2 bag play --delay`)
        with open_bag(self.source, self.bag) as reader:
            for conn in reader.connections:
                if conn.msgtype == EVENT_PACKET and convert_events:
                    self._publisher(topics.EVENTS, topics.TYPES[topics.EVENTS])
                else:
                    self._publisher(conn.topic, conn.msgtype)
        self.delay_s = delay_s
        self.wait_for = tuple(wait_for)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="replay", daemon=True)
        self.thread.start()

    def _publisher(self, topic: str, msgtype: str):
        if topic not in self.pubs:
            self.pubs[topic] = self.create_publisher(message_class(msgtype), topic,
                                                     publish_qos(topic))
        return self.pubs[topic]

    def _loop(self) -> None:
        try:
            if not self._wait_for_nodes() or self._stop.wait(self.delay_s):
                return
            while not self._stop.is_set():
                self._play_once()
                if not self.loop:
                    break
        except EvifError as exc:
            self.error = exc  # raised by replay() (the CLI's one-line error)
        finally:
            self.done.set()  # also on an unexpected error: the caller must not wait forever

    def stop(self) -> None:
        self._stop.set()
        join_worker(self, self.thread)
        self._recovered.cleanup()

    def wait_delivered(self, timeout_s: float = ACK_TIMEOUT_S) -> None:
        """Until every reliable subscriber acknowledged everything published: a burst
        deeper than the receiver's transport queue is repaired by DDS retransmissions, which
        stop when the publisher is destroyed."""
        end = time.monotonic() + timeout_s
        for topic, pub in [(topics.CLOCK, self.clock), *self.pubs.items()]:
            left = max(end - time.monotonic(), 0.0)
            if not pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9))):
                self.get_logger().warning(f"{topic}: not every subscriber acknowledged the "
                                          f"last messages within {timeout_s:g} s")

    def _subscribed(self, name: str) -> bool:
        """True once ``name`` subscribes to a data topic (every node subscribes to /clock
        under sim time, and may to /parameter_events, from the start)."""
        try:
            subs = self.get_subscriber_names_and_types_by_node(name, "/")
            return any(topic not in NOT_DATA for topic, _ in subs)
        except Exception:  # noqa: BLE001 - rclpy raises NodeNameNonExistentError until seen
            return False

    def _wait_for_nodes(self) -> bool:
        """Hold playback until every ``wait_for`` node has subscribed; False when stopped."""
        for name in self.wait_for:
            if not self._subscribed(name):
                self.get_logger().info(f"waiting for node '{name}' to subscribe")
            while not self._subscribed(name):
                if self._stop.wait(0.1):
                    return False
        return True

    def _play_once(self) -> None:
        with open_bag(self.source, self.bag) as reader:
            start_wall = time.monotonic()
            t0 = None
            for conn, t_log, raw in reader.messages():
                if t0 is None:
                    t0 = t_log
                due = start_wall + (t_log - t0) * 1e-9 / self.rate
                if self._stop.wait(max(due - time.monotonic(), 0.0)):
                    return
                clock = Clock()
                clock.clock = self.mt.header(t_log, "").stamp
                self.clock.publish(clock)
                if conn.msgtype == EVENT_PACKET and self.convert_events:
                    try:
                        ev = events_from_any(reader.deserialize(raw, conn.msgtype),
                                             conn.msgtype, conn.topic)
                    except LayoutError as exc:
                        self.dropped += 1
                        self.get_logger().warning(str(exc), once=True)
                        continue
                    pub = self._publisher(topics.EVENTS, topics.TYPES[topics.EVENTS])
                    for pkt in _chunks(ev):
                        pub.publish(self.mt.events(pkt, topics.DAVIS_FRAME))
                else:
                    self._publisher(conn.topic, conn.msgtype).publish(bytes(raw))
                self.published += 1


def _chunks(ev, size: int = 10_000):
    return [ev[i:i + size] for i in range(0, ev.size, size)] if ev.size else []


def replay(bag: Path, rate: float = 1.0, loop: bool = False, delay_s: float = 1.0,
           wait_for: list[str] | tuple[str, ...] = ()) -> int:
    """Replay a bag until it ends (or Ctrl-C/SIGTERM); returns messages published."""
    if rate <= 0:
        raise EvifError(f"--rate must be positive, got {rate}")
    handle_stop_signals()
    init_rclpy()
    node = None
    try:
        node = Replayer(bag, rate, loop, delay_s=delay_s, wait_for=tuple(wait_for))
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_until_stopped(executor, node.done.is_set)
        if node.error is not None:
            raise node.error
        if node.done.is_set():
            node.wait_delivered()
        return node.published
    finally:
        close_nodes([node] if node is not None else [])


def main(args=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="evif_replay", description=__doc__.splitlines()[0])
    ap.add_argument("bag")
    ap.add_argument("--rate", type=float, default=1.0)
    ns = ap.parse_args(args)
    print(f"replayed {replay(Path(ns.bag), ns.rate)} messages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
