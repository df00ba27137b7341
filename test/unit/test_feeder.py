"""The feeder's binning as packets arrive: every window that comes out with grids has
exactly the grids of its own events (the per-window voxelizer, itself checked per event in
test_voxel.py), whatever the interleaving; buffers are reused and never shared."""

import dataclasses
import gc

import numpy as np
from test_sync import LAT, E, make_stream

from evif_ros.paths import share_file
from evif_ros.runtime.calibration import load_calibration
from evif_ros.runtime.events import make_events
from evif_ros.runtime.feeder import WindowFeeder
from evif_ros.runtime.voxel import window_voxels

K = 4


def calib(offset_ns=0):
    c = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    return dataclasses.replace(c, ir_exposure_ns=E, ir_latency_ns=LAT, time_offset_ns=offset_ns)


def feed(feeder, items, offset_ns=0, keep=True):
    """Feed a make_stream interleaving; frames carry their trigger time in pixel (0, 0)."""
    w, h = feeder.calib.ir_size
    out = []
    for _, kind, payload in items:
        if kind == "events":
            got = feeder.events(payload)
        elif kind == "trigger":
            got = feeder.trigger(payload)
        else:
            image = np.zeros((h, w), np.int64)
            image[0, 0] = payload[0]
            got = feeder.frame(image, payload[1] - offset_ns)
        for win in got:
            check(win)
        if keep:
            out += got
    return out


def check(win):
    """A window's grids equal those of its own events, checked while it is alive."""
    assert win.image[0, 0] == win.t_start_ns  # paired with its own frame
    if win.grids is None:
        return
    h, w = win.grids[0].shape[1:]
    exp, subs = window_voxels(win.events, win.t_start_ns, win.exposure_ns,
                              win.recon_edges_ns, h, w)
    np.testing.assert_array_equal(win.grids[0], exp)
    np.testing.assert_array_equal(win.grids[1], subs)
    assert exp.sum() > 0  # the stream has events in every exposure


def test_prebinned_grids_equal_the_windows_own_in_natural_order():
    _, items, trig, _ = make_stream(seed=1)
    feeder = WindowFeeder(calib(), K, prebin=True)
    windows = feed(feeder, items, keep=False)  # each released after its check
    assert windows == []
    assert feeder.sync.stats.windows == len(trig)
    # the trigger comes before its exposure's events: every window was binned as it came
    assert feeder.prebinned == len(trig)
    assert feeder._made <= 3  # buffers came back and were reused


def test_prebinned_grids_with_duplicates_reordering_and_a_time_offset():
    offset = 7_000_000_000
    _, items, trig, _ = make_stream(seed=2)
    rng = np.random.default_rng(5)
    # packets delayed by up to 20 ms, triggers by 10 or 120 ms (after their frame and
    # exposure: such a window comes out at once, binned then), every message twice
    late = {int(t) for t in trig[::3]}
    delayed = [(t + (120_000_000 if k == "trigger" and p in late else 10_000_000
                     if k == "trigger" else int(rng.integers(0, 20_000_000))), k, p)
               for t, k, p in items]
    delayed.sort(key=lambda it: it[0])
    doubled = [it for it in delayed for _ in range(2)]
    feeder = WindowFeeder(calib(offset), K, prebin=True, reorder_slack_ns=25_000_000)
    feed(feeder, doubled, offset, keep=False)
    s = feeder.sync.stats
    assert s.duplicate_packets > 0 and s.out_of_order_packets > 0
    assert s.windows >= len(trig) - 1
    assert len(trig) - len(late) - 1 <= feeder.prebinned <= len(trig) - len(late)


def test_windows_kept_alive_hold_their_buffers_and_the_rest_fall_back():
    _, items, trig, _ = make_stream(seed=3)
    feeder = WindowFeeder(calib(), K, prebin=True, max_grids=4)
    windows = feed(feeder, items, keep=True)  # every window kept: no buffer comes back
    assert len(windows) == len(trig)
    with_grids = [w for w in windows if w.grids is not None]
    assert 0 < len(with_grids) <= 4 and feeder._made == 4
    for w in windows:  # none was overwritten by a later window
        check(w)
    del windows, with_grids, w
    gc.collect()
    assert len(feeder._pool) + len(feeder._open) == 4


def test_prebinned_grids_of_a_window_in_three_reconstruction_steps():
    """A 10 Hz camera's window (100 ms of events before mid-exposure) cut into three
    steps of K sub-windows each, as the node's runner asks (EvifRunner.sub_windows_for):
    binned as the packets arrive, the 3 K grids are the window's own."""
    _, items, trig, _ = make_stream(seed=2, duration_ns=500_000_000)
    feeder = WindowFeeder(calib(), 3 * K, prebin=True, max_grids=16, recon_span_ns=100_000_000)
    windows = feed(feeder, items)
    assert windows and feeder.prebinned == len(windows)
    for win in windows:
        assert win.grids[1].shape[0] == 3 * K
        assert win.recon_edges_ns[-1] - win.recon_edges_ns[0] == 100_000_000
    assert any(win.grids[1][:K].sum() > 0 for win in windows)  # the first step's events


def test_without_prebin_windows_carry_no_grids():
    _, items, _, _ = make_stream(seed=4, duration_ns=300_000_000)
    feeder = WindowFeeder(calib(), K)
    windows = feed(feeder, items)
    assert windows and all(w.grids is None for w in windows)


def test_a_clock_reset_drops_the_open_grids():
    _, items, _, _ = make_stream(seed=6, duration_ns=400_000_000)
    feeder = WindowFeeder(calib(), K, prebin=True)
    cut = len(items) // 2
    feed(feeder, items[:cut], keep=False)
    assert feeder._open  # exposures under way
    # the camera restarts: three packets on a clock 100 s back
    for i in range(3):
        t = 100 + i * 1000
        feeder.events(make_events([1], [1], [t], [1]))
    assert feeder.sync.stats.resets == 1
    feeder.trigger(5_000)
    assert list(feeder._open) == [5_000]  # the old clock's grids are gone


def test_event_latency_takes_each_exposures_events_that_much_later():
    """davis_latency_ns = L: the window of the exposure starting at trigger t0 holds the
    events stamped in [t0 + L, t0 + E + L) (hand-sliced from the input stream), on the
    scene's clock (L earlier), prebinned or not; the caller's packets are left alone."""
    lat = 6_000_000
    ev, items, trig, _ = make_stream(seed=4)
    before = ev["t"].copy()
    for prebin in (False, True):
        feeder = WindowFeeder(dataclasses.replace(calib(), davis_latency_ns=lat), K,
                              prebin=prebin)
        windows = feed(feeder, items)
        assert len(windows) == len(trig)
        for win in windows:
            t0 = win.t_start_ns
            want = ev[(ev["t"] >= t0 + lat) & (ev["t"] < t0 + E + lat)]
            got = win.events[(win.events["t"] >= t0) & (win.events["t"] < t0 + E)]
            np.testing.assert_array_equal(got["t"], want["t"] - lat)
            np.testing.assert_array_equal(got["x"], want["x"])
    np.testing.assert_array_equal(ev["t"], before)
