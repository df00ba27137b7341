"""A two-host setup on one machine: `evif rig --role drivers` and `evif rig --role inference`
in separate processes with Fast DDS's shared-memory transport off (UDP over loopback, as
between two computers). Every event of a recording at a DAVIS346's peak rate (12 MEv/s)
must reach the inference node's synchronizer."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rosgraph import spin_until

from evif_ros.ros.graph import source_overrides
from evif_ros.runtime import topics

EVIF = str(Path(sys.executable).parent / "evif")


def test_roles_split_the_graph_between_hosts():
    assert source_overrides("synthetic", role="drivers")[0] == ["davis_driver", "ir_driver"]
    assert source_overrides("synthetic", role="inference")[0] == ["evif_node", "event_renderer"]
    assert source_overrides("aedat4", file="x.aedat4", role="drivers")[0] == ["davis_driver"]
    assert source_overrides("bag", file="b", role="drivers")[0] == []  # the replay drives


def write_peak_rate_file(path: Path, n: int, seconds: float) -> None:
    import dv_processing as dv
    rng = np.random.default_rng(0)
    ts = (1_000_000 + np.arange(n) * (seconds * 1e6 / n)).astype(np.int64)
    xs, ys = rng.integers(0, 346, n), rng.integers(0, 260, n)
    ps = rng.integers(0, 2, n).astype(bool)
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig(
        "DAVIS346_test", (346, 260)))
    store = dv.EventStore()
    for e in zip(ts.tolist(), xs.tolist(), ys.tolist(), ps.tolist()):
        store.push_back(*e)
    writer.writeEvents(store)
    del writer


class DiagWatcher(Node):
    def __init__(self):
        super().__init__("diag_watcher")
        self.sync_events = 0
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self.on_diag, 50)

    def on_diag(self, msg):
        for st in msg.status:
            if st.name.startswith("evif_node"):
                vals = {kv.key: kv.value for kv in st.values}
                self.sync_events = int(vals.get("sync_events", "0"))


@pytest.mark.timeout(300)
def test_drivers_and_inference_over_udp_lose_no_event_at_peak_rate(ros, tmp_path,
                                                                  tiny_model):
    n, seconds = 3_000_000, 0.25  # 12 MEv/s
    rec = tmp_path / "peak.aedat4"
    write_peak_rate_file(rec, n, seconds)
    config = tmp_path / "rig.yaml"
    config.write_text(yaml.safe_dump({
        "/davis_driver": {"ros__parameters": {
            "reliable_events": True, "aps": False, "imu": False, "packet_time_us": 1000,
            "packet_max_events": 20000, "wait_for_subscribers": 2}},  # evif_node, renderer
        "/evif_node": {"ros__parameters": {"reliable_events": True,
                                           "model_path": str(tiny_model)}}}))
    env = dict(os.environ, FASTDDS_BUILTIN_TRANSPORTS="UDPv4")  # no shared memory
    cmd = [EVIF, "rig", "--config", str(config), "--aedat4", str(rec)]
    inference = subprocess.Popen(cmd + ["--role", "inference"], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    drivers = subprocess.Popen(cmd + ["--role", "drivers"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watcher = DiagWatcher()
    try:
        assert spin_until(watcher, lambda: watcher.sync_events >= n, 180), watcher.sync_events
        spin_until(watcher, lambda: False, 1.5)  # a later report: nothing more arrives
        assert watcher.sync_events == n
    finally:
        watcher.destroy_node()
        outputs = []
        for p in (drivers, inference):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            t0 = time.monotonic()
            out = p.communicate(timeout=30)[0]
            outputs.append((p.returncode, out, time.monotonic() - t0))
    for code, out, _ in outputs:
        assert code == 0 and "Traceback" not in out, out[-2000:]
