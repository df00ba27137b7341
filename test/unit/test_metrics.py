"""VIF metrics on small hand-computed cases (see evif_ros/evaluation/metrics.py for sources)."""

import numpy as np
import pytest

from evif_ros.evaluation import metrics as m


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
    from evif_ros.evaluation.fusion_baselines import BASELINES, guided_filter
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


def _qcb_by_the_definition(a, b, f):
    """VIFB's metricsQcb.m written out with loops and an explicit DFT (no FFT library, no
    image filtering library), for tiny images."""
    def normalize1(x):
        x = np.asarray(x, float)
        return x if x.max() == 0 and x.min() == 0 else \
            np.round((x - x.min()) / (x.max() - x.min()) * 255)

    h, w = f.shape
    fy = (np.arange(h) - h // 2) * 2 / h * (h / 30)
    fx = (np.arange(w) - w // 2) * 2 / w * (w / 30)
    sd = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            r = np.hypot(fx[j], fy[i])
            sd[i, j] = np.exp(-(r / 15.3870) ** 2) - 0.7622 * np.exp(-(r / 1.3456) ** 2)
    wy = np.exp(-2j * np.pi * np.outer(np.arange(h), np.arange(h)) / h)  # DFT matrices
    wx = np.exp(-2j * np.pi * np.outer(np.arange(w), np.arange(w)) / w)

    def csf_filter(img):
        spec = wy @ img @ wx  # fft2
        shifted = np.roll(spec, (h // 2, w // 2), (0, 1))  # fftshift
        back = np.roll(shifted * sd, (-(h // 2), -(w // 2)), (0, 1))  # ifftshift
        return np.conj(wy) @ back @ np.conj(wx) / (h * w)  # ifft2

    def gauss(sigma):
        g = np.empty((31, 31))
        for i in range(31):
            for j in range(31):
                g[i, j] = np.exp(-((i - 15) ** 2 + (j - 15) ** 2) / (2 * sigma ** 2)) / (
                    2 * np.pi * sigma ** 2)
        return g

    def filter2_same(g, img):
        out = np.zeros(img.shape, complex)
        for i in range(h):
            for j in range(w):
                for u in range(31):
                    for v in range(31):
                        y, x = i + u - 15, j + v - 15
                        if 0 <= y < h and 0 <= x < w:
                            out[i, j] += g[u, v] * img[y, x]
        return out

    g1, g2 = gauss(2), gauss(4)

    def cp(img):
        filt = csf_filter(normalize1(img))
        c = np.abs(filter2_same(g1, filt) / filter2_same(g2, filt) - 1)
        return c ** 3 / (c ** 2 + 0.0001)

    c1, c2, cf = cp(a), cp(b), cp(f)
    q1 = np.where(c1 < cf, c1 / cf, cf / c1)
    q2 = np.where(c2 < cf, c2 / cf, cf / c2)
    lam1 = c1 * c1 / (c1 * c1 + c2 * c2)
    lam2 = c2 * c2 / (c1 * c1 + c2 * c2)
    return float(np.mean(lam1 * q1 + lam2 * q2))


@pytest.mark.parametrize("shape", [(7, 9), (8, 6)])  # odd and even sizes (freqspace, shifts)
def test_chen_blum_equals_vifb_definition_computed_by_hand(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, shape).astype(float)
    b = rng.integers(0, 256, shape).astype(float)
    f = np.round(0.5 * a + 0.5 * b)
    assert m.chen_blum(a, b, f) == pytest.approx(_qcb_by_the_definition(a, b, f), rel=1e-9)


def test_both_ssims_match_scikit_image():
    """The evaluation's SSIM (numpy/cv2) and the training loss's (torch) against
    scikit-image's, configured as Wang et al. 2004: Gaussian window sigma 1.5, population
    covariances, the same valid region."""
    import cv2
    import torch
    from skimage.metrics import structural_similarity as skimage_ssim

    from evif_ros.learning.losses import ssim as torch_ssim

    rng = np.random.default_rng(4)
    for noise in (5.0, 20.0, 60.0):
        a = cv2.GaussianBlur(rng.random((96, 128)) * 255, (0, 0), 2)
        b = np.clip(a + rng.normal(0, noise, a.shape), 0, 255)
        ref = skimage_ssim(a, b, gaussian_weights=True, sigma=1.5,
                           use_sample_covariance=False, data_range=255)
        assert m.structural_similarity(a, b) == pytest.approx(ref, abs=1e-6)
        t = torch_ssim(torch.tensor(a / 255)[None, None].float(),
                       torch.tensor(b / 255)[None, None].float())
        assert float(t) == pytest.approx(ref, abs=1e-4)
