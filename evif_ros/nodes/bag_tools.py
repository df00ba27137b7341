"""Record and replay rosbag2 files without ros2cli: ``evif record`` / ``evif replay``.

Both move serialized CDR bytes (no deserialisation on the hot path) through rosbags.
Replay keeps the recorded timing (scaled by ``rate``), publishes ``/clock`` and turns
libcaer_driver ``EventPacket`` topics into ``/davis/events`` PointCloud2 packets.
"""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from evif_ros import topics
from evif_ros.bags import EVENT_PACKET, events_from_any, open_bag, typestore
from evif_ros.errors import EvifError, InputFileError, LayoutError
from evif_ros.nodes.common import (
    CLOCK_QOS,
    EVENTS_BEST_EFFORT,
    RELIABLE_SENSOR_QOS,
    SENSOR_QOS,
    TRIGGERS_QOS,
    close_nodes,
    init_rclpy,
    join_worker,
    rclpy_msgs,
    spin_until_stopped,
)
from evif_ros.nodes.stop import handle_stop_signals


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy class; EvifError if not installed."""
    pkg, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError):
        raise EvifError(f"message type {msgtype} is not installed here") from None


def subscribe_qos(topic: str):
    if topic == topics.TRIGGERS:
        return TRIGGERS_QOS
    return EVENTS_BEST_EFFORT if topic == topics.EVENTS else SENSOR_QOS


def publish_qos(topic: str):
    if topic == topics.TRIGGERS:
        return TRIGGERS_QOS
    return RELIABLE_SENSOR_QOS  # a reliable writer serves reliable and best-effort readers


class Recorder(Node):
    """Writes the given topics (default: every DESIGN.md topic seen) to an mcap bag."""

    def __init__(self, out: Path, wanted: list[str]):
        super().__init__("evif_recorder")
        from rosbags.rosbag2 import StoragePlugin, Writer

        out = Path(out)
        if out.exists():
            raise InputFileError(f"{out}: already exists; choose a new --out")
        self.store = typestore()
        self.writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.lock = threading.Lock()
        self.wanted = set(wanted) if wanted else set(topics.TYPES) | {topics.CLOCK}
        self.conns: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        self.create_timer(0.2, self._discover)
        self._discover()

    def _discover(self) -> None:
        for name, types in self.get_topic_names_and_types():
            if name in self.wanted and name not in self.conns and types:
                msgtype = types[0]
                with self.lock:
                    self.conns[name] = self.writer.add_connection(name, msgtype,
                                                                  typestore=self.store)
                self.counts[name] = 0
                self.create_subscription(message_class(msgtype), name,
                                         lambda raw, n=name: self._on(n, raw),
                                         self._matching_qos(name), raw=True)
                self.get_logger().info(f"recording {name} ({msgtype})")

    def _matching_qos(self, topic: str):
        """Like `ros2 bag record`: reliable when every publisher offers it (lossless),
        else best effort (so best-effort publishers still match)."""
        qos = subscribe_qos(topic)
        pubs = self.get_publishers_info_by_topic(topic)
        if pubs and all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in pubs):
            qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                             reliability=ReliabilityPolicy.RELIABLE,
                             durability=qos.durability)
        return qos

    def _on(self, topic: str, raw: bytes) -> None:
        with self.lock:
            if self.writer is not None:
                self.writer.write(self.conns[topic], self.get_clock().now().nanoseconds, raw)
                self.counts[topic] += 1

    def close(self) -> None:
        with self.lock:
            if self.writer is not None:
                self.writer.close()  # metadata written: the bag is complete
                self.writer = None


class Replayer(Node):
    """Publishes a bag's topics with their recorded timing and /clock."""

    def __init__(self, bag: Path, rate: float = 1.0, loop: bool = False,
                 convert_events: bool = True, delay_s: float = 1.0,
                 wait_for: tuple[str, ...] = ()):
        super().__init__("evif_replay")
        self.bag, self.rate, self.loop = Path(bag), rate, loop
        self.convert_events = convert_events
        self.mt = rclpy_msgs()
        self.pubs: dict[str, object] = {}
        self.clock = self.create_publisher(Clock, topics.CLOCK, CLOCK_QOS)
        self.published = 0
        self.dropped = 0
        self.done = threading.Event()
        # publishers up front, then a pause so that subscribers match before the first
        # message (as `ros2 bag play --delay`)
        with open_bag(self.bag) as reader:
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
            self.get_logger().error(str(exc))
        finally:
            self.done.set()  # also on an unexpected error: the caller must not wait forever

    def stop(self) -> None:
        self._stop.set()
        join_worker(self, self.thread)

    def _subscribed(self, name: str) -> bool:
        try:
            return bool(self.get_subscriber_names_and_types_by_node(name, "/"))
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
        with open_bag(self.bag) as reader:
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
    finally:
        counts = dict(node.counts) if node else {}
        if node is not None:
            node.close()
        close_nodes([node] if node is not None else [])
    return counts


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
        if node.done.is_set():
            time.sleep(0.5)  # let reliable writers deliver the tail
        return node.published
    finally:
        close_nodes([node] if node is not None else [])
