"""`evif record` / `evif replay` over DDS, and libcaer_driver bags."""

import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evif_ros.errors import LayoutError
from evif_ros.ros.bags import EVENT_PACKET, events_from_any, open_bag
from evif_ros.runtime import topics
from evif_ros.runtime.events import make_events, merge_sorted
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


def record_while(out, replay_args):
    """`evif record` around one `evif replay`: the replay starts once the recorder has
    subscribed (its log says so, and the replay sees it), and the recorder gets Ctrl-C a
    second after the replay ends."""
    rec = subprocess.Popen([EVIF, "record", "--out", str(out)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    head = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        line = rec.stdout.readline()
        head.append(line)
        if f"recording {topics.TRIGGERS}" in line or not line:
            break
    # the replay holds until it has discovered the recorder's subscriptions
    rep = subprocess.run([EVIF, "replay", *replay_args, "--wait-for", "evif_recorder"],
                         capture_output=True, text=True, timeout=120)
    time.sleep(1.0)
    rec.send_signal(signal.SIGINT)
    out_text, _ = rec.communicate(timeout=120)
    out_text = "".join(head) + out_text
    assert rep.returncode == 0, rep.stderr
    assert rec.returncode == 0, out_text
    return rep.stdout, out_text


def test_replay_then_record_round_trip(tmp_path):
    sim = tmp_path / "sim"
    simulate_recording(sim, 0.3, RigConfig(scenario="day", seed=2), progress=False)
    out = tmp_path / "rec"
    rep_out, rec_out = record_while(out, [str(sim / "rig.mcap"), "--rate", "1.0"])
    assert "replayed" in rep_out
    original, copy = topic_counts(sim / "rig"), topic_counts(out)
    for topic in (topics.EVENTS, topics.TRIGGERS, topics.IR_IMAGE, topics.GT_IR):
        assert copy.get(topic) == original[topic], (topic, copy, rec_out)
    assert copy.get(topics.CLOCK, 0) > 0
    np.testing.assert_array_equal(read_topic_events(out), read_topic_events(sim / "rig"))


# ros-event-camera/event_camera_msgs, msg_ros2/EventPacket.msg (upstream, verbatim)
UPSTREAM_EVENT_PACKET = """std_msgs/Header header
uint32 height
uint32 width
uint64 seq
uint64 time_base
string encoding
bool is_bigendian
uint8[] events
"""
ROLLOVER_US = 1 << 31  # libcaer: 31-bit microsecond sensor clock
T0_NS = 1_700_000_000 * 10**9  # host time when the driver started


def libcaer_payload(ev, sensor_us):
    """8 bytes per event as libcaer's polarity.h lays them out: uint32 data (bit 0 valid,
    bit 1 polarity, y from bit 2, x from bit 17), int32 low 31 bits of the sensor clock."""
    rec = np.zeros(ev.size, dtype=[("data", "<u4"), ("ts", "<i4")])
    rec["data"] = (1 + 2 * ev["p"].astype(np.uint32) + 4 * ev["y"].astype(np.uint32)
                   + 131072 * ev["x"].astype(np.uint32))
    rec["ts"] = sensor_us % ROLLOVER_US
    return rec.tobytes()


def cdr_event_packet(stamp_ns, seq, time_base, payload) -> bytes:
    """An EventPacket in CDR (little endian), written field by field from the upstream
    definition: nothing here comes from the package's typestore."""
    out = bytearray(b"\x00\x01\x00\x00")

    def put(fmt, *values):
        out.extend(b"\x00" * (-(len(out) - 4) % struct.calcsize(fmt)))  # CDR alignment
        out.extend(struct.pack("<" + fmt, *values))

    def string(text):
        data = text.encode() + b"\x00"
        put("I", len(data))
        out.extend(data)
    put("i", stamp_ns // 10**9)
    put("I", stamp_ns % 10**9)
    string("davis")
    put("I", 260)  # height
    put("I", 346)  # width
    put("Q", seq)
    put("Q", time_base)
    string("libcaer")
    put("?", False)
    put("I", len(payload))
    out.extend(payload)
    return bytes(out)


def write_libcaer_bag(path, events, packet=2000, storage="mcap"):
    """A libcaer_driver-style bag of ``events`` (t = T0_NS + sensor clock). mcap stores the
    upstream message definition; the sqlite3 variant is stripped of definitions, as bags
    from before ROS 2 Iron are, so the reader has to bring its own."""
    import sqlite3

    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    upstream = get_typestore(Stores.ROS2_KILTED)
    upstream.register(get_types_from_msg(UPSTREAM_EVENT_PACKET, EVENT_PACKET))
    msgdef, _ = upstream.generate_msgdef(EVENT_PACKET, ros_version=2)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    sensor_us = (events["t"] - T0_NS) // 1000
    with Writer(path, version=9, storage_plugin=plugin) as w:
        conn = w.add_connection("/event_camera/events", EVENT_PACKET, msgdef=msgdef,
                                rihs01=upstream.hash_rihs01(EVENT_PACKET))
        for i in range(0, events.size, packet):
            ev, us = events[i:i + packet], sensor_us[i:i + packet]
            # time_base = start time + the high bits of the elapsed sensor time
            base = T0_NS + int(us[0]) // ROLLOVER_US * ROLLOVER_US * 1000
            w.write(conn, int(ev["t"][-1]),
                    cdr_event_packet(int(ev["t"][0]), i // packet, base,
                                     libcaer_payload(ev, us)))
    if storage == "sqlite3":
        db = sqlite3.connect(next(Path(path).glob("*.db3")))
        db.execute("DELETE FROM message_definitions")
        db.commit()
        db.close()


def _events(n=20_000, seed=0):
    """Events across a rollover of the 31-bit sensor clock (at 2^31 us)."""
    rng = np.random.default_rng(seed)
    us = np.sort(rng.integers(ROLLOVER_US - 250_000, ROLLOVER_US + 250_000, n))
    return make_events(rng.integers(0, 346, n), rng.integers(0, 260, n),
                       T0_NS + us * 1000, rng.integers(0, 2, n))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_libcaer_bag_reads_offline(tmp_path, storage):
    ev = _events()
    write_libcaer_bag(tmp_path / "lc", ev, storage=storage)
    with open_bag(tmp_path / "lc") as reader:  # the precondition of each variant
        assert (reader.connections[0].msgdef.data != "") == (storage == "mcap")
    got = read_topic_events(tmp_path / "lc")
    np.testing.assert_array_equal(got, ev)
    assert np.all(np.diff(got["t"]) >= 0)
    assert (got["t"] > T0_NS + ROLLOVER_US * 1000).sum() == (ev["t"] > T0_NS + ROLLOVER_US
                                                              * 1000).sum() > 0
    assert int(got["p"].sum()) == int(ev["p"].sum())


def test_libcaer_bag_replays_as_pointcloud_events(tmp_path):
    ev = _events(seed=1)
    write_libcaer_bag(tmp_path / "lc", ev, storage="sqlite3")
    out = tmp_path / "rec"
    record_while(out, [str(tmp_path / "lc"), "--rate", "1.0"])
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
