"""Drivers over real rclpy/DDS into the synchronizer: exactly the offline windows."""

import dataclasses

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rosgraph import nodes, spin_until
from sensor_msgs.msg import Image, PointCloud2, PointField, TimeReference

from evif_ros.drivers.davis_sources import AedatSource
from evif_ros.drivers.ir_sources import BagIrSource
from evif_ros.paths import share_file
from evif_ros.ros.nodes.common import (
    EVENTS_RELIABLE,
    RELIABLE_SENSOR_QOS,
    SENSOR_QOS,
    TRIGGERS_QOS,
    rclpy_msgs,
)
from evif_ros.runtime import topics
from evif_ros.runtime.calibration import load_calibration
from evif_ros.runtime.events import slice_time
from evif_ros.runtime.feeder import WindowFeeder
from evif_ros.runtime.msgs import image_from_msg
from evif_ros.sim.recording import read_events_aedat4, simulate_recording
from evif_ros.sim.rig import EventChunk, IrFrame, Rig, Trigger, synthetic_rig_config

pytestmark = pytest.mark.timeout(180)


def feeder(aligned=False):
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    if aligned:  # the IR camera on the DAVIS grid
        calib = dataclasses.replace(calib, ir_size=calib.davis_size)
    return WindowFeeder(calib, 5)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    out = tmp_path_factory.mktemp("rig")
    cfg = synthetic_rig_config({"scenario": "day", "seed": 5, "aligned": False})
    simulate_recording(out, 0.5, cfg, progress=False)
    return out


class SyncNode(Node):
    """The synchronizer fed from the wire, as the inference node will do it."""

    def __init__(self, name, aligned=False):
        super().__init__(name)
        self.feeder = feeder(aligned)
        self.windows = []
        self.events = 0
        self.create_subscription(PointCloud2, topics.EVENTS, self.on_events, EVENTS_RELIABLE)
        self.create_subscription(TimeReference, topics.TRIGGERS, self.on_trigger, TRIGGERS_QOS)
        self.create_subscription(Image, topics.IR_IMAGE, self.on_ir, RELIABLE_SENSOR_QOS)

    def on_events(self, msg):
        ev = self.feeder.events_msg(msg)
        self.events += ev.size
        self.windows += self.feeder.events(ev)

    def on_trigger(self, msg):
        self.windows += self.feeder.trigger_msg(msg)

    def on_ir(self, msg):
        self.windows += self.feeder.frame_msg(msg)


def offline_windows(items, aligned=False):
    fd = feeder(aligned)
    out = []
    for kind, payload in items:
        if kind == "events":
            out += fd.events(payload)
        elif kind == "trigger":
            out += fd.trigger(payload)
        else:
            out += fd.frame(*payload)
    return out


def assert_same_windows(online, offline, all_events):
    assert len(offline) > 5
    assert [w.t_start_ns for w in online] == [w.t_start_ns for w in offline]
    for a, b in zip(online, offline):
        assert a.host_ns == b.host_ns
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.exposure_events, b.exposure_events)
        np.testing.assert_array_equal(a.exposure_events,
                                      slice_time(all_events, a.t_start_ns, a.t_end_ns))
        for sa, sb in zip(a.sub_window_events(), b.sub_window_events()):
            np.testing.assert_array_equal(sa, sb)


def test_aedat4_and_recording_through_drivers_match_offline(ros, recording):
    aedat = recording / "davis.aedat4"
    all_events, _ = read_events_aedat4(aedat)
    items = []
    for batch in AedatSource(aedat, rate=0):
        if batch.events.size:
            items.append(("events", batch.events))
        items += [("trigger", t) for t in batch.triggers]
    frames = [("frame", (f.image, f.host_ns)) for f in BagIrSource(recording / "rig")]
    by_time = sorted(items + frames, key=lambda it: (
        int(it[1]["t"][-1]) if it[0] == "events" else it[1] if it[0] == "trigger" else it[1][1]))
    offline = offline_windows(by_time)

    node = SyncNode("sync_aedat")
    try:
        with nodes(("ir_driver", {"source": "recording", "file": str(recording / "rig"),
                                  "use_sim_time": True, "reliable": True,
                                  "wait_for_subscribers": 1}),
                   ("davis_driver", {"source": "aedat4", "file": str(aedat), "rate": 0.0,
                                     "reliable_events": True, "publish_clock": True,
                                     "wait_for_subscribers": 1})):
            spin_until(node, lambda: len(node.windows) >= len(offline)
                       and node.events >= all_events.size, 60)
        assert node.events == all_events.size  # no loss on the wire
        assert_same_windows(node.windows, offline, all_events)
    finally:
        node.destroy_node()


def test_synthetic_sources_through_drivers_match_offline(ros):
    params = {"scenario": "day", "seed": 9, "duration": 0.4, "aligned": True}
    rig = Rig(synthetic_rig_config(params))
    items, chunks = [], []
    for rec in rig.run(0.4):
        if isinstance(rec, EventChunk):
            items.append(("events", rec.events))
            chunks.append(rec.events)
        elif isinstance(rec, Trigger):
            items.append(("trigger", rec.t_ns))
        elif isinstance(rec, IrFrame):
            items.append(("frame", (rec.counts, rec.host_ns)))
    offline = offline_windows(items, aligned=True)
    node = SyncNode("sync_synth", aligned=True)
    try:
        with nodes(("ir_driver", dict(params, source="synthetic", use_sim_time=True,
                                      reliable=True, wait_for_subscribers=1)),
                   ("davis_driver", dict(params, source="synthetic", rate=0.0,
                                         reliable_events=True, publish_clock=True,
                                         wait_for_subscribers=1))):
            total = sum(c.size for c in chunks)
            spin_until(node, lambda: len(node.windows) >= len(offline)
                       and node.events >= total, 90)
        assert node.events == total
        assert_same_windows(node.windows, offline, np.concatenate(chunks))
    finally:
        node.destroy_node()


class Probe(Node):
    def __init__(self):
        super().__init__("probe")
        self.mt = rclpy_msgs()
        self.pub = self.create_publisher(PointCloud2, topics.EVENTS, EVENTS_RELIABLE)
        self.images = []
        self.diag = {}
        self.create_subscription(Image, topics.EVENTS_IMAGE, self.images.append, SENSOR_QOS)
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self.on_diag, 10)

    def on_diag(self, msg):
        for st in msg.status:
            self.diag[st.name] = (st.level, st.message, {kv.key: kv.value for kv in st.values})


def test_malformed_events_are_dropped_counted_and_node_keeps_running(ros):
    probe = Probe()
    try:
        with nodes(("event_renderer", {"rate": 20.0})) as procs:
            assert spin_until(probe, lambda: probe.pub.get_subscription_count() > 0, 20)
            spin_until(probe, lambda: False, 1.0)  # both ends of the match settle
            bad = probe.mt.events(np.zeros(3, dtype=[("x", "<u2"), ("y", "<u2"), ("t", "<i8"),
                                                      ("p", "u1")]), "davis")
            bad.fields = [PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1)]
            probe.pub.publish(bad)
            from evif_ros.runtime.events import make_events
            for k in range(5):
                probe.pub.publish(probe.mt.events(
                    make_events([1, 2], [3, 4], [10**9 + k * 10**6, 10**9 + k * 10**6 + 5],
                                [1, 0]), "davis"))
                spin_until(probe, lambda: False, 0.1)

            def renderer_counted():
                d = probe.diag.get("event_renderer: event_renderer")
                return d is not None and d[2]["dropped_packets"] == "1" and probe.images
            assert spin_until(probe, renderer_counted, 20), (probe.diag, len(probe.images))
            assert procs[0].poll() is None  # still running
            img = image_from_msg(probe.images[-1])
            assert img.shape == (260, 346, 3)
        out = procs[0].stdout.read()
        assert out.count("dropping malformed event message") == 1
        assert "fields" in out
    finally:
        probe.destroy_node()


def test_diagnostics_run_on_wall_time_when_no_clock_is_published(ros):
    """With use_sim_time and no /clock (a replay that has ended), ROS-time timers never
    fire; /diagnostics must keep coming."""
    probe = Probe()
    try:
        with nodes(("event_renderer", {"use_sim_time": True})) as procs:
            seen = []
            probe.create_subscription(DiagnosticArray, topics.DIAGNOSTICS,
                                      lambda m: seen.append(m), 10)
            assert spin_until(probe, lambda: len(seen) >= 3, 30), len(seen)
            assert procs[0].poll() is None
            assert all(m.header.stamp.sec == 0 for m in seen)  # sim time: no clock yet
    finally:
        probe.destroy_node()


def test_unreadable_files_do_not_kill_drivers(ros, tmp_path):
    junk = tmp_path / "junk.aedat4"
    junk.write_bytes(b"not an aedat4 file")
    probe = Probe()
    try:
        with nodes(("davis_driver", {"source": "aedat4", "file": str(junk)}),
                   ("ir_driver", {"source": "recording", "file": str(tmp_path / "missing")})
                   ) as procs:
            def both_reported():
                levels = [v for k, v in probe.diag.items() if k.startswith(("davis_driver",
                                                                            "ir_driver"))]
                return len(levels) == 2 and all(lv[0] == b"\x02" for lv in levels)
            assert spin_until(probe, both_reported, 20)
            assert all(p.poll() is None for p in procs)
            msgs = {k: v[1] for k, v in probe.diag.items()}
            assert any("junk.aedat4" in m for m in msgs.values())
            assert any("missing" in m for m in msgs.values())
    finally:
        probe.destroy_node()


def test_failed_publish_is_counted_not_raised(ros):
    from evif_ros.ros.nodes.common import SafePublisher
    node = Node("pubfail")
    try:
        sp = SafePublisher(node, Image, "/pubfail", SENSOR_QOS)
        assert sp.publish(Image())
        node.destroy_publisher(sp.pub)
        assert not sp.publish(Image()) and not sp.publish(Image())
        assert (sp.sent, sp.failed) == (1, 2)
    finally:
        node.destroy_node()


def test_drivers_publish_the_calibrated_lenses_in_camera_info(ros, tmp_path):
    from sensor_msgs.msg import CameraInfo

    from evif_ros.ros.nodes.common import SENSOR_INFO_QOS
    from evif_ros.sim.calibration import CalibrationRigConfig, ground_truth_calibration

    path = tmp_path / "rig_calibration.yaml"
    ground_truth_calibration(CalibrationRigConfig()).save(path)
    geo = load_calibration(path).geometry
    node = Node("camera_info_probe")
    infos = {}
    node.create_subscription(CameraInfo, topics.DAVIS_INFO,
                             lambda m: infos.setdefault("davis", m), SENSOR_INFO_QOS)
    node.create_subscription(CameraInfo, topics.IR_INFO,
                             lambda m: infos.setdefault("ir", m), RELIABLE_SENSOR_QOS)
    # both drivers hold their streams until someone listens (and the IR one runs on the
    # DAVIS driver's /clock)
    node.create_subscription(Image, topics.IR_IMAGE, lambda m: None, RELIABLE_SENSOR_QOS)
    node.create_subscription(PointCloud2, topics.EVENTS, lambda m: None, EVENTS_RELIABLE)
    params = {"scenario": "day", "seed": 2, "duration": 0.3, "calibration": str(path)}
    try:
        with nodes(("ir_driver", dict(params, source="synthetic", use_sim_time=True,
                                      reliable=True, wait_for_subscribers=1)),
                   ("davis_driver", dict(params, source="synthetic", rate=0.0,
                                         publish_clock=True, reliable_events=True,
                                         wait_for_subscribers=1))):
            assert spin_until(node, lambda: len(infos) == 2, 60), infos.keys()
        for name, cam in (("davis", geo.davis), ("ir", geo.ir)):
            msg = infos[name]
            assert (msg.width, msg.height) == (cam.width, cam.height)
            assert msg.distortion_model == "plumb_bob"
            np.testing.assert_allclose(np.asarray(msg.k).reshape(3, 3), cam.K)
            np.testing.assert_allclose(np.asarray(msg.d), cam.dist)
            np.testing.assert_allclose(np.asarray(msg.p).reshape(3, 4)[:, :3], cam.K)
    finally:
        node.destroy_node()
