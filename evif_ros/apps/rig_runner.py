"""`evif rig` and `evif demo`: the rig graph (evif_ros.ros.graph) in one rclpy executor.

Nodes still talk over DDS (rclpy has no intra-process shortcut); the demo adds a
collector node that records the outputs to an mcap bag and draws comparison pictures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image, PointCloud2, TimeReference

from evif_ros.errors import EvifError
from evif_ros.paths import DEFAULT_MODEL, share_file
from evif_ros.ros.graph import load_params, node_class, node_parameters
from evif_ros.ros.nodes.common import (
    EVENTS_RELIABLE,
    SENSOR_QOS,
    TRIGGERS_QOS,
    close_nodes,
    init_rclpy,
    spin_until_stopped,
)
from evif_ros.ros.nodes.stop import handle_stop_signals
from evif_ros.runtime import topics
from evif_ros.runtime.calibration import load_calibration, warp_ir_to_davis
from evif_ros.runtime.feeder import WindowFeeder
from evif_ros.runtime.mcap_crc import checksum_bag
from evif_ros.runtime.msgs import image_from_msg, stamp_to_ns
from evif_ros.runtime.render import events_image, normalize, tile


def overrides_to_parameters(values: dict) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


def build_nodes(config: Path, source: str, extra: dict | None = None,
                exclude: tuple[str, ...] = (), **kw) -> list[Node]:
    return [node_class(name)(parameter_overrides=overrides_to_parameters(values))
            for name, values in node_parameters(config, source, extra, **kw).items()
            if name not in exclude]


class DemoCollector(Node):
    """Records the graph's inputs and outputs and joins them per IR exposure."""

    def __init__(self, bag: Path, calib_path: Path, k: int):
        super().__init__("evif_demo_collector")
        from rosbags.rosbag2 import StoragePlugin, Writer

        from evif_ros.ros.bags import typestore

        self.calib = load_calibration(calib_path)
        self.feeder = WindowFeeder(self.calib, k)
        self.store = typestore()
        self.bag = bag
        self.writer = Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.conns = {}
        self.lock = threading.Lock()
        self.inputs: dict[int, tuple] = {}
        self.outputs: dict[int, dict] = {}
        self.evif_diag: dict[str, str] = {}  # latest /diagnostics values of evif_node
        self.evif_diag_at = 0.0  # time.monotonic() of their arrival
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diag, 10)
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

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            if st.name.startswith("evif_node"):
                self.evif_diag = {kv.key: kv.value for kv in st.values}
                self.evif_diag_at = time.monotonic()

    def evif_count(self, key: str) -> int:
        return int(float(self.evif_diag.get(key, "0")))

    def _on_output(self, topic: str, msg) -> None:
        self._write(topic, msg, "sensor_msgs/msg/Image")
        t = stamp_to_ns(msg.header.stamp)
        self.outputs.setdefault(t, {})[topic] = (image_from_msg(msg).copy(), time.monotonic())

    def close(self) -> None:
        with self.lock:
            if self.writer is not None:
                self.writer.close()
                self.writer = None
                checksum_bag(self.bag)

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
        _drain_handlers(executor)
        executor.shutdown(timeout_sec=5.0)


def _drain_handlers(executor: MultiThreadedExecutor, timeout_s: float = 2.0) -> None:
    """Let the callback handlers already handed to the thread pool finish. rclpy's
    ``MultiThreadedExecutor.shutdown`` destroys its guard condition before the pool runs
    them, and each then fails on it ("The following exception was never retrieved: cannot
    use Destroyable"). ``_futures`` is rclpy's own list of them (no public accessor)."""
    end = time.monotonic() + timeout_s
    for handler in list(getattr(executor, "_futures", [])):
        while not handler.done() and time.monotonic() < end:
            time.sleep(0.005)


def run_rig(config: Path, source: str, file: str = "", scenario: str = "day",
            duration_s: float = 0.0, seed: int = 0, role: str = "all") -> None:
    """`evif rig`: run until Ctrl-C/SIGTERM (or for duration_s of wall time)."""
    handle_stop_signals()
    init_rclpy()
    nodes = []
    try:
        nodes = build_nodes(config, source, scenario=scenario, file=file, seed=seed, role=role,
                            duration=max(duration_s, 1.0) if source == "synthetic" else 10.0)
        replayer = None
        if source == "bag" and role in ("all", "drivers"):  # the replay is the bag's driver
            from evif_ros.ros.nodes.replayer import Replayer
            replayer = Replayer(Path(file))
            nodes.append(replayer)
        spin_nodes(nodes, lambda: replayer is not None and replayer.error is not None,
                   duration_s if duration_s > 0 else float("inf"))
        if replayer is not None and replayer.error is not None:
            raise replayer.error
    finally:
        close_nodes(nodes)


class InferenceProcess:
    """``evif_node`` in a child process, as ``ros2 launch`` runs it: its own interpreter, so
    the model never waits on the drivers' GIL. Stopped with SIGINT (the node exits 0)."""

    def __init__(self, params: dict, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self.params_file = workdir / "evif_node.params.yaml"
        self.params_file.write_text(yaml.safe_dump({"/evif_node": {"ros__parameters": params}}))
        self.log_path = workdir / "evif_node.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "evif_ros.ros.nodes.evif_node", "--ros-args",
                 "--params-file", str(self.params_file)],
                stdout=log, stderr=subprocess.STDOUT, env=env)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def failure(self) -> str:
        lines = [ln for ln in self.log_path.read_text().splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit code {self.proc.returncode}"


def sustainable_rate(model: Path, scenario: str, seed: int, threads: int,
                     margin: float = 0.6) -> tuple[float, float, float]:
    """The highest rig speed (vs real time, at most 1) at which this machine keeps up:
    the model must finish a window within ``margin`` of the IR period, and the simulator
    must render rig time within ``margin`` of the wall time. Measured here on a few windows
    of the same scenario. Returns ``(rate, model p_max ms, simulator s per rig s)``."""
    import torch

    from evif_ros.runtime.inference import EvifRunner
    from evif_ros.sim.rig import Rig, rig_windows, synthetic_rig_config

    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    torch.set_num_threads(threads)
    runner = EvifRunner(model, calib, "cpu")
    cfg = synthetic_rig_config({"scenario": scenario, "seed": seed, "aligned": False})
    t0, rig_s = time.perf_counter(), 0.25
    feeder = runner.window_feeder()
    windows = rig_windows(Rig(cfg).run(rig_s), feeder)
    sim_s_per_rig_s = (time.perf_counter() - t0) / rig_s
    runner.warm_up(1)
    times = []
    for w in windows[:4]:
        t1 = time.perf_counter()
        runner.run(w)
        times.append((time.perf_counter() - t1) * 1e3)
    model_ms = max(times) if times else float("inf")
    period_ms = cfg.thermal.period_ns / 1e6
    rate = min(1.0, margin * period_ms / model_ms, margin / sim_s_per_rig_s)
    return float(f"{rate:.2g}"), model_ms, sim_s_per_rig_s


def usable_cores() -> set[int]:
    """The cores this process may run on (a container or taskset may allow fewer than
    ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def demo_threads(cores: int) -> int:
    """Torch threads of the demo's inference node: all but two cores (the rig's), one on
    two cores or fewer."""
    return 1 if cores <= 2 else cores - 2


def split_cores(cores: set[int], threads: int) -> tuple[set[int], set[int]] | None:
    """``(rig cores, inference cores)``: the model's threads get cores of their own, so
    neither the simulator and drivers nor the node's own message callbacks preempt a window.
    None when there are no more cores than threads."""
    if len(cores) <= threads:
        return None
    ordered = sorted(cores)
    return set(ordered[:-threads]), set(ordered[-threads:])


@dataclass(frozen=True)
class Probe:
    """What ``--rate auto`` measured before choosing the rate."""

    model_ms: float  # the model's worst time per window of a few
    sim_s_per_rig_s: float  # simulator cost


@dataclass(frozen=True)
class DemoResult:
    wall_s: float
    rate: float  # rig time / wall time
    probe: Probe | None  # None with a fixed --rate
    windows: int  # exposure windows the synchronizer formed
    outputs: int  # fused images published
    dropped: int  # windows skipped (inference behind) or failed
    ir_frames: int
    events: int
    latency_ms: dict  # stage -> (p50, p95)
    pictures: list
    bag: str
    device: str
    sync: dict  # the synchronizer's non-zero counters


def run_demo(out: Path, scenario: str, duration_s: float, rate: float | None, seed: int,
             config: Path | None = None, model: str = "") -> DemoResult:
    """`evif demo`: the synthetic rig through the whole graph with the shipped model, the
    inference node in its own process. ``rate=None``: the highest rate this machine
    sustains (:func:`sustainable_rate`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bag = out / "outputs"
    if bag.exists():
        import shutil
        shutil.rmtree(bag)
    config = config or share_file("config", "rig.yaml")
    own_cores = usable_cores()
    threads = demo_threads(len(own_cores))
    model_path = model or load_params(config).get("evif_node", {}).get("model_path") \
        or DEFAULT_MODEL
    if "/" not in model_path:
        model_path = str(share_file("models", model_path))
    # the model's thread gets cores of its own; the rig, and the node's callbacks and DDS
    # threads, share the others
    split = split_cores(own_cores, threads)
    probe = None
    if rate is None:
        rate, model_ms, sim_cost = sustainable_rate(Path(model_path), scenario, seed, threads)
        probe = Probe(model_ms, sim_cost)
    handle_stop_signals()
    if split and hasattr(os, "sched_setaffinity"):  # before rclpy starts its threads,
        os.sched_setaffinity(0, split[0])  # which inherit the rig's cores
    init_rclpy()
    nodes = []
    t0 = time.monotonic()
    # playback holds until every consumer listens: events go to the collector, the
    # renderer and evif_node (which subscribes once its model is loaded), IR frames to
    # the collector and evif_node
    extra = {"davis_driver": {"reliable_events": True, "wait_for_subscribers": 3,
                              "aligned": False},
             "ir_driver": {"reliable": True, "wait_for_subscribers": 2, "aligned": False},
             "evif_node": {"reliable_events": True, "reliable_ir": True,
                           "model_path": model_path, "threads": threads,
                           "inference_cores": ",".join(map(str, sorted(split[1])))
                           if split else ""}}
    params = node_parameters(config, "synthetic", extra=extra, scenario=scenario, seed=seed,
                             duration=duration_s, rate=rate)
    # the node inherits the rig's cores; its inference thread moves (inference_cores)
    evif = InferenceProcess(params["evif_node"], out / "logs")
    try:
        nodes = build_nodes(config, "synthetic", scenario=scenario, seed=seed, duration=duration_s,
                            rate=rate, extra=extra, exclude=("evif_node",))
        collector = DemoCollector(bag, share_file("calibration", "synthetic_rig.yaml"), 1)
        nodes.append(collector)
        davis = next(n for n in nodes if n.get_name() == "davis_driver")
        ir = next(n for n in nodes if n.get_name() == "ir_driver")
        progress = {"at": 0.0, "done": -1}

        def finished():
            if not evif.alive():
                return True
            if not (davis.finished and ir.finished):
                return False
            c = collector.evif_count
            done = c("outputs") + c("skipped_windows") + c("dropped_window")
            now = time.monotonic()
            if done != progress["done"]:
                progress.update(at=now, done=done)
            # a report sent after the last change, with every window accounted for; or
            # nothing new for 60 s (a window the node never completes, say)
            return (collector.evif_diag_at > progress["at"] and c("windows") > 0
                    and done >= c("windows")) or now - progress["at"] > 60
        spin_nodes(nodes, finished, timeout_s=600)
        if not evif.alive():
            raise EvifError(f"evif_node stopped: {evif.failure()} (log: {evif.log_path})")
        collector.close()
        pictures = collector.pictures(out)
        wall = time.monotonic() - t0
        c, d = collector.evif_count, collector.evif_diag
        lat = {s: (float(d.get(f"latency_{s}_p50_ms", "nan")),
                   float(d.get(f"latency_{s}_p95_ms", "nan")))
               for s in ("voxelize", "model", "publish", "total", "end_to_end")}
        return DemoResult(wall_s=wall, rate=rate, probe=probe, windows=c("windows"),
                          outputs=c("outputs"),
                          dropped=c("skipped_windows") + c("dropped_window"),
                          ir_frames=c("ir_frames"), events=davis.events_sent,
                          latency_ms=lat, pictures=[str(p) for p in pictures], bag=str(bag),
                          device=d.get("device", "?"),
                          sync={k[5:]: v for k, v in d.items() if k.startswith("sync_")})
    finally:
        close_nodes(nodes)
        if split and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, own_cores)
        code = evif.stop()
        if code not in (0, None):
            print(f"evif_node exited with {code} (log: {evif.log_path})", file=sys.stderr)
