"""`evif record` keeps every message sent after it started: a burst right after start, both
QoS kinds, and a bag that is complete after Ctrl-C, a double Ctrl-C or SIGTERM."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Imu, PointCloud2

from evif_ros.ros.bags import open_bag
from evif_ros.ros.nodes.common import rclpy_msgs
from evif_ros.runtime import topics
from evif_ros.runtime.events import make_events

pytestmark = pytest.mark.timeout(180)
EVIF = str(Path(sys.executable).parent / "evif")
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2000,
                      reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2000,
                         reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.fixture
def spawned():
    """Processes a test starts; killed at teardown if a failed assertion left them running
    (a stray recorder takes every later burst too, and CPU)."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def start_recorder(out: Path, log: Path, spawned: list) -> subprocess.Popen:
    with open(log, "w") as f:
        proc = subprocess.Popen([EVIF, "record", "--out", str(out)], stdout=f,
                                stderr=subprocess.STDOUT)
    spawned.append(proc)
    t0 = time.monotonic()
    while f"recording {topics.IMU}" not in log.read_text():
        assert proc.poll() is None and time.monotonic() - t0 < 60, log.read_text()
        time.sleep(0.05)
    return proc


def wait_matched(node, pubs, timeout=30.0) -> None:
    """Until every publisher sees the recorder's subscriptions: both of them for a reliable
    publisher (a best-effort subscription matches it too, and a burst that only it takes is
    lost in part), the best-effort one for a best-effort publisher."""
    t0 = time.monotonic()
    want = [2 if p.qos_profile.reliability == ReliabilityPolicy.RELIABLE else 1 for p in pubs]
    while not all(p.get_subscription_count() >= n for p, n in zip(pubs, want)):
        assert time.monotonic() - t0 < timeout, "recorder never matched"
        rclpy.spin_once(node, timeout_sec=0.05)


def wait_recorder_matched(log: Path, want: dict[tuple[str, str], int], timeout=30.0) -> None:
    """Until the recorder's side has matched too (its log says so): what a best-effort
    publisher sends before that is dropped by the subscriber's DDS reader."""
    def matched(topic: str, kind: str) -> int:
        found = re.findall(rf"{topic}: {kind} subscription matched (\d+) publisher",
                           log.read_text())
        return int(found[-1]) if found else 0
    t0 = time.monotonic()
    while not all(matched(t, k) >= n for (t, k), n in want.items()):
        assert time.monotonic() - t0 < timeout, log.read_text()
        time.sleep(0.05)


def imu_stamps(bag: Path) -> list[int]:
    """Header stamps (ns) of the bag's IMU messages, in file order."""
    with open_bag(bag) as reader:
        msgs = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()
                if c.topic == topics.IMU]
    return [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in msgs]


def counts(bag: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    with open_bag(bag) as reader:
        for conn, _, _ in reader.messages():
            out[conn.topic] = out.get(conn.topic, 0) + 1
    return out


@pytest.mark.parametrize("stop", ["sigint", "sigint-twice", "sigterm"])
def test_recorder_keeps_everything_sent_after_start(ros, tmp_path, stop, spawned):
    out = tmp_path / "bag"
    proc = start_recorder(out, tmp_path / "rec.log", spawned)
    node = rclpy.create_node("burst_publisher")
    mt = rclpy_msgs()
    try:
        # one of the recorder's two subscriptions is incompatible with each publisher by
        # design: no warning for it
        quiet = PublisherEventCallbacks(incompatible_qos=lambda _event: None)
        imu = node.create_publisher(Imu, topics.IMU, RELIABLE,  # as `evif replay` offers
                                    event_callbacks=quiet)
        aps_like = node.create_publisher(Imu, topics.IMU, BEST_EFFORT,  # as the drivers do
                                         event_callbacks=quiet)
        events = node.create_publisher(PointCloud2, topics.EVENTS, RELIABLE,
                                       event_callbacks=quiet)
        wait_matched(node, (imu, aps_like, events))
        wait_recorder_matched(tmp_path / "rec.log", {
            (topics.IMU, "best-effort"): 2, (topics.IMU, "reliable"): 1,
            (topics.EVENTS, "reliable"): 1})
        # best effort first, paced like a sensor: a best-effort sample that meets a full
        # transport queue (the burst below) is gone by design, and no recorder can help that
        for i in range(50):
            aps_like.publish(mt.imu(2 * 10**9 + i * 10**7, "davis", (0.0,) * 3, (0.0,) * 3))
            time.sleep(0.005)
        for i in range(1000):  # a burst, no pause: deeper than Fast DDS's shared-memory queue
            imu.publish(mt.imu(10**9 + i * 10**6, "davis", (0.0, 0.0, 0.0), (0.0, 0.0, 9.8)))
        rng = np.random.default_rng(0)
        for i in range(40):  # 10k-event packets (90 KB), as davis_driver cuts them
            t = 3 * 10**9 + i * 10**7 + np.sort(rng.integers(0, 10**7, 10_000))
            ev = make_events(rng.integers(0, 346, t.size), rng.integers(0, 260, t.size), t,
                             rng.integers(0, 2, t.size))
            events.publish(mt.events(ev, "davis"))
        # as `evif replay` ends: retransmissions repair what overflowed, until acknowledged
        for pub in (imu, events):
            assert pub.wait_for_all_acked(Duration(seconds=60)), "recorder never acknowledged"
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
    assert got.get(topics.EVENTS) == 40, got
    stamps = imu_stamps(out)
    assert len(stamps) == len(set(stamps)), "a message written twice"
    reliable = {t for t in stamps if t < 2 * 10**9}
    assert reliable == {10**9 + i * 10**6 for i in range(1000)}, (len(reliable), log)
    # best effort promises nothing: on a starved CPU (CI) DDS may drop one; not dozens
    assert len(stamps) - len(reliable) >= 45, (len(stamps) - len(reliable), log)


def test_bag_of_a_killed_recorder_replays_up_to_its_last_chunk(ros, tmp_path, spawned):
    """SIGKILL leaves no metadata.yaml and no mcap footer; what reached the disk (every
    full 1 MiB chunk) is still read, by the reader and by `evif replay`."""
    out = tmp_path / "bag"
    proc = start_recorder(out, tmp_path / "rec.log", spawned)
    node = rclpy.create_node("kill_publisher")
    mt = rclpy_msgs()
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
        assert events.wait_for_all_acked(Duration(seconds=60)), "recorder never acknowledged"
        time.sleep(2.0)  # received is not yet written: time to write it before the kill
    finally:
        node.destroy_node()
    proc.kill()
    proc.wait(30)
    assert not (out / "metadata.yaml").exists()  # the precondition: a cut-short bag
    from evif_ros.runtime.msgs import events_from_msg
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
    # recovered once for the whole replay (it used to be once per opening)
    assert res.stderr.count("cut short") == 1 and "Traceback" not in res.stderr
    # cut before its first complete chunk: nothing to replay is an error, not an exit 0
    stub = tmp_path / "stub"
    stub.mkdir()
    mcap = next(out.glob("*.mcap"))
    (stub / mcap.name).write_bytes(mcap.read_bytes()[:4000])
    res = subprocess.run([EVIF, "replay", str(stub), "--delay", "0"], capture_output=True,
                         text=True, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "nothing to read" in lines[0], lines
