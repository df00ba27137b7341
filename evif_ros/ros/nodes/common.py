"""Shared node plumbing: parameter declaration, QoS profiles, safe publishing, diagnostics."""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterException,
)
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.signals import SignalHandlerOptions

from evif_ros.errors import ConfigError, EvifError
from evif_ros.ros.nodes.stop import STOP, handle_stop_signals
from evif_ros.runtime import topics
from evif_ros.runtime.msgs import MsgTypes

# Events: a deep queue so bursts survive; best effort by default (sensor data), reliable on
# request (lossless recording, tests, benchmarks).
EVENTS_BEST_EFFORT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                                reliability=ReliabilityPolicy.BEST_EFFORT)
EVENTS_RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                             reliability=ReliabilityPolicy.RELIABLE)
# Triggers are few and each one matters: reliable, and kept for late joiners.
TRIGGERS_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
# The sensor size: one message, kept for late joiners.
SENSOR_INFO_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                             reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
SENSOR_QOS = qos_profile_sensor_data
RELIABLE_SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=20,
                                 reliability=ReliabilityPolicy.RELIABLE)
CLOCK_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                       reliability=ReliabilityPolicy.BEST_EFFORT,
                       durability=DurabilityPolicy.VOLATILE)

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


def events_qos(reliable: bool) -> QoSProfile:
    return EVENTS_RELIABLE if reliable else EVENTS_BEST_EFFORT


def declare(node: Node, name: str, default: Any, description: str, *, read_only: bool = True,
            lo: float | None = None, hi: float | None = None, choices: tuple = (),
            any_type: bool = False) -> Any:
    """Declare a parameter with a descriptor (description, range, read-only) and return
    its value; ``choices`` are checked here since ROS has no enum descriptor.
    ``any_type``: the value may come in another type than the default's (``-p cores:=1``
    arrives as an integer, ``-p cores:=0,1`` as a string)."""
    desc = ParameterDescriptor(name=name, type=_TYPES[type(default)], description=description,
                               read_only=read_only, dynamic_typing=any_type)
    if choices:
        desc.additional_constraints = f"one of: {', '.join(map(str, choices))}"
    if lo is not None and isinstance(default, int) and not isinstance(default, bool):
        desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
    elif lo is not None and isinstance(default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                        to_value=float(hi), step=0.0)]
    try:
        value = node.declare_parameter(name, default, desc).value
    except (ParameterException, InvalidParameterTypeException,
            InvalidParameterValueException) as exc:
        # a value given with --ros-args -p or a params file: one line naming the parameter
        raise ConfigError(f"parameter '{name}': {_param_reason(exc, name)}") from None
    if choices and value not in choices:
        raise EvifError(f"parameter '{name}': {value!r} is not one of {', '.join(choices)}")
    return value


def parse_cores(text: str | int, name: str) -> set[int]:
    """``"1"``, ``"0,2"``, ``"2-3"`` -> a set of this machine's CPU cores; ``""`` -> empty
    (no pinning). Not checked against the process's own affinity: a thread may be pinned
    to a core its process was kept off."""
    cores: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in str(text).split(","))):
            lo, _, hi = part.partition("-")
            cores.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ConfigError(f"parameter '{name}': {text!r} is not a core list like '1' or "
                          "'0,2-3'") from None
    if cores and not hasattr(os, "sched_setaffinity"):
        raise ConfigError(f"parameter '{name}': this platform cannot pin threads to cores")
    n = os.cpu_count() or 1
    if any(c >= n for c in cores):
        raise ConfigError(f"parameter '{name}': core {max(cores)} does not exist (this "
                          f"machine has cores 0-{n - 1})")
    return cores


def _param_reason(exc: Exception, name: str) -> str:
    text = str(exc).splitlines()[0]
    if "Reason: " in text:  # "Invalid parameter value (0) ... Reason: out of range ..."
        text = text.split("Reason: ", 1)[1]
    return text.removesuffix(f": {name}")


class SafePublisher:
    """Publisher that never lets a failed publish kill the node: it counts failures and
    logs the first one of each kind (Fast DDS raises RCLError when a reliable reader
    cannot keep up)."""

    def __init__(self, node: Node, msg_type, topic: str, qos):
        self.node, self.topic = node, topic
        self.pub = node.create_publisher(msg_type, topic, qos)
        self.sent = 0
        self.failed = 0
        self._logged: set[str] = set()

    def publish(self, msg) -> bool:
        try:
            self.pub.publish(msg)
        except Exception as exc:  # noqa: BLE001 - rclpy raises several types here
            self.failed += 1
            kind = type(exc).__name__
            if kind not in self._logged:
                self._logged.add(kind)
                self.node.get_logger().warning(
                    f"{self.topic}: publish failed ({kind}: {str(exc).splitlines()[0]}); "
                    "counting further failures in diagnostics")
            return False
        self.sent += 1
        return True

    def subscribers(self) -> int:
        return self.pub.get_subscription_count()


class Diagnostics:
    """Periodic ``/diagnostics`` status built from a callable returning key/values.

    The timer runs on the steady clock: on sim time it would stop with ``/clock`` when a
    replay ends, which is when the final counts matter most. Its period is every node's
    ``diagnostics_period`` parameter (as diagnostic_updater's ``period``): a tool that paces
    itself by the counts wants them sooner than once a second."""

    def __init__(self, node: Node, name: str, values: Callable[[], dict]):
        self.node, self.name, self.values = node, name, values
        period_s = declare(node, "diagnostics_period", 1.0, "Seconds between /diagnostics "
                           "statuses", lo=0.01, hi=60.0)
        self.pub = node.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.level = DiagnosticStatus.OK
        self.message = "ok"
        node.create_timer(period_s, self.publish, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def set(self, level: bytes, message: str) -> None:
        self.level, self.message = level, message

    def publish(self) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = self.node.get_clock().now().to_msg()
        status = DiagnosticStatus(level=self.level, name=f"{self.node.get_name()}: {self.name}",
                                  message=self.message, hardware_id=self.name)
        status.values = [KeyValue(key=k, value=f"{v:.4g}" if isinstance(v, float) else str(v))
                         for k, v in self.values().items()]
        arr.status = [status]
        try:
            self.pub.publish(arr)
        except Exception:  # noqa: BLE001 - shutting down
            pass


class Rate:
    """Events per second over a sliding second, for diagnostics."""

    def __init__(self):
        self.lock = threading.Lock()
        self.t0, self.n0, self.n = time.monotonic(), 0, 0
        self.value = 0.0

    def add(self, n: int) -> None:
        with self.lock:
            self.n += n
            now = time.monotonic()
            if now - self.t0 >= 1.0:
                self.value = (self.n - self.n0) / (now - self.t0)
                self.t0, self.n0 = now, self.n


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy class; EvifError if not installed."""
    pkg, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError):
        raise EvifError(f"message type {msgtype} is not installed here") from None


def rclpy_msgs() -> MsgTypes:
    """The message builders over rclpy's own message classes (the runtime's builders
    take rosbags' or these: it imports no ROS package itself)."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Quaternion, Vector3
    from sensor_msgs.msg import (
        CameraInfo,
        Image,
        Imu,
        PointCloud2,
        PointField,
        RegionOfInterest,
        TimeReference,
    )
    from std_msgs.msg import Header
    return MsgTypes(Header, Time, PointField, PointCloud2, Image, CameraInfo, TimeReference,
                    Imu, Quaternion, Vector3, RegionOfInterest)


def init_rclpy(args: list[str] | None = None) -> None:
    """``rclpy.init`` without rclpy's signal handlers: :mod:`evif_ros.ros.nodes.stop` owns
    SIGINT/SIGTERM so that threads are joined before the context goes away."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)


def spin_until_stopped(executor: Executor, done: Callable[[], bool] = lambda: False,
                       timeout_s: float = float("inf")) -> None:
    """Spin until Ctrl-C/SIGTERM, ``done()``, ``timeout_s`` (wall seconds) or an external
    shutdown; the 0.1 s slices bound how long a signal waits to be seen."""
    t0 = time.monotonic()
    try:
        while (not STOP.is_set() and rclpy.ok() and not done()
               and time.monotonic() - t0 < timeout_s):
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass


def join_worker(node: Node, thread: threading.Thread, timeout_s: float = 8.0) -> None:
    """Join a node's worker thread before the node is destroyed. A thread that will not
    stop (a device call that never returns) ends the process with exit code 1 rather than
    letting interpreter shutdown tear it down mid-call, which segfaults."""
    if thread is threading.current_thread() or not thread.is_alive():
        return
    thread.join(timeout_s)
    if thread.is_alive():
        print(f"{node.get_name()}: thread '{thread.name}' did not stop within {timeout_s:g} s;"
              " exiting", file=sys.stderr, flush=True)
        os._exit(1)


def close_nodes(nodes: list[Node]) -> None:
    """Stop every node's threads (``stop()``), then destroy the nodes and shut rclpy down."""
    for node in nodes:
        stop = getattr(node, "stop", None)
        if stop is not None:
            stop()
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown()


def run(node_factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """A node's ``main()``: spin until Ctrl-C/SIGTERM, then stop its threads and exit 0;
    configuration errors are one line on stderr and exit code 2."""
    handle_stop_signals()
    init_rclpy(args)
    nodes: list[Node] = []
    try:
        if STOP.is_set():  # interrupted while importing
            return 0
        nodes.append(node_factory())
        executor = SingleThreadedExecutor()
        executor.add_node(nodes[0])
        spin_until_stopped(executor)
    except EvifError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        close_nodes(nodes)
    return 0


def calibrated_camera(node, path: str, which: str):
    """The lens model (``davis`` or ``ir``) of the rig calibration at ``path`` for the
    driver's CameraInfo, or None ('' or a calibration without lens models: K stays zero,
    uncalibrated); an unreadable file is logged in one line and treated as none."""
    if not path:
        return None
    from evif_ros.errors import EvifError
    from evif_ros.runtime.calibration import load_calibration

    try:
        geo = load_calibration(path).geometry
    except EvifError as exc:
        node.get_logger().error(f"parameter 'calibration': {exc}; CameraInfo uncalibrated")
        return None
    if geo is None:
        return None
    return geo.davis if which == "davis" else geo.ir
