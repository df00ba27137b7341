"""evif_node end to end over real DDS with a real (tiny, untrained) TorchScript model."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rosgraph import nodes, spin_until
from sensor_msgs.msg import Image, PointCloud2, TimeReference

from evif_ros import topics
from evif_ros.msgs import MsgTypes, image_from_msg, stamp_to_ns
from evif_ros.nodes.common import EVENTS_RELIABLE, RELIABLE_SENSOR_QOS, SENSOR_QOS, TRIGGERS_QOS
from evif_ros.sim.rig import EventChunk, IrFrame, Rig, Trigger, synthetic_rig_config

pytestmark = pytest.mark.timeout(300)
@pytest.fixture(scope="module")
def rig_stream():
    rig = Rig(synthetic_rig_config({"scenario": "day", "seed": 4, "aligned": False}))
    return list(rig.run(0.3))


class Feeder(Node):
    def __init__(self):
        super().__init__("feeder")
        self.mt = MsgTypes.rclpy()
        self.ev = self.create_publisher(PointCloud2, topics.EVENTS, EVENTS_RELIABLE)
        self.trig = self.create_publisher(TimeReference, topics.TRIGGERS, TRIGGERS_QOS)
        self.ir = self.create_publisher(Image, topics.IR_IMAGE, RELIABLE_SENSOR_QOS)
        self.out = {topics.FUSED: [], topics.IR_DEBLURRED: [], topics.VISIBLE: []}
        for t in self.out:
            self.create_subscription(Image, t, self.out[t].append, SENSOR_QOS)
        self.diag = {}
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._diag, 10)

    def _diag(self, msg):
        for st in msg.status:
            if st.name.startswith("evif_node"):
                self.diag = {kv.key: kv.value for kv in st.values}

    def play(self, stream, bad_ir_at=None):
        n_frames = 0
        for rec in stream:
            if isinstance(rec, EventChunk):
                self.ev.publish(self.mt.events(rec.events, "davis"))
            elif isinstance(rec, Trigger):
                self.trig.publish(self.mt.time_reference(rec.t_ns, "davis", "ext"))
            elif isinstance(rec, IrFrame):
                if n_frames == bad_ir_at:
                    rgb = np.zeros(rec.counts.shape + (3,), np.uint8)
                    self.ir.publish(self.mt.image(rgb, "rgb8", rec.host_ns, "ir"))
                self.ir.publish(self.mt.image(rec.counts, "mono16", rec.host_ns, "ir"))
                n_frames += 1
            rclpy.spin_once(self, timeout_sec=0)
        return n_frames


def evif_node(model, **extra):
    return ("evif_node", {"model_path": str(model), "reliable_events": True,
                          "reliable_ir": True, "max_pending": 64, **extra})


def test_n_frames_in_n_fused_out_with_exposure_stamps(ros, tiny_model, rig_stream):
    feeder = Feeder()
    try:
        with nodes(evif_node(tiny_model)) as procs:
            assert spin_until(feeder, lambda: feeder.ir.get_subscription_count() > 0
                              and feeder.ev.get_subscription_count() > 0, 30)
            spin_until(feeder, lambda: False, 1.0)
            n = feeder.play(rig_stream, bad_ir_at=2)
            # the last exposure closes once later events pass it: add a tail
            tail_t = max(int(r.events["t"][-1]) for r in rig_stream if isinstance(r, EventChunk))
            from evif_ros.core.events import make_events
            feeder.ev.publish(feeder.mt.events(make_events([0], [0], [tail_t + 10**8], [1]),
                                               "davis"))
            assert spin_until(feeder, lambda: min(map(len, feeder.out.values())) >= n, 120)
            assert spin_until(feeder, lambda: feeder.diag.get("dropped_ir") == "1", 10)
            assert procs[0].poll() is None
        triggers = [r.t_ns for r in rig_stream if isinstance(r, Trigger)]
        for topic, msgs in feeder.out.items():
            assert [stamp_to_ns(m.header.stamp) for m in msgs] == triggers, topic
            img = image_from_msg(msgs[0])
            assert img.shape == (260, 346)
        assert feeder.out[topics.IR_DEBLURRED][0].encoding == "mono16"
        out = procs[0].stdout.read()
        assert out.count("dropping ir message") == 1 and "rgb8" in out
    finally:
        feeder.destroy_node()


@pytest.mark.parametrize("content", [None, b"not a torchscript file"])
def test_missing_or_corrupt_model_is_a_clear_startup_error(tmp_path, content):
    path = tmp_path / "model.ts"
    if content is not None:
        path.write_bytes(content)
    exe = Path(sys.executable).parent / "evif_node"
    res = subprocess.run([str(exe), "--ros-args", "-p", f"model_path:={path}"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "Traceback" not in res.stderr
