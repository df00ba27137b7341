"""evif_node: the EVIF pipeline on ROS 2.

Subscribes to events, triggers and IR frames; pairs each IR exposure with its events
(:class:`~evif_ros.core.sync.ExposureSynchronizer`); warps the IR frame onto the event
camera's grid (calibration); builds the voxel grids; runs the exported TorchScript model
(``device`` auto: CUDA when present); publishes /evif/fused, /evif/ir_deblurred and
/evif/visible stamped with the exposure start. The recurrent state carries over between
consecutive windows and resets on a gap. When inference falls behind, the oldest pending
windows are dropped (and counted): the queue never grows beyond ``max_pending``.
"""

from __future__ import annotations

import collections
import threading
import time

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2, TimeReference

from evif_ros import topics
from evif_ros.core.calibration import load_calibration, warp_ir_to_davis
from evif_ros.core.sync import ExposureSynchronizer, SyncConfig
from evif_ros.core.voxel import window_voxels
from evif_ros.errors import EvifError, LayoutError
from evif_ros.model.export import load_exported
from evif_ros.msgs import events_from_msg, image_from_msg, stamp_to_ns
from evif_ros.nodes.common import (RELIABLE_SENSOR_QOS, SENSOR_QOS, TRIGGERS_QOS, Diagnostics,
                                   SafePublisher, declare, events_qos, rclpy_msgs, run)
from evif_ros.paths import share_file

STAGES = ("voxelize", "model", "publish")


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EvifError(f"parameter 'device': {name} requested but CUDA is not available")
    return name


class Latency:
    """Rolling per-stage latencies (ms) for diagnostics and benchmarks."""

    def __init__(self, size: int = 200):
        self.values = {s: collections.deque(maxlen=size) for s in STAGES + ("total",)}

    def add(self, stage: str, ms: float) -> None:
        self.values[stage].append(ms)

    def percentile(self, stage: str, q: float) -> float:
        v = self.values[stage]
        return float(np.percentile(v, q)) if v else float("nan")


class EvifNode(Node):
    def __init__(self, **kwargs):
        super().__init__("evif_node", **kwargs)
        model_path = declare(self, "model_path", "", "TorchScript model ('' = the shipped "
                             "models/evif_lite.ts)")
        device = declare(self, "device", "auto", "auto, cpu or cuda[:N]")
        calib_path = declare(self, "calibration", "", "Rig calibration YAML ('' = the "
                             "synthetic rig's)")
        self.max_pending = declare(self, "max_pending", 2, "Windows queued for inference "
                                   "before the oldest is dropped", lo=1, hi=64)
        self.reset_gap_ns = int(declare(self, "reset_gap_ms", 100.0, "Reset the recurrent "
                                        "state when consecutive windows are further apart",
                                        lo=1.0, hi=1e6) * 1e6)
        reliable_events = declare(self, "reliable_events", False, "Reliable events QoS")
        reliable_ir = declare(self, "reliable_ir", False, "Reliable IR QoS")
        self.threads = declare(self, "threads", 0, "torch CPU threads (0 = default)", lo=0,
                               hi=256)
        self.frame_id = declare(self, "frame_id", topics.DAVIS_FRAME, "Output frame id")
        if self.threads:
            torch.set_num_threads(self.threads)
        self.device = pick_device(device)
        self.calib = load_calibration(calib_path or share_file("calibration",
                                                               "synthetic_rig.yaml"))
        path = model_path or share_file("models", "evif_lite.ts")
        self.model, meta = load_exported(path, self.device)
        self.k = int(meta["config"]["sub_windows"])
        self.get_logger().info(f"model {path} (K={self.k}) on {self.device}")
        c = self.calib
        self.sync = ExposureSynchronizer(SyncConfig(
            exposure_ns=c.ir_exposure_ns, latency_ns=c.ir_latency_ns,
            time_offset_ns=c.time_offset_ns, sub_windows=self.k))
        self.width, self.height = c.davis_size
        self.mt = rclpy_msgs()
        self.lock = threading.Lock()
        self.pending: collections.deque = collections.deque()
        self.wake = threading.Event()
        self.state: list = []
        self.last_start_ns: int | None = None
        self.counts = collections.Counter()
        self.latency = Latency()
        self._logged: set[str] = set()
        self.pub_fused = SafePublisher(self, Image, topics.FUSED, SENSOR_QOS)
        self.pub_ir = SafePublisher(self, Image, topics.IR_DEBLURRED, SENSOR_QOS)
        self.pub_vis = SafePublisher(self, Image, topics.VISIBLE, SENSOR_QOS)
        self.create_subscription(PointCloud2, topics.EVENTS, self._on_events,
                                 events_qos(reliable_events))
        self.create_subscription(TimeReference, topics.TRIGGERS, self._on_trigger, TRIGGERS_QOS)
        self.create_subscription(Image, topics.IR_IMAGE, self._on_ir,
                                 RELIABLE_SENSOR_QOS if reliable_ir else SENSOR_QOS)
        self.diag = Diagnostics(self, "evif", self._diag_values)
        self._stop = threading.Event()
        self.worker = threading.Thread(target=self._work, name="evif_inference", daemon=True)
        self.worker.start()

    # --- inputs (executor thread) ---------------------------------------------------
    def _drop(self, kind: str, exc: Exception) -> None:
        self.counts[f"dropped_{kind}"] += 1
        if kind not in self._logged:
            self._logged.add(kind)
            self.get_logger().warning(f"dropping {kind} message: {exc}")

    def _on_events(self, msg: PointCloud2) -> None:
        try:
            ev = events_from_msg(msg, topics.EVENTS)
        except LayoutError as exc:
            return self._drop("events", exc)
        self._queue(self.sync.add_events(ev))

    def _on_trigger(self, msg: TimeReference) -> None:
        self._queue(self.sync.add_trigger(stamp_to_ns(msg.header.stamp)))

    def _on_ir(self, msg: Image) -> None:
        try:
            img = image_from_msg(msg, topics.IR_IMAGE, allowed=("mono16", "mono8"))
            if img.shape[1::-1] != self.calib.ir_size:
                raise LayoutError(f"{topics.IR_IMAGE}: {img.shape[1]}x{img.shape[0]} frame, "
                                  f"calibration expects {self.calib.ir_size[0]}x"
                                  f"{self.calib.ir_size[1]}")
        except LayoutError as exc:
            return self._drop("ir", exc)
        self.counts["ir_frames"] += 1
        self._queue(self.sync.add_frame(img.copy(), stamp_to_ns(msg.header.stamp)))

    def _queue(self, windows) -> None:
        if not windows:
            return
        with self.lock:
            for w in windows:
                self.counts["windows"] += 1
                self.pending.append(w)
                while len(self.pending) > self.max_pending:
                    self.pending.popleft()
                    self.counts["dropped_windows"] += 1
        self.wake.set()

    # --- inference (worker thread) --------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            self.wake.wait(0.1)
            with self.lock:
                w = self.pending.popleft() if self.pending else None
                if not self.pending:
                    self.wake.clear()
            if w is None:
                continue
            try:
                self.process(w)
            except Exception as exc:  # noqa: BLE001 - keep serving later windows
                self._drop("window", exc)

    def process(self, w) -> tuple:
        t0 = time.perf_counter()
        ir = warp_ir_to_davis(w.image, self.calib).astype(np.float32)
        exp_vox, subs = window_voxels(w.events, w.t_start_ns, w.exposure_ns, w.recon_edges_ns,
                                      self.height, self.width)
        t1 = time.perf_counter()
        if self.last_start_ns is None or w.t_start_ns - self.last_start_ns > self.reset_gap_ns \
                or w.t_start_ns <= self.last_start_ns:
            self.state = []
            self.counts["state_resets"] += 1
        dev = self.device
        with torch.no_grad():
            fused, deb, vis, self.state = self.model(
                torch.from_numpy(ir)[None, None].to(dev), torch.from_numpy(exp_vox)[None].to(dev),
                torch.from_numpy(subs)[None].to(dev), self.state)
            fused = (fused[0, 0].clamp(0, 1) * 255).round().byte().cpu().numpy()
            vis = (vis[0, 0].clamp(0, 1) * 255).round().byte().cpu().numpy()
            deb = deb[0, 0].clamp(0, 65535).round().cpu().numpy().astype(np.uint16)
        self.last_start_ns = w.t_start_ns
        t2 = time.perf_counter()
        fid = self.frame_id
        self.pub_fused.publish(self.mt.image(fused, "mono8", w.t_start_ns, fid))
        self.pub_ir.publish(self.mt.image(deb, "mono16", w.t_start_ns, fid))
        self.pub_vis.publish(self.mt.image(vis, "mono8", w.t_start_ns, fid))
        t3 = time.perf_counter()
        for stage, a, b in (("voxelize", t0, t1), ("model", t1, t2), ("publish", t2, t3),
                            ("total", t0, t3)):
            self.latency.add(stage, (b - a) * 1e3)
        self.counts["outputs"] += 1
        return fused, deb, vis

    def _diag_values(self) -> dict:
        vals = dict(self.counts)
        vals.update({f"latency_{s}_p50_ms": self.latency.percentile(s, 50)
                     for s in STAGES + ("total",)})
        vals.update({f"latency_{s}_p95_ms": self.latency.percentile(s, 95)
                     for s in STAGES + ("total",)})
        vals.update({f"sync_{k}": v for k, v in self.sync.stats.as_dict().items() if v})
        vals["device"] = self.device
        if vals.get("dropped_windows"):
            self.diag.set(DiagnosticStatus.WARN, "inference slower than the IR rate: "
                          "dropping oldest windows")
        return vals

    def stop(self) -> None:
        self._stop.set()


def main(args=None) -> int:
    return run(EvifNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
