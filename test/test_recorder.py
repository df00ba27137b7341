"""`evif record` keeps every message sent after it started: a burst right after start, both
QoS kinds, and a bag that is complete after Ctrl-C, a double Ctrl-C or SIGTERM."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Imu, PointCloud2

from evif_ros import topics
from evif_ros.bags import open_bag
from evif_ros.core.events import make_events
from evif_ros.msgs import MsgTypes

pytestmark = pytest.mark.timeout(180)
EVIF = str(Path(sys.executable).parent / "evif")
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2000,
                      reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2000,
                         reliability=ReliabilityPolicy.BEST_EFFORT)


def start_recorder(out: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as f:
        proc = subprocess.Popen([EVIF, "record", "--out", str(out)], stdout=f,
                                stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while f"recording {topics.IMU}" not in log.read_text():
        assert proc.poll() is None and time.monotonic() - t0 < 60, log.read_text()
        time.sleep(0.05)
    return proc


def wait_matched(node, pubs, timeout=30.0) -> None:
    t0 = time.monotonic()
    while not all(p.get_subscription_count() >= 1 for p in pubs):
        assert time.monotonic() - t0 < timeout, "recorder never matched"
        rclpy.spin_once(node, timeout_sec=0.05)


def counts(bag: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    with open_bag(bag) as reader:
        for conn, _, _ in reader.messages():
            out[conn.topic] = out.get(conn.topic, 0) + 1
    return out


@pytest.mark.parametrize("stop", ["sigint", "sigint-twice", "sigterm"])
def test_recorder_keeps_everything_sent_after_start(ros, tmp_path, stop):
    out = tmp_path / "bag"
    proc = start_recorder(out, tmp_path / "rec.log")
    node = rclpy.create_node("burst_publisher")
    mt = MsgTypes.rclpy()
    try:
        imu = node.create_publisher(Imu, topics.IMU, RELIABLE)  # as `evif replay` offers
        aps_like = node.create_publisher(Imu, topics.IMU, BEST_EFFORT)  # as the drivers do
        events = node.create_publisher(PointCloud2, topics.EVENTS, RELIABLE)
        wait_matched(node, (imu, aps_like, events))
        for i in range(1000):  # a burst, no pause: deeper than any sensor-data queue
            imu.publish(mt.imu(10**9 + i * 10**6, "davis", (0.0, 0.0, 0.0), (0.0, 0.0, 9.8)))
        for i in range(50):
            aps_like.publish(mt.imu(2 * 10**9 + i * 10**7, "davis", (0.0,) * 3, (0.0,) * 3))
            time.sleep(0.005)
        rng = np.random.default_rng(0)
        for i in range(40):  # 10k-event packets (90 KB), as davis_driver cuts them
            t = 3 * 10**9 + i * 10**7 + np.sort(rng.integers(0, 10**7, 10_000))
            ev = make_events(rng.integers(0, 346, t.size), rng.integers(0, 260, t.size), t,
                             rng.integers(0, 2, t.size))
            events.publish(mt.events(ev, "davis"))
        end = time.monotonic() + 2.0
        while time.monotonic() < end:  # let reliable retransmissions finish
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
    if stop == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGINT)
        if stop == "sigint-twice":
            time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
    rc = proc.wait(60)
    log = (tmp_path / "rec.log").read_text()
    assert rc == 0 and "Traceback" not in log, log
    got = counts(out)
    assert got.get(topics.IMU) == 1050, got  # 1000 reliable + 50 best effort, none twice
    assert got.get(topics.EVENTS) == 40, got


def test_bag_of_a_killed_recorder_replays_up_to_its_last_chunk(ros, tmp_path):
    """SIGKILL leaves no metadata.yaml and no mcap footer; what reached the disk (every
    full 1 MiB chunk) is still read, by the reader and by `evif replay`."""
    out = tmp_path / "bag"
    proc = start_recorder(out, tmp_path / "rec.log")
    node = rclpy.create_node("kill_publisher")
    mt = MsgTypes.rclpy()
    sent = []
    try:
        events = node.create_publisher(PointCloud2, topics.EVENTS, RELIABLE)
        wait_matched(node, (events,))
        rng = np.random.default_rng(1)
        for i in range(40):  # 40 x 90 KB: three full chunks and an open one
            t = 10**9 + i * 10**7 + np.sort(rng.integers(0, 10**7, 10_000))
            sent.append(make_events(rng.integers(0, 346, t.size), rng.integers(0, 260, t.size),
                                    t, rng.integers(0, 2, t.size)))
            events.publish(mt.events(sent[-1], "davis"))
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
    proc.kill()
    proc.wait(30)
    assert not (out / "metadata.yaml").exists()  # the precondition: a cut-short bag
    from evif_ros.msgs import events_from_msg
    with open_bag(out) as reader:
        got = [events_from_msg(reader.deserialize(raw, c.msgtype))
               for c, _, raw in reader.messages() if c.topic == topics.EVENTS]
    assert 3 * 11 <= len(got) < 40, len(got)  # >= 11 packets per full 1 MiB chunk
    by_start = {int(p["t"][0]): p for p in sent}
    assert len({int(p["t"][0]) for p in got}) == len(got)  # none twice
    for packet in got:  # each one intact (a retransmitted one may sit later in the file)
        np.testing.assert_array_equal(packet, by_start[int(packet["t"][0])])
    res = subprocess.run([EVIF, "replay", str(out), "--delay", "0"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and f"replayed {len(got)} messages" in res.stdout, res.stderr
    assert "cut short" in res.stderr and "Traceback" not in res.stderr
