"""`evif record` / `evif replay` over DDS, and libcaer_driver bags."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evif_ros import topics
from evif_ros.bags import EVENT_PACKET, events_from_any, open_bag, typestore
from evif_ros.core import wire
from evif_ros.core.events import make_events, merge_sorted
from evif_ros.errors import LayoutError
from evif_ros.sim.recording import simulate_recording
from evif_ros.sim.rig import RigConfig

pytestmark = pytest.mark.timeout(240)
EVIF = str(Path(sys.executable).parent / "evif")


def read_topic_events(bag):
    chunks = []
    with open_bag(bag) as reader:
        for conn, _, raw in reader.messages():
            if conn.topic == topics.EVENTS or conn.msgtype == EVENT_PACKET:
                chunks.append(events_from_any(reader.deserialize(raw, conn.msgtype),
                                              conn.msgtype, conn.topic))
    return merge_sorted(*chunks)


def topic_counts(bag):
    with open_bag(bag) as reader:
        return {c.topic: c.msgcount for c in reader.connections}


def record_while(out, duration, replay_args):
    rec = subprocess.Popen([EVIF, "record", "--out", str(out), "--duration", str(duration)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(3.0)  # recorder up and discovering
    rep = subprocess.run([EVIF, "replay", *replay_args], capture_output=True, text=True,
                         timeout=120)
    out_text, _ = rec.communicate(timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert rec.returncode == 0, out_text
    return rep.stdout, out_text


def test_replay_then_record_round_trip(tmp_path):
    sim = tmp_path / "sim"
    simulate_recording(sim, 0.3, RigConfig(scenario="day", seed=2), progress=False)
    out = tmp_path / "rec"
    rep_out, rec_out = record_while(out, 9, [str(sim / "rig.mcap"), "--rate", "1.0"])
    assert "replayed" in rep_out
    original, copy = topic_counts(sim / "rig"), topic_counts(out)
    for topic in (topics.EVENTS, topics.TRIGGERS, topics.IR_IMAGE, topics.GT_IR):
        assert copy.get(topic) == original[topic], (topic, copy, rec_out)
    assert copy.get(topics.CLOCK, 0) > 0
    np.testing.assert_array_equal(read_topic_events(out), read_topic_events(sim / "rig"))


def write_libcaer_bag(path, events, packet=2000):
    from rosbags.rosbag2 import StoragePlugin, Writer
    store = typestore()
    EventPacket = store.types[EVENT_PACKET]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection("/event_camera/events", EVENT_PACKET, typestore=store)
        for i in range(0, events.size, packet):
            ev = events[i:i + packet]
            base = int(ev["t"][0])
            msg = EventPacket(header=Header(stamp=Time(sec=base // 10**9, nanosec=base % 10**9),
                                            frame_id="cam"),
                              height=260, width=346, seq=i, time_base=base, encoding="libcaer",
                              is_bigendian=False, events=wire.encode_libcaer(ev, base))
            w.write(conn, int(ev["t"][-1]), store.serialize_cdr(msg, EVENT_PACKET))


def _events(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(2 * 10**9, 2 * 10**9 + 5 * 10**8, n)) // 1000 * 1000
    return make_events(rng.integers(0, 346, n), rng.integers(0, 260, n), t, rng.integers(0, 2, n))


def test_libcaer_bag_reads_offline(tmp_path):
    ev = _events()
    write_libcaer_bag(tmp_path / "lc", ev)
    np.testing.assert_array_equal(read_topic_events(tmp_path / "lc"), ev)


def test_libcaer_bag_replays_as_pointcloud_events(tmp_path):
    ev = _events(seed=1)
    write_libcaer_bag(tmp_path / "lc", ev)
    out = tmp_path / "rec"
    record_while(out, 8, [str(tmp_path / "lc"), "--rate", "1.0"])
    got = read_topic_events(out)
    np.testing.assert_array_equal(got, ev)


def test_unsupported_event_packet_encoding_is_a_clear_error():
    class Msg:
        encoding, is_bigendian, events, time_base = "evt3", False, b"", 0
    with pytest.raises(LayoutError, match="evt3"):
        events_from_any(Msg(), EVENT_PACKET, "/event_camera/events")


def test_replay_of_missing_bag_is_one_line(tmp_path):
    res = subprocess.run([EVIF, "replay", str(tmp_path / "nope")], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "nope" in res.stderr and "Traceback" not in res.stderr
