"""evif_node: the EVIF pipeline on ROS 2.

Subscribes to events, triggers and IR frames; pairs each IR exposure with its events
(:class:`~evif_ros.runtime.sync.ExposureSynchronizer`); warps the IR frame onto the event
camera's grid (calibration); builds the voxel grids; runs the exported TorchScript model
(``device`` auto: CUDA when present); publishes /evif/fused, /evif/ir_deblurred and
/evif/visible stamped with the exposure start. The recurrent state carries over between
consecutive windows and resets on a gap. When inference falls behind, the oldest pending
windows are dropped (and counted): the queue never grows beyond ``max_pending``.
"""

from __future__ import annotations

import collections
import os
import threading
import time

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, TimeReference

from evif_ros.errors import LayoutError
from evif_ros.paths import DEFAULT_MODEL, share_file
from evif_ros.ros.nodes.common import (
    RELIABLE_SENSOR_QOS,
    SENSOR_INFO_QOS,
    SENSOR_QOS,
    TRIGGERS_QOS,
    Diagnostics,
    SafePublisher,
    declare,
    events_qos,
    join_worker,
    parse_cores,
    rclpy_msgs,
    run,
)
from evif_ros.runtime import topics
from evif_ros.runtime.calibration import load_calibration
from evif_ros.runtime.clock import EventClockMap
from evif_ros.runtime.inference import EvifRunner

STAGES = ("voxelize", "model", "publish")
# exposure end (event clock) -> the three outputs published, see core/clock.py
END_TO_END = "end_to_end"


class Latency:
    """Rolling per-stage latencies (ms) for diagnostics and benchmarks."""

    def __init__(self, size: int = 200):
        self.values = {s: collections.deque(maxlen=size)
                       for s in STAGES + ("total", END_TO_END)}

    def add(self, stage: str, ms: float) -> None:
        self.values[stage].append(ms)

    def percentile(self, stage: str, q: float) -> float:
        v = self.values[stage]
        return float(np.percentile(v, q)) if v else float("nan")


class EvifNode(Node):
    def __init__(self, **kwargs):
        super().__init__("evif_node", **kwargs)
        model_path = declare(self, "model_path", "", "TorchScript model: a path, or the "
                             "name of a shipped one (see models/cards/); '' = "
                             f"{DEFAULT_MODEL}")
        device = declare(self, "device", "auto", "auto, cpu or cuda[:N]")
        calib_path = declare(self, "calibration", "", "Rig calibration YAML ('' = the "
                             "synthetic rig's)")
        self.max_pending = declare(self, "max_pending", 2, "Windows queued for inference "
                                   "before the oldest is dropped", lo=1, hi=64)
        self.reset_gap_ns = int(declare(self, "reset_gap_ms", 100.0, "Reset the recurrent "
                                        "state when consecutive windows are further apart "
                                        "(never under 1.5 reconstruction spans: a 10 Hz "
                                        "camera's frames stay consecutive)",
                                        lo=1.0, hi=1e6) * 1e6)
        reliable_events = declare(self, "reliable_events", False, "Reliable events QoS")
        reliable_ir = declare(self, "reliable_ir", False, "Reliable IR QoS")
        self.threads = declare(self, "threads", 0, "torch CPU threads (0 = default)", lo=0,
                               hi=256)
        self.frame_id = declare(self, "frame_id", topics.DAVIS_FRAME, "Output frame id")
        # a DAVIS346 at its 12 MEv/s peak puts 60k events in a 5 ms packet
        self.max_packet_events = declare(self, "max_packet_events", 2_000_000,
                                         "Drop (and count) event packets larger than this",
                                         lo=1, hi=100_000_000)
        self.inference_cores = parse_cores(declare(
            self, "inference_cores", "", "CPU cores of the inference thread alone, e.g. '1' or "
            "'2-3' ('' = the process's): the model then never shares a core with the "
            "node's message callbacks and DDS threads", any_type=True), "inference_cores")
        if self.threads:
            torch.set_num_threads(self.threads)
        self.calib = load_calibration(calib_path or share_file("calibration",
                                                               "synthetic_rig.yaml"))
        path = model_path or DEFAULT_MODEL
        if "/" not in path:  # a bare name: one of the shipped models
            path = share_file("models", path)
        step_ms = declare(self, "recon_step_ms", 0.0, "Longest span of events one "
                          "reconstruction step takes (0 = the span the model was trained at); "
                          "a longer window (a slower thermal camera) runs the reconstruction "
                          "in several steps, the state carried", lo=0.0, hi=10_000.0)
        self.runner = EvifRunner(path, self.calib, device, reset_gap_ns=self.reset_gap_ns,
                                 recon_step_ns=int(step_ms * 1e6) or None)
        self.k, self.device = self.runner.k, self.runner.device
        self.runner.warm_up(1 if self.device == "cpu" else 10)
        cores = sorted(self.inference_cores or (os.sched_getaffinity(0) if hasattr(
            os, "sched_getaffinity") else []))
        self.get_logger().info(f"model {path} (K={self.k}) on {self.device}, "
                               f"{torch.get_num_threads()} threads, cores {cores}")
        if self.runner.contrast_gain is not None:
            self.get_logger().info(f"event step x{self.runner.contrast_gain:.2f} for the rig's "
                                   f"contrast threshold {self.calib.davis_contrast:g}")
        if self.calib.davis_latency_ns:
            self.get_logger().info(f"events taken {self.calib.davis_latency_ns * 1e-6:+.1f} ms "
                                   "late (the rig's davis_latency_ns): each window closes that "
                                   "much later")
        for text in self.runner.warnings:
            self.get_logger().warning(text)
        prebin = declare(self, "prebin", True, "Bin each exposure's events into its voxel "
                         "grids as the packets arrive, so that only the last packet is left "
                         "when the exposure closes")
        # grid buffers: the open exposures, the queue and the window being run
        span_ms = declare(self, "recon_span_ms", 0.0, "Span of the reconstruction's "
                          "sub-windows, ending at mid-exposure (0 = the model's own: the IR "
                          "exposure, or with image feedback the IR frame period it was "
                          "trained at; set your thermal camera's frame period)", lo=0.0,
                          hi=10_000.0)
        self.feeder = self.runner.window_feeder(int(span_ms * 1e6), prebin=prebin,
                                                max_grids=self.max_pending + 4)
        self.sync = self.feeder.sync
        steps = self.runner.steps_for(self.sync.cfg.span_ns)
        if steps > 1:
            self.get_logger().info(f"reconstruction in {steps} steps of "
                                   f"{self.sync.cfg.span_ns / steps * 1e-6:.1f} ms per window "
                                   f"(recon_step_ms {self.runner.recon_step_ns * 1e-6:g})")
        self.mt = rclpy_msgs()
        self.lock = threading.Lock()
        self.pending: collections.deque = collections.deque()
        self.wake = threading.Event()
        self.counts = collections.Counter()
        self.last_reason: dict[str, str] = {}
        self.sensor_size: tuple[int, int] | None = None  # from /davis/camera_info
        self.latency = Latency()
        self.event_clock = EventClockMap()
        self._logged: set[str] = set()
        self.pub_fused = SafePublisher(self, Image, topics.FUSED, SENSOR_QOS)
        self.pub_ir = SafePublisher(self, Image, topics.IR_DEBLURRED, SENSOR_QOS)
        self.pub_vis = SafePublisher(self, Image, topics.VISIBLE, SENSOR_QOS)
        self.create_subscription(PointCloud2, topics.EVENTS, self._on_events,
                                 events_qos(reliable_events))
        self.create_subscription(TimeReference, topics.TRIGGERS, self._on_trigger, TRIGGERS_QOS)
        self.create_subscription(CameraInfo, topics.DAVIS_INFO, self._on_sensor_info,
                                 SENSOR_INFO_QOS)
        self.create_subscription(Image, topics.IR_IMAGE, self._on_ir,
                                 RELIABLE_SENSOR_QOS if reliable_ir else SENSOR_QOS)
        self.diag = Diagnostics(self, "evif", self._diag_values)
        self._stop = threading.Event()
        self.worker = threading.Thread(target=self._work, name="evif_inference", daemon=True)
        self.worker.start()

    # --- inputs (executor thread) ---------------------------------------------------
    def _drop(self, kind: str, exc: Exception | str, n: int = 1) -> None:
        """Count a drop by kind, log the first of each kind, keep the last reason for
        /diagnostics."""
        self.counts[f"dropped_{kind}"] += n
        self.last_reason[kind] = str(exc)
        if kind not in self._logged:
            self._logged.add(kind)
            self.get_logger().warning(f"dropping {kind}: {exc}")

    def _on_sensor_info(self, msg: CameraInfo) -> None:
        self.sensor_size = (int(msg.width), int(msg.height))
        if self.sensor_size != self.calib.davis_size:
            self.get_logger().error(self._size_mismatch())

    def _size_mismatch(self) -> str:
        w, h = self.sensor_size
        cw, ch = self.calib.davis_size
        return (f"{topics.DAVIS_INFO}: event sensor is {w}x{h}, the calibration expects "
                f"{cw}x{ch}: events dropped (set calibration:= for this camera)")

    def _on_events(self, msg: PointCloud2) -> None:
        try:
            ev = self.feeder.events_msg(msg, max_events=self.max_packet_events)
        except LayoutError as exc:
            return self._drop("events", exc)
        if self.sensor_size is not None and self.sensor_size != self.calib.davis_size:
            return self._drop("events_sensor_size", self._size_mismatch(), ev.size)
        ev = self._clean(ev)
        if ev.size:
            self.event_clock.observe(time.monotonic_ns(), int(ev["t"][-1]))
            self._queue(self.feeder.events(ev))

    def _clean(self, ev):
        """Events outside the calibrated sensor are dropped and counted, never cropped
        silently; an unsorted packet is sorted (and counted)."""
        w, h = self.calib.davis_size
        inside = (ev["x"] < w) & (ev["y"] < h)
        if not inside.all():
            n = int(ev.size - inside.sum())
            self._drop("events_out_of_range", f"{topics.EVENTS}: {n} events outside the "
                       f"calibrated {w}x{h} sensor (x up to {int(ev['x'].max())}, y up to "
                       f"{int(ev['y'].max())})", n)
            ev = ev[inside]
        if ev.size > 1 and (np.diff(ev["t"]) < 0).any():
            self.counts["unsorted_packets"] += 1
            ev = ev[np.argsort(ev["t"], kind="stable")]
        return ev

    def _on_trigger(self, msg: TimeReference) -> None:
        self._queue(self.feeder.trigger_msg(msg))

    def _on_ir(self, msg: Image) -> None:
        try:
            windows = self.feeder.frame_msg(msg)
        except LayoutError as exc:
            return self._drop("ir", exc)
        self.counts["ir_frames"] += 1
        self._queue(windows)

    def _queue(self, windows) -> None:
        if not windows:
            return
        with self.lock:
            for w in windows:
                self.counts["windows"] += 1
                self.pending.append(w)
                while len(self.pending) > self.max_pending:
                    self.pending.popleft()
                    self.counts["skipped_windows"] += 1  # inference fell behind (max_pending)
        self.wake.set()

    # --- inference (worker thread) --------------------------------------------------
    def _work(self) -> None:
        if self.inference_cores:  # this thread only (and the torch threads it starts)
            try:
                os.sched_setaffinity(0, self.inference_cores)
            except OSError as exc:
                self.get_logger().error(f"inference_cores: cannot pin the inference thread "
                                        f"to {sorted(self.inference_cores)} ({exc}); unpinned")
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

    def process(self, w) -> None:
        res = self.runner.run(w)  # resets the recurrent state across gaps
        self.counts["state_resets"] = self.runner.resets
        t2 = time.perf_counter()
        fid = self.frame_id
        self.pub_fused.publish(self.mt.image(res.fused, "mono8", w.t_start_ns, fid))
        self.pub_ir.publish(self.mt.image(res.ir_deblurred, "mono16", w.t_start_ns, fid))
        self.pub_vis.publish(self.mt.image(res.visible, "mono8", w.t_start_ns, fid))
        publish_ms = (time.perf_counter() - t2) * 1e3
        for stage, ms in (*res.timings_ms.items(), ("publish", publish_ms)):
            self.latency.add(stage, ms)
        self.latency.add("total", sum(res.timings_ms.values()) + publish_ms)
        e2e = self.event_clock.latency_ms(time.monotonic_ns(), w.t_start_ns + w.exposure_ns)
        if e2e is not None:
            self.latency.add(END_TO_END, e2e)
        self.counts["outputs"] += 1

    def _diag_values(self) -> dict:
        vals = dict(self.counts)
        vals.update({f"last_drop_{k}": v[:200] for k, v in self.last_reason.items()})
        vals.update({f"latency_{s}_p50_ms": self.latency.percentile(s, 50)
                     for s in STAGES + ("total", END_TO_END)})
        vals.update({f"latency_{s}_p95_ms": self.latency.percentile(s, 95)
                     for s in STAGES + ("total", END_TO_END)})
        vals.update({f"sync_{k}": v for k, v in self.sync.stats.as_dict().items() if v})
        vals["device"] = self.device
        vals["prebinned_windows"] = self.feeder.prebinned
        if self.sensor_size is not None and self.sensor_size != self.calib.davis_size:
            self.diag.set(DiagnosticStatus.ERROR, self._size_mismatch())
        elif vals.get("dropped_events_out_of_range"):
            self.diag.set(DiagnosticStatus.WARN, self.last_reason["events_out_of_range"])
        elif vals.get("skipped_windows"):
            self.diag.set(DiagnosticStatus.WARN, "inference slower than the IR rate: "
                          "dropping oldest windows")
        return vals

    def stop(self) -> None:
        self._stop.set()
        join_worker(self, self.worker)


def main(args=None) -> int:
    return run(EvifNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
