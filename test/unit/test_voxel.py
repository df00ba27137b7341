"""Voxel grids against direct per-event reference implementations on small inputs."""

import numpy as np
import pytest

from evif_ros.runtime.events import make_events
from evif_ros.runtime.voxel import (
    VoxelSpec,
    normalize_nonzero,
    polarity_voxel_grid,
    scer,
    voxel_grid,
)

H, W = 6, 7


def _random(n=400, seed=0, t0=1000, t1=51000):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, W, n), rng.integers(0, H, n),
                       np.sort(rng.integers(t0 - 500, t1 + 500, n)), rng.integers(0, 2, n))


def _ref_e2vid(ev, bins, t0, t1):
    g = np.zeros((bins, H, W))
    for x, y, t, p in ev:
        if not t0 <= t < t1:
            continue
        tau = (bins - 1) * (t - t0) / (t1 - t0)
        k, f = int(np.floor(tau)), tau - np.floor(tau)
        s = 1.0 if p else -1.0
        g[k, y, x] += s * (1 - f)
        if k + 1 < bins:
            g[k + 1, y, x] += s * f
    return g


def test_e2vid_hand_computed():
    # bins=3 over [0, 100): tau = t / 50. t=25 -> half in bins 0 and 1; t=50 -> bin 1.
    ev = make_events([1, 1, 2], [0, 0, 3], [25, 50, 99], [1, 0, 1])
    g = voxel_grid(ev, 3, 0, 100, H, W)
    assert g[0, 0, 1] == pytest.approx(0.5)
    assert g[1, 0, 1] == pytest.approx(0.5 - 1.0)
    assert g[1, 3, 2] == pytest.approx(0.02, abs=1e-6)
    assert g[2, 3, 2] == pytest.approx(0.98, abs=1e-6)
    assert g.dtype == np.float32 and g.shape == (3, H, W)


def test_e2vid_matches_reference():
    ev = _random()
    np.testing.assert_allclose(voxel_grid(ev, 5, 1000, 51000, H, W),
                               _ref_e2vid(ev, 5, 1000, 51000), atol=1e-5)


def test_polarity_grid_matches_reference():
    ev = _random(seed=2)
    g = polarity_voxel_grid(ev, 5, 1000, 51000, H, W)
    ref = np.zeros((10, H, W))
    for x, y, t, p in ev:
        if 1000 <= t < 51000:
            b = min(int(5 * (t - 1000) / 50000), 4)
            ref[b + (0 if p else 5), y, x] += 1
    np.testing.assert_array_equal(g, ref)
    assert g.sum() == np.count_nonzero((ev["t"] >= 1000) & (ev["t"] < 51000))


def test_scer_channels_are_symmetric_cumulative_sums():
    ev = _random(seed=3)
    c, t0, t1 = 6, 1000, 51000
    g = scer(ev, c, t0, t1, H, W)
    edges = t0 + np.arange(c + 1) * (t1 - t0) / c
    tc = edges[c // 2]
    ref = np.zeros((c, H, W))
    for x, y, t, p in ev:
        s = 1 if p else -1
        for i in range(c):
            lo, hi = (edges[i], tc) if i < c // 2 else (tc, edges[i + 1])
            if lo <= t < hi:
                ref[i, y, x] += s
    np.testing.assert_allclose(g, ref)
    with pytest.raises(ValueError):
        scer(ev, 5, t0, t1, H, W)


def test_out_of_sensor_events_are_ignored():
    ev = make_events([W + 3, 1], [0, 1], [10, 20], [1, 1])
    assert voxel_grid(ev, 2, 0, 100, H, W).sum() == pytest.approx(1.0)


def test_normalize_nonzero_cells():
    g = voxel_grid(_random(seed=4), 5, 1000, 51000, H, W, normalize=True)
    nz = g[g != 0]
    assert abs(nz.mean()) < 1e-5 and nz.std() == pytest.approx(1.0, rel=1e-4)
    assert normalize_nonzero(np.zeros((2, 2, 2))).sum() == 0


def test_spec_dispatch_and_channels():
    ev = _random(seed=5)
    spec = VoxelSpec("polarity", 5, H, W)
    assert spec.channels == 10 and spec(ev, 1000, 51000).shape == (10, H, W)
    assert VoxelSpec("e2vid", 5, H, W)(ev, 1000, 51000).shape == (5, H, W)
    with pytest.raises(ValueError):
        VoxelSpec("nope", 5, H, W)(ev, 0, 1)


def _ref_polarity(ev, t0, t1, bins=5):
    """Per event: its bin as polarity_voxel_grid's (ceil'ed) edges define it."""
    edges = [int(np.ceil(t0 + i * (t1 - t0) / bins)) for i in range(bins)] + [t1]
    g = np.zeros((2 * bins, H, W))
    for x, y, t, p in ev:
        if t0 <= t < t1 and x < W and y < H:
            b = max(i for i in range(bins) if edges[i] <= t)
            g[b + (0 if p else bins), y, x] += 1
    return g


@pytest.mark.parametrize("n", [20, 20_000])  # the sort path and the bincount path
def test_window_voxels_one_pass_matches_a_per_event_reference(n):
    from evif_ros.runtime.voxel import window_voxels
    rng = np.random.default_rng(n)
    # off-sensor events and uneven sub-window edges included
    ev = make_events(rng.integers(0, W + 2, n), rng.integers(0, H + 1, n),
                     np.sort(rng.integers(0, 60_000, n)), rng.integers(0, 2, n))
    edges = np.array([5_003, 9_000, 17_777, 20_000, 31_001, 31_002, 40_000])
    exp_vox, subs = window_voxels(ev, 12_345, 30_000, edges, H, W)
    np.testing.assert_array_equal(exp_vox, _ref_polarity(ev, 12_345, 42_345))
    assert subs.shape == (6, 10, H, W) and subs.dtype == np.float32
    for k in range(6):
        np.testing.assert_array_equal(subs[k], _ref_polarity(ev, edges[k], edges[k + 1]))


def test_window_voxelizer_reuses_its_buffer_and_matches_the_reference():
    """Consecutive windows through one buffer: each equals the per-event reference, so
    nothing of the previous window is left behind (an empty window comes out all zero)."""
    from evif_ros.runtime.voxel import WindowVoxelizer
    rng = np.random.default_rng(3)
    vox = WindowVoxelizer(H, W, 6)
    edges = np.array([5_003, 9_000, 17_777, 20_000, 31_001, 31_002, 40_000])
    # sparse windows (the sort path), a dense one (the count path), and an empty one
    for n, shift in ((2_000, 0), (500, 7_000), (60_000, 0), (0, 0), (3_000, 20_000)):
        ev = make_events(rng.integers(0, W + 2, n), rng.integers(0, H + 1, n),
                         np.sort(rng.integers(0, 60_000, n)) + shift, rng.integers(0, 2, n))
        exp_vox, subs = vox(ev, 12_345 + shift, 30_000, edges + shift)
        np.testing.assert_array_equal(exp_vox, _ref_polarity(ev, 12_345 + shift, 42_345 + shift))
        assert subs.shape == (6, 10, H, W) and subs.dtype == np.float32
        for k in range(6):
            np.testing.assert_array_equal(
                subs[k], _ref_polarity(ev, edges[k] + shift, edges[k + 1] + shift))
    with pytest.raises(ValueError, match="K=6"):
        vox(ev, 0, 30_000, edges[:4])


def test_window_voxelizer_binning_packets_as_they_arrive_matches_the_reference():
    """Packets in shuffled order (each sorted, some outside the window), between windows
    binned whole and dense: each window equals the per-event reference."""
    from evif_ros.runtime.voxel import WindowVoxelizer
    rng = np.random.default_rng(8)
    vox = WindowVoxelizer(H, W, 6)
    edges = np.array([5_003, 9_000, 17_777, 20_000, 31_001, 31_002, 40_000])
    for n, whole_before in ((3_000, False), (60_000, True), (4_000, True), (0, False)):
        if whole_before:  # the previous window's cells must not leak into this one
            dense = make_events(rng.integers(0, W, n), rng.integers(0, H, n),
                                np.sort(rng.integers(0, 60_000, n)), rng.integers(0, 2, n))
            vox(dense, 12_345, 30_000, edges)
        ev = make_events(rng.integers(0, W + 2, n), rng.integers(0, H + 1, n),
                         np.sort(rng.integers(-10_000, 70_000, n)), rng.integers(0, 2, n))
        cuts = np.sort(rng.integers(0, n + 1, 12))
        packets = np.split(ev, cuts)
        vox.begin(12_345, 30_000, edges)
        for i in rng.permutation(len(packets)):
            vox.add(packets[i])
        exp_vox, subs = vox.grids()
        np.testing.assert_array_equal(exp_vox, _ref_polarity(ev, 12_345, 42_345))
        for k in range(6):
            np.testing.assert_array_equal(subs[k], _ref_polarity(ev, edges[k], edges[k + 1]))
