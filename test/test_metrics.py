"""VIF metrics on small hand-computed cases (see evif_ros/core/metrics.py for sources)."""

import numpy as np
import pytest

from evif_ros.core import metrics as m


def test_entropy_hand_computed():
    assert m.entropy(np.array([[0, 0, 255, 255]])) == pytest.approx(1.0)
    assert m.entropy(np.full((4, 4), 7)) == 0.0
    assert m.entropy(np.array([[0, 1, 2, 3]])) == pytest.approx(2.0)


def test_cross_entropy_hand_computed():
    a = np.array([[0, 0, 255, 255]])
    f = np.array([[0, 0, 0, 255]])
    # 0.5 log2(0.5/0.75) + 0.5 log2(0.5/0.25)
    expected = 0.5 * np.log2(0.5 / 0.75) + 0.5 * np.log2(2.0)
    assert m.cross_entropy(a, a, f) == pytest.approx(expected)
    assert m.cross_entropy(a, a, a) == 0.0


def test_mutual_information_hand_computed():
    a = np.array([[0, 0, 255, 255]])
    assert m.mutual_information(a, a, a) == pytest.approx(2 * np.log(2))
    indep = np.array([[0, 255, 0, 255]])  # independent of a
    assert m.mutual_information(a, a, indep) == pytest.approx(0.0, abs=1e-12)


def test_average_gradient_of_a_ramp():
    ramp = np.tile(np.arange(6, dtype=float), (5, 1))  # d/dx = 1, d/dy = 0
    assert m.average_gradient(ramp) == pytest.approx(30 * np.sqrt(0.5) / (4 * 5))


def test_ssim_identity_and_degradation():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (32, 32))
    assert m.ssim_sum(a, a, a) == pytest.approx(2.0)
    noisy = a + rng.normal(0, 20, a.shape)
    assert m.ssim_sum(a, a, noisy) < 1.95
    assert m.ssim_sum(a, a, noisy) > m.ssim_sum(a, a, a + rng.normal(0, 60, a.shape))


def test_chen_blum_perfect_and_flat():
    rng = np.random.default_rng(1)
    a = 128 + 60 * np.sin(np.arange(64)[None, :] / 3.0) + rng.normal(0, 5, (64, 64))
    assert m.chen_blum(a, a, a) == pytest.approx(1.0)
    flat = np.full_like(a, 128.0)
    assert m.chen_blum(a, a, flat) < 0.2
    assert m.chen_blum(a, a, 0.5 * a + 64) > m.chen_blum(a, a, flat)


def test_psnr_hand_computed():
    x = np.zeros((2, 2))
    y = np.full((2, 2), 255.0 / 10)  # MSE = 25.5^2 -> 20 dB
    assert m.psnr(y, x) == pytest.approx(20.0)
    assert m.psnr(x, x) == float("inf")


def test_all_metrics_keys():
    a = np.random.default_rng(2).uniform(0, 255, (40, 50))
    assert set(m.all_metrics(a, a, a)) == set(m.METRICS)


def test_fusion_baselines_keep_each_sources_structure():
    from evif_ros.core.fusion_baselines import BASELINES, guided_filter
    rng = np.random.default_rng(3)
    vis = np.zeros((64, 80), np.float32)
    vis[:, :24:4] = 1.0  # stripes only visible (left)
    ir = np.zeros((64, 80), np.float32)
    ir[20:40, 30:50] = 1.0  # a warm target only in IR
    for name, fuse in BASELINES.items():
        f = fuse(vis, ir)
        assert f.shape == vis.shape and 0 <= f.min() and f.max() <= 1, name
        # both structures survive: correlation with each source is clearly positive
        assert np.corrcoef(f.ravel(), vis.ravel())[0, 1] > 0.2, name
        assert np.corrcoef(f.ravel(), ir.ravel())[0, 1] > 0.2, name
    # the guided filter preserves an edge of its guide while smoothing noise
    step = np.zeros((32, 32), np.float32)
    step[:, 16:] = 1
    noisy = step + rng.normal(0, 0.1, step.shape).astype(np.float32)
    out = guided_filter(step, noisy, 4, 1e-3)
    assert np.abs(out - step).mean() < np.abs(noisy - step).mean()
