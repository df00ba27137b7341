"""Exposure synchronizer: every event of an exposure delivered once, in any interleaving."""

import numpy as np
import pytest

from evif_ros.errors import ConfigError
from evif_ros.runtime.events import make_events, slice_time
from evif_ros.runtime.sync import ExposureSynchronizer, SyncConfig

E = 25_000_000
PERIOD = 33_333_000
LAT = (5_000_000, 15_000_000)


def make_stream(seed=0, duration_ns=1_000_000_000, rate_hz=300_000, packet_ns=2_000_000,
                missed=(), dropped=(), t0=10_000_000_000):
    """Events in packets, triggers, frames (with their true exposure start as image)."""
    rng = np.random.default_rng(seed)
    n = int(rate_hz * duration_ns * 1e-9)
    t = np.sort(rng.integers(t0, t0 + duration_ns, n))
    ev = make_events(rng.integers(0, 346, n), rng.integers(0, 260, n), t, rng.integers(0, 2, n))
    edges = np.arange(t0, t0 + duration_ns + packet_ns, packet_ns)
    idx = np.searchsorted(t, edges)
    packets = [ev[a:b] for a, b in zip(idx[:-1], idx[1:]) if b > a]
    items = [(int(p["t"][-1]), "events", p) for p in packets]
    trig_times = np.arange(t0 + 5_000_000, t0 + duration_ns - E - LAT[1] - 50_000_000, PERIOD)
    frames = []
    for j, tt in enumerate(trig_times):
        if j not in missed:
            items.append((int(tt), "trigger", int(tt)))
        if j not in dropped:
            host = int(tt) + E + int(rng.integers(LAT[0], LAT[1]))
            items.append((host, "frame", (int(tt), host)))
            frames.append((int(tt), host))
    items.sort(key=lambda it: it[0])
    return ev, items, trig_times, frames


def feed(sync, items):
    out = []
    for _, kind, payload in items:
        if kind == "events":
            out += sync.add_events(payload)
        elif kind == "trigger":
            out += sync.add_trigger(payload)
        else:
            out += sync.add_frame(payload[0], payload[1])
    return out


def cfg(**kw):
    base = dict(exposure_ns=E, latency_ns=LAT, sub_windows=4)
    base.update(kw)
    return SyncConfig(**base)


def check_windows(windows, ev, expected_starts):
    assert [w.t_start_ns for w in windows] == list(expected_starts)
    for w in windows:
        assert w.image == w.t_start_ns  # paired with its own frame
        expected = slice_time(ev, w.t_start_ns, w.t_start_ns + E)
        np.testing.assert_array_equal(w.exposure_events, expected)
        subs = w.sub_window_events()
        assert len(subs) == 4 and w.recon_edges_ns[-1] == w.mid_ns
        np.testing.assert_array_equal(np.concatenate(subs),
                                      slice_time(ev, w.recon_edges_ns[0], w.mid_ns))


def test_natural_order_delivers_every_exposure_event_once():
    ev, items, trig, _ = make_stream()
    sync = ExposureSynchronizer(cfg())
    windows = feed(sync, items)
    check_windows(windows, ev, trig)
    assert sync.stats.windows == len(trig) and sync.stats.unpaired_frames == 0


def test_missed_pulse_and_dropped_frame_do_not_shift_later_pairs():
    missed, dropped = {3, 11}, {6, 17}
    ev, items, trig, _ = make_stream(seed=1, missed=missed, dropped=dropped)
    sync = ExposureSynchronizer(cfg())
    windows = feed(sync, items)
    good = [t for j, t in enumerate(trig) if j not in missed | dropped]
    check_windows(windows, ev, good)
    # stragglers resolve once the clock moves on (in steps: one packet far ahead would be
    # an outlier)
    feed(sync, [(0, "events", make_events([0], [0], [int(ev["t"][-1]) + k * 10**9], [1]))
                for k in (1, 2, 3)])
    assert sync.stats.unpaired_frames == len(missed)
    assert sync.stats.orphan_triggers == len(dropped)


def test_triggers_after_frames_and_shuffled_arrivals():
    ev, items, trig, _ = make_stream(seed=2)
    rng = np.random.default_rng(5)
    # every message delayed by up to 20 ms; triggers by 60 ms (after their frames)
    delayed = [(t + (60_000_000 if k == "trigger" else int(rng.integers(0, 20_000_000))), k, p)
               for t, k, p in items]
    delayed.sort(key=lambda it: it[0])
    sync = ExposureSynchronizer(cfg(reorder_slack_ns=25_000_000))
    windows = feed(sync, delayed)
    feed(sync, [(0, "events", make_events([0], [0], [int(ev["t"][-1]) + 10**8], [1]))])
    check_windows(windows, ev, trig[:len(windows)])
    assert len(windows) >= len(trig) - 1
    assert sync.stats.out_of_order_packets > 0


def test_duplicates_are_dropped_and_counted():
    ev, items, trig, _ = make_stream(seed=3)
    doubled = []
    for it in items:
        doubled += [it, it]
    sync = ExposureSynchronizer(cfg())
    windows = feed(sync, doubled)
    check_windows(windows, ev, trig)
    s = sync.stats
    assert s.duplicate_packets == sum(1 for _, k, _ in items if k == "events")
    assert s.duplicate_triggers == len(trig) and s.duplicate_frames == len(trig)


def test_late_packet_is_counted():
    ev, items, trig, _ = make_stream(seed=4)
    # hold back one packet inside the 5th exposure until far later
    target = trig[4] + E // 2
    k = next(i for i, (t, kind, p) in enumerate(items)
             if kind == "events" and p["t"][0] <= target <= p["t"][-1])
    held = items.pop(k)
    later = next(i for i, it in enumerate(items) if it[0] > held[0] + 150_000_000)
    items.insert(later, (items[later][0], *held[1:]))
    sync = ExposureSynchronizer(cfg())
    windows = feed(sync, items)
    assert sync.stats.late_packets == 1
    w5 = windows[4]
    assert w5.exposure_events.size == slice_time(ev, trig[4], trig[4] + E).size - held[2].size \
        + slice_time(held[2], 0, trig[4]).size + slice_time(held[2], trig[4] + E, 2**62).size


def test_time_jump_backwards_resets():
    ev1, items1, trig1, _ = make_stream(seed=5, duration_ns=500_000_000)
    ev2, items2, trig2, _ = make_stream(seed=6, duration_ns=500_000_000, t0=3_000_000_000)
    sync = ExposureSynchronizer(cfg())
    w1 = feed(sync, items1)
    w2 = feed(sync, items2)
    assert sync.stats.resets == 1
    check_windows(w1, ev1, trig1)
    check_windows(w2, ev2, trig2)


def test_empty_window_is_emitted_and_counted():
    ev, items, trig, _ = make_stream(seed=7)
    lo, hi = trig[2] - 5_000_000, trig[2] + E + 5_000_000
    items = [it for it in items if it[1] != "events" or not (lo <= it[2]["t"][0] < hi)]
    sync = ExposureSynchronizer(cfg())
    windows = feed(sync, items)
    assert [w.t_start_ns for w in windows] == list(trig)
    assert windows[2].exposure_events.size == 0 and sync.stats.empty_windows == 1


def test_buffers_stay_bounded_under_a_flood():
    rng = np.random.default_rng(8)
    sync = ExposureSynchronizer(cfg(max_events=3_000_000, buffer_ns=200_000_000))
    t = 1_000_000_000
    peak = 0
    for _ in range(200):  # 200 x 1 ms packets of 100 k events: 100 MEv/s, no frames
        ts = np.sort(rng.integers(t, t + 1_000_000, 100_000))
        sync.add_events(make_events(np.zeros_like(ts), np.zeros_like(ts), ts,
                                    np.ones_like(ts)))
        t += 1_000_000
        peak = max(peak, sync.buffer.count)
    assert peak <= 3_100_000
    assert sync.stats.overflow_events > 0
    for j in range(500):  # frames without triggers never pile up
        sync.add_frame(None, t + j)
    assert len(sync.frames) <= sync.cfg.max_pending


def test_bad_config_is_rejected():
    with pytest.raises(ConfigError, match="latency"):
        SyncConfig(latency_ns=(5, 1))
    with pytest.raises(ConfigError, match="exposure"):
        SyncConfig(exposure_ns=0)


def test_triggers_running_ahead_of_an_event_backlog_do_not_cut_windows_short():
    ev, items, trig, _ = make_stream(seed=9)
    # all triggers and frames first, then the events (a backlog on the events topic)
    front = [it for it in items if it[1] != "events"]
    back = [it for it in items if it[1] == "events"]
    sync = ExposureSynchronizer(cfg(frame_timeout_ns=10_000_000))
    early = feed(sync, front[:3])
    assert early == []
    windows = feed(sync, front[3:] + back)
    check_windows(windows, ev, trig)


def _with_outliers(items, every=10):
    """One far-off stamp per ``every`` packets (stale and future in turn) and a stale
    trigger now and then, as a corrupt driver or bag would produce; returns the items and
    how many bad packets and triggers went in."""
    out, n, bad_triggers = [], 0, 0
    for it in items:
        out.append(it)
        if it[1] == "events":
            n += 1
            if n % every == 0:
                shift = -30 * 10**9 if (n // every) % 2 else 60 * 10**9
                p = it[2].copy()
                p["t"] += shift
                out.append((it[0], "events", p))
            if n % (3 * every) == 0:
                out.append((it[0], "trigger", it[0] - 20 * 10**9))
                bad_triggers += 1
    return out, n // every, bad_triggers


def test_single_outliers_are_dropped_and_counted_not_a_reset():
    ev, items, trig, _ = make_stream(seed=8)
    sync = ExposureSynchronizer(cfg())
    noisy, bad_packets, bad_triggers = _with_outliers(items)
    t_end = int(ev["t"][-1])
    noisy.append((t_end, "events", make_events([1], [1], [t_end + 1], [0])))  # a clean tail
    noisy.append((t_end, "trigger", t_end + 2))
    windows = feed(sync, noisy)
    check_windows(windows, ev, trig)  # every window, as without the outliers
    assert sync.stats.resets == 0
    assert bad_packets >= 40 and bad_triggers >= 10
    assert sync.stats.outlier_packets == bad_packets
    assert sync.stats.outlier_triggers == bad_triggers


def test_a_sustained_jump_is_a_reset_that_keeps_the_new_data():
    """A bag that loops: after ``jump_confirm`` packets on the new clock the synchronizer
    resets and takes them; nothing of the second pass is lost."""
    ev1, items1, trig1, _ = make_stream(seed=9, duration_ns=500_000_000)
    ev2, items2, trig2, _ = make_stream(seed=9, duration_ns=500_000_000, t0=9_000_000_000)
    sync = ExposureSynchronizer(cfg())
    w1 = feed(sync, items1)
    w2 = feed(sync, items2)
    assert sync.stats.resets == 1 and sync.stats.outlier_packets == 0
    check_windows(w1, ev1, trig1)
    check_windows(w2, ev2, trig2)
