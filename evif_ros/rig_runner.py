"""`evif rig` and `evif demo`: the rig graph (evif_ros.graph) in one rclpy executor.

Nodes still talk over DDS (rclpy has no intra-process shortcut); the demo adds a
collector node that records the outputs to an mcap bag and draws comparison pictures.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image, PointCloud2, TimeReference

from evif_ros import topics
from evif_ros.core.calibration import load_calibration, warp_ir_to_davis
from evif_ros.core.render import events_image, normalize, tile
from evif_ros.feeder import WindowFeeder
from evif_ros.graph import load_params, node_class, source_overrides
from evif_ros.msgs import image_from_msg, stamp_to_ns
from evif_ros.nodes.common import (
    EVENTS_RELIABLE,
    SENSOR_QOS,
    TRIGGERS_QOS,
    close_nodes,
    init_rclpy,
    spin_until_stopped,
)
from evif_ros.nodes.stop import handle_stop_signals
from evif_ros.paths import share_file


def overrides_to_parameters(values: dict) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


def build_nodes(config: Path, source: str, extra: dict | None = None, **kw) -> list[Node]:
    names, over = source_overrides(source, **kw)
    params = load_params(config)
    extra = extra or {}
    nodes = []
    for name in names:
        values = {**params.get(name, {}), **over.get(name, {}), **extra.get(name, {})}
        nodes.append(node_class(name)(parameter_overrides=overrides_to_parameters(values)))
    return nodes


class DemoCollector(Node):
    """Records the graph's inputs and outputs and joins them per IR exposure."""

    def __init__(self, bag: Path, calib_path: Path, k: int):
        super().__init__("evif_demo_collector")
        from rosbags.rosbag2 import StoragePlugin, Writer

        from evif_ros.bags import typestore

        self.calib = load_calibration(calib_path)
        self.feeder = WindowFeeder(self.calib, k)
        self.store = typestore()
        self.writer = Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.conns = {}
        self.lock = threading.Lock()
        self.inputs: dict[int, tuple] = {}
        self.outputs: dict[int, dict] = {}
        self.create_subscription(PointCloud2, topics.EVENTS, self._on_events, EVENTS_RELIABLE)
        self.create_subscription(TimeReference, topics.TRIGGERS, self._on_trigger, TRIGGERS_QOS)
        self.create_subscription(Image, topics.IR_IMAGE, self._on_ir, SENSOR_QOS)
        for topic in (topics.FUSED, topics.IR_DEBLURRED, topics.VISIBLE):
            self.create_subscription(Image, topic, lambda m, t=topic: self._on_output(t, m),
                                     SENSOR_QOS)

    def _write(self, topic: str, msg, msgtype: str) -> None:
        with self.lock:
            if self.writer is None:
                return
            if topic not in self.conns:
                self.conns[topic] = self.writer.add_connection(topic, msgtype,
                                                               typestore=self.store)
            self.writer.write(self.conns[topic], self.get_clock().now().nanoseconds,
                              serialize_message(msg))

    def _windows(self, windows) -> None:
        for w in windows:
            self.inputs[w.t_start_ns] = (w.image, w.exposure_events)

    def _on_events(self, msg) -> None:
        self._windows(self.feeder.events(self.feeder.events_msg(msg)))

    def _on_trigger(self, msg) -> None:
        self._windows(self.feeder.trigger_msg(msg))

    def _on_ir(self, msg) -> None:
        self._windows(self.feeder.frame_msg(msg))

    def _on_output(self, topic: str, msg) -> None:
        self._write(topic, msg, "sensor_msgs/msg/Image")
        t = stamp_to_ns(msg.header.stamp)
        self.outputs.setdefault(t, {})[topic] = (image_from_msg(msg).copy(), time.monotonic())

    def close(self) -> None:
        with self.lock:
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    stop = close  # on Ctrl-C the bag is closed (complete) like at the end of a run

    def pictures(self, out_dir: Path, every: int = 5, rows: int = 4) -> list[Path]:
        done = sorted(t for t, o in self.outputs.items() if len(o) == 3 and t in self.inputs)
        paths = []
        w, h = self.calib.davis_size
        for n, start in enumerate(range(0, len(done), every * rows)):
            chosen = done[start:start + every * rows:every]
            grid = []
            for t in chosen:
                ir, ev = self.inputs[t]
                o = self.outputs[t]
                grid.append([normalize(warp_ir_to_davis(ir, self.calib)), events_image(ev, w, h),
                             o[topics.VISIBLE][0], normalize(o[topics.IR_DEBLURRED][0]),
                             o[topics.FUSED][0]])
            if grid:
                import cv2
                path = Path(out_dir) / f"frames_{n:03d}.png"
                cv2.imwrite(str(path), tile(grid, ["blurry IR (warped)", "events",
                                                   "reconstructed visible", "deblurred IR",
                                                   "fused"]))
                paths.append(path)
        return paths


def spin_nodes(nodes: list[Node], until, timeout_s: float) -> None:
    """Spin the nodes in one executor until ``until()``, ``timeout_s`` or Ctrl-C/SIGTERM."""
    executor = MultiThreadedExecutor(num_threads=4)
    for n in nodes:
        executor.add_node(n)
    try:
        spin_until_stopped(executor, until, timeout_s)
    finally:
        for n in nodes:
            executor.remove_node(n)
        executor.shutdown(timeout_sec=2.0)


def run_rig(config: Path, source: str, file: str = "", scenario: str = "day",
            duration_s: float = 0.0, seed: int = 0) -> None:
    """`evif rig`: run until Ctrl-C/SIGTERM (or for duration_s of wall time)."""
    handle_stop_signals()
    init_rclpy()
    nodes = []
    try:
        nodes = build_nodes(config, source, scenario=scenario, file=file, seed=seed,
                            duration=max(duration_s, 1.0) if source == "sim" else 10.0)
        replayer = None
        if source == "bag":
            from evif_ros.nodes.replayer import Replayer
            replayer = Replayer(Path(file))
            nodes.append(replayer)
        spin_nodes(nodes, lambda: replayer is not None and replayer.error is not None,
                   duration_s if duration_s > 0 else float("inf"))
        if replayer is not None and replayer.error is not None:
            raise replayer.error
    finally:
        close_nodes(nodes)


def run_demo(out: Path, scenario: str, duration_s: float, rate: float, seed: int,
             config: Path | None = None) -> dict:
    """`evif demo`: the synthetic rig through the whole graph with the shipped model."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bag = out / "outputs"
    if bag.exists():
        import shutil
        shutil.rmtree(bag)
    config = config or share_file("config", "rig.yaml")
    handle_stop_signals()
    init_rclpy()
    nodes = []
    t0 = time.monotonic()
    try:
        extra = {"davis_driver": {"reliable_events": True, "wait_for_subscribers": 2,
                                  "aligned": False},
                 "ir_driver": {"reliable": True, "wait_for_subscribers": 2, "aligned": False},
                 "evif_node": {"reliable_events": True, "reliable_ir": True}}
        nodes = build_nodes(config, "sim", scenario=scenario, seed=seed, duration=duration_s,
                            rate=rate, extra=extra)
        evif = next(n for n in nodes if n.get_name() == "evif_node")
        collector = DemoCollector(bag, share_file("calibration", "synthetic_rig.yaml"), evif.k)
        nodes.append(collector)
        davis = next(n for n in nodes if n.get_name() == "davis_driver")
        ir = next(n for n in nodes if n.get_name() == "ir_driver")

        def finished():
            done = evif.counts["outputs"] + evif.counts["dropped_windows"] \
                + evif.counts["dropped_window"]
            return davis.finished and ir.finished and done >= evif.counts["windows"]
        spin_nodes(nodes, finished, timeout_s=280)
        time.sleep(0.5)
        collector.close()
        pictures = collector.pictures(out)
        wall = time.monotonic() - t0
        lat = {s: (evif.latency.percentile(s, 50), evif.latency.percentile(s, 95))
               for s in ("voxelize", "model", "publish", "total")}
        return {"wall_s": wall, "windows": evif.counts["windows"],
                "outputs": evif.counts["outputs"], "dropped": evif.counts["dropped_windows"],
                "ir_frames": evif.counts["ir_frames"], "events": davis.events_sent,
                "latency_ms": lat, "pictures": [str(p) for p in pictures],
                "bag": str(bag), "device": evif.device,
                "sync": {k: v for k, v in evif.sync.stats.as_dict().items() if v}}
    finally:
        close_nodes(nodes)
