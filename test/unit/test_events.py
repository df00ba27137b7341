import numpy as np
import pytest

from evif_ros.errors import LayoutError
from evif_ros.runtime.events import (
    EVENT_DTYPE,
    TimeWindow,
    check_events,
    make_events,
    merge_sorted,
    slice_time,
    split_windows,
    time_shifted,
)


def _events(ts):
    n = len(ts)
    return make_events(np.arange(n) % 346, np.arange(n) % 260, ts, np.arange(n) % 2)


def test_slice_time_is_half_open_view():
    ev = _events([0, 10, 20, 20, 30, 40])
    s = slice_time(ev, 10, 30)
    assert list(s["t"]) == [10, 20, 20]
    assert np.shares_memory(s, ev)


def test_split_windows_partitions_every_event_once():
    rng = np.random.default_rng(1)
    ev = _events(np.sort(rng.integers(0, 1000, 500)))
    edges = TimeWindow(0, 1000).split(7)
    parts = split_windows(ev, edges)
    assert sum(p.size for p in parts) == ev.size
    for (a, b), p in zip(zip(edges[:-1], edges[1:]), parts):
        assert np.all((p["t"] >= a) & (p["t"] < b))


def test_merge_sorted_orders_interleaved_chunks():
    a, b = _events([0, 20, 40]), _events([10, 30])
    assert list(merge_sorted(a, b)["t"]) == [0, 10, 20, 30, 40]


def test_check_events_rejects_bad_input():
    with pytest.raises(LayoutError, match="not sorted"):
        check_events(_events([5, 1]))
    with pytest.raises(LayoutError, match="'x'"):
        check_events(make_events([400], [0], [0], [1]), width=346, height=260)
    with pytest.raises(LayoutError, match="dtype"):
        check_events(np.zeros(3, dtype=[("x", "u2")]))
    assert check_events(np.empty(0, EVENT_DTYPE)).size == 0


def test_time_window_properties():
    w = TimeWindow(100, 300)
    assert (w.duration_ns, w.mid_ns) == (200, 200)
    with pytest.raises(ValueError):
        TimeWindow(5, 1)


def test_packetize_cuts_on_time_boundaries_and_size():
    from evif_ros.runtime.events import packetize
    ev = _events(list(range(0, 100, 5)))  # t = 0, 5, ..., 95
    pk = packetize(ev, 20, 3)
    assert sum(p.size for p in pk) == ev.size
    assert all(p.size <= 3 for p in pk)
    assert all(int(p["t"][0]) // 20 == int(p["t"][-1]) // 20 for p in pk)


def test_event_packer_accumulates_small_batches():
    from evif_ros.runtime.events import EventPacker
    packer = EventPacker(span_ns=100, max_events=1000)
    out = []
    for start in range(0, 1000, 10):  # ten-event batches of 10 ns
        out += packer.add(_events(list(range(start, start + 10))))
    out += packer.flush()
    assert [p.size for p in out] == [100] * 10
    assert np.array_equal(np.concatenate(out)["t"], np.arange(1000))


def test_time_shifted_copies_with_new_times_and_leaves_the_input_alone():
    ev = make_events([1, 2, 3, 4], [5, 6, 7, 8], [100, 200, 300, 400], [1, 0, 1, 0])
    out = time_shifted(ev, -150)
    assert out.dtype == EVENT_DTYPE and out["t"].tolist() == [-50, 50, 150, 250]
    assert out["x"].tolist() == [1, 2, 3, 4] and out["y"].tolist() == [5, 6, 7, 8]
    assert out["p"].tolist() == [1, 0, 1, 0] and ev["t"].tolist() == [100, 200, 300, 400]
    assert time_shifted(ev[::2], 1)["t"].tolist() == [101, 301]  # a strided view
    assert time_shifted(ev[:0], 5).size == 0
