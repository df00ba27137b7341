"""`evif simulate` end to end: the bag reads back with rosbags and mcap, the AEDAT4 with
dv-processing, and both hold the same events."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evif_ros.apps.cli import main
from evif_ros.runtime import topics
from evif_ros.runtime.events import merge_sorted
from evif_ros.runtime.msgs import events_from_msg, image_from_msg, stamp_to_ns
from evif_ros.sim.recording import read_events_aedat4


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    rc = main(["simulate", "--out", str(out), "--duration", "0.35", "--seed", "3",
               "--scenario", "day", "--preview", "--quiet"])
    assert rc == 0
    return out


def _read_bag(out: Path):
    from rosbags.highlevel import AnyReader
    by_topic = {}
    with AnyReader([out / "rig"]) as reader:
        for conn, t_log, raw in reader.messages():
            by_topic.setdefault(conn.topic, []).append(
                (t_log, reader.deserialize(raw, conn.msgtype)))
    return by_topic


def test_files_exist(recording):
    assert (recording / "rig.mcap").stat().st_size > 0
    assert (recording / "davis.aedat4").stat().st_size > 0
    assert (recording / "preview.png").stat().st_size > 0


def test_bag_has_design_topics_and_ground_truth(recording):
    bag = _read_bag(recording)
    for topic in (topics.EVENTS, topics.TRIGGERS, topics.APS, topics.IMU, topics.IR_IMAGE,
                  topics.IR_INFO, topics.GT_VISIBLE, topics.GT_IR):
        assert bag.get(topic), topic
    trig = [stamp_to_ns(m.header.stamp) for _, m in bag[topics.TRIGGERS]]
    gt = [stamp_to_ns(m.header.stamp) for _, m in bag[topics.GT_IR]]
    assert gt == trig  # GT stamped with the exposure start = trigger time
    ir = bag[topics.IR_IMAGE]
    assert all(m.encoding == "mono16" and (m.width, m.height) == (320, 256) for _, m in ir)
    # IR frames arrive after their exposure ends
    for (_, m), t0 in zip(ir, trig):
        assert stamp_to_ns(m.header.stamp) > t0 + 25_000_000
    vis = image_from_msg(bag[topics.GT_VISIBLE][0][1])
    assert vis.shape == (260, 346) and vis.dtype == np.uint8



def test_messages_are_written_in_log_time_order(recording):
    """In the order they sit in the file (read by the mcap library, not merged by time),
    log times never go back: a player streaming the file plays it in order."""
    from mcap.reader import make_reader
    with open(recording / "rig.mcap", "rb") as f:
        log_times = [m.log_time for _, _, m in make_reader(f).iter_messages(
            log_time_order=False)]
    assert len(log_times) > 50 and log_times[0] >= 1_000_000_000
    assert all(b >= a for a, b in zip(log_times, log_times[1:]))


def test_mcap_library_reads_the_bag(recording):
    from mcap.reader import make_reader
    with open(recording / "rig.mcap", "rb") as f:
        summary = make_reader(f).get_summary()
    names = {c.topic for c in summary.channels.values()}
    assert topics.EVENTS in names and topics.IR_IMAGE in names
    assert summary.statistics.message_count > 50


def test_aedat4_matches_bag_events(recording):
    events, res = read_events_aedat4(recording / "davis.aedat4")
    assert res == (346, 260)
    assert events.size > 10_000
    assert np.all(np.diff(events["t"]) >= 0)
    bag = _read_bag(recording)
    from_bag = merge_sorted(*[events_from_msg(m) for _, m in bag[topics.EVENTS]])
    np.testing.assert_array_equal(from_bag["t"], events["t"])
    np.testing.assert_array_equal(from_bag["x"], events["x"])


def test_aedat4_has_triggers_frames_and_imu(recording):
    import dv_processing as dv
    rec = dv.io.MonoCameraRecording(str(recording / "davis.aedat4"))
    assert rec.isTriggerStreamAvailable() and rec.isFrameStreamAvailable()
    assert rec.isImuStreamAvailable()
    trig = rec.getNextTriggerBatch()
    assert trig is not None and len(trig) >= 5
    frame = rec.getNextFrame()
    assert frame.image.shape[:2] == (260, 346)


def test_bad_arguments_give_one_line_errors(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path), "--scenario", "moon", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "moon" in err
    assert main(["simulate", "--out", str(tmp_path), "--duration", "0", "--quiet"]) == 2


def test_console_script_is_installed(tmp_path):
    exe = shutil.which("evif") or str(Path(sys.executable).parent / "evif")
    res = subprocess.run([exe, "simulate", "--out", str(tmp_path), "--scenario", "moon"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "moon" in res.stderr


def test_contrast_threshold_of_the_simulated_sensor_from_its_bag_and_aedat4(recording,
                                                                           capsys):
    """`evif contrast` on the rig's own recordings (the rosbag2 through rosbags, the AEDAT4
    through dv-processing) finds the threshold the simulated sensor was given."""
    from evif_ros.sim.rig import RigConfig

    truth = RigConfig().dvs.c_on
    for rec in (recording / "rig", recording / "davis.aedat4"):
        assert main(["contrast", str(rec)]) == 0
        out = capsys.readouterr().out
        c = float(out.split("contrast threshold ")[1].split()[0])
        assert abs(c - truth) < 0.1 * truth, (rec, out)
