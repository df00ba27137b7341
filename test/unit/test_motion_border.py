"""The deconvolution up to the frame's border (motion.bounded_inverse): against the same
least-squares problem solved with dense matrices built here, and against frames cut from a
larger image blurred by hand (np.roll copies), whose border holds blur from outside."""

import numpy as np
import pytest
import torch

from evif_ros.evaluation.metrics import psnr
from evif_ros.learning.motion import (
    MotionDeconv,
    bounded_inverse,
    fast_size,
    half_spectrum_dot,
    path_response,
    regularised_inverse,
)


@pytest.mark.parametrize("n, want", [(1, 2), (7, 8), (90, 90), (378, 384), (410, 432)])
def test_fast_size_is_the_next_even_length_of_factors_2_3_5(n, want):
    assert fast_size(n) == want


@pytest.mark.parametrize("h, w", [(6, 8), (7, 10)])
def test_half_spectrum_dot_is_the_images_inner_product_by_parseval(h, w):
    """numpy's full 2-d FFT: sum(a c) = sum(A conj(C)) / (H W); the half spectrum must give
    the same, up to that factor, for odd and even heights."""
    rng = np.random.default_rng(3)
    a, c = rng.normal(size=(2, h, w)), rng.normal(size=(2, h, w))
    full = (np.fft.fft2(a) * np.conj(np.fft.fft2(c))).real.sum((1, 2))
    assert np.allclose(full / (h * w), (a * c).sum((1, 2)))  # the truth: Parseval
    half = [torch.view_as_real(torch.fft.rfft2(torch.from_numpy(x))) for x in (a, c)]
    np.testing.assert_allclose(half_spectrum_dot(*half).numpy(), full, rtol=1e-10)


def _roll_matrix(hh: int, ww: int, dy: int, dx: int) -> np.ndarray:
    """The (N, N) matrix of np.roll by (dy, dx) on an hh x ww grid (row-major)."""
    eye = np.eye(hh * ww).reshape(hh * ww, hh, ww)
    return np.roll(eye, (dy, dx), axis=(1, 2)).reshape(hh * ww, hh * ww).T


def test_bounded_inverse_solves_the_masked_least_squares_problem():
    """Dense normal equations of ``|M (K S - B)|^2 + lam |grad (S - B)|^2`` on the padded grid
    (K: weighted np.roll copies, grad: circular forward differences, B: the frame
    reflect-padded, M: the frame's pixels) give the same frame as the conjugate gradients."""
    rng = np.random.default_rng(0)
    h, w, pad = 12, 16, 4
    hh, ww = fast_size(h + 2 * pad), fast_size(w + 2 * pad)
    blurry = rng.random((h, w))
    pos = np.array([[-1.0, -2.0], [0.0, 0.0], [1.0, 3.0]])  # whole pixels: K is exact rolls
    wt = np.array([0.25, 0.5, 0.25])
    lam = 0.05
    k = sum(c * _roll_matrix(hh, ww, int(p[0]), int(p[1])) for c, p in zip(wt, pos))
    dy = _roll_matrix(hh, ww, -1, 0) - np.eye(hh * ww)
    dx = _roll_matrix(hh, ww, 0, -1) - np.eye(hh * ww)
    reg = lam * (dy.T @ dy + dx.T @ dx)
    be = np.pad(blurry, ((pad, hh - h - pad), (pad, ww - w - pad)), mode="reflect").ravel()
    m = np.zeros((hh, ww))
    m[pad:pad + h, pad:pad + w] = 1
    m = np.diag(m.ravel())
    s = np.linalg.solve(k.T @ m @ k + reg, k.T @ m @ be + reg @ be).reshape(hh, ww)
    want = s[pad:pad + h, pad:pad + w]
    got = bounded_inverse(torch.from_numpy(blurry)[None], torch.from_numpy(pos)[None],
                          torch.from_numpy(wt), torch.tensor([lam], dtype=torch.float64),
                          iters=200, min_pad=pad)[0].numpy()
    assert np.abs(got - want).max() < 1e-6
    # the circular inverse of the same padded frame is another answer near the border
    resp = path_response(torch.from_numpy(pos)[None], hh, ww, torch.from_numpy(wt))
    circ = regularised_inverse(torch.from_numpy(be.reshape(hh, ww))[None], resp,
                               torch.tensor([lam], dtype=torch.float64))[0].numpy()
    assert np.abs(circ[pad:pad + h, pad:pad + w] - want).max() > 1e-3


def _scene(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.kron(rng.random((h // 4, w // 4)), np.ones((4, 4)))
    k = np.ones(3) / 3
    img = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, img)
    img = np.apply_along_axis(lambda c: np.convolve(c, k, "same"), 0, img)
    return 0.2 + 0.6 * img


def test_the_border_is_recovered_where_the_circular_inverse_must_keep_it_blurry():
    """A frame cut from a larger scene blurred along 7 copies 3 px apart (18 px): its border
    columns mix in scene the frame never shows. With the true path the bounded inverse
    recovers the frame's 20 px border band, the circular one (reflect-padded as shipped)
    makes that band worse than blurry."""
    h, w, off = 64, 96, 40
    big = _scene(1, h + 2 * off, w + 2 * off)
    xs = np.arange(-3, 4) * 3
    blurred = np.mean([np.roll(big, (0, int(x)), axis=(0, 1)) for x in xs], axis=0)
    sharp, blurry = big[off:off + h, off:off + w], blurred[off:off + h, off:off + w]
    pos = torch.tensor([[[0.0, float(x)] for x in xs]], dtype=torch.float64)
    wt = torch.full((7,), 1 / 7, dtype=torch.float64)
    lam = torch.tensor([1e-3], dtype=torch.float64)
    x = torch.from_numpy(blurry)[None]
    bounded = bounded_inverse(x, pos, wt, lam, iters=30)[0].numpy()
    pad = 16
    xp = torch.nn.functional.pad(x[None], [pad] * 4, mode="reflect")[0]
    resp = path_response(pos, h + 2 * pad, w + 2 * pad, wt)
    circ = regularised_inverse(xp, resp, lam)[0, pad:pad + h, pad:pad + w].numpy()
    band = np.zeros((h, w), bool)
    band[:, :20] = band[:, -20:] = True

    def score(y: np.ndarray) -> float:
        return psnr(y[band], sharp[band], peak=1.0)

    assert score(bounded) > score(blurry) + 6.0, (score(bounded), score(blurry))
    assert score(circ) < score(blurry), (score(circ), score(blurry))


def _bins(frames: list[np.ndarray]) -> torch.Tensor:
    act = np.stack([np.hypot(*np.gradient(f)) * 20 for f in frames])
    return torch.from_numpy(np.concatenate([act, act]).astype(np.float32))[None]


def test_motion_deconv_with_border_iterations_deconvolves_the_whole_frame():
    """Through the module, path from the events: with ``border_iters`` the whole frame is
    sharper than the shipped margin version, whose border columns stay as blurry as they
    came (measured: whole frame 24.7 against 23.4 dB, first 8 columns 24.2 against 20.0);
    without motion in the events the frame passes unchanged; scripted equals eager."""
    h, w, off = 96, 128, 40
    big = _scene(2, h + 2 * off, w + 2 * off)
    xs = np.arange(-3, 4) * 2  # 7 copies of 2 px: whole pixels at the 7 event bins too
    frames = [np.roll(big, (0, int(x)), axis=(0, 1))[off:off + h, off:off + w] for x in xs]
    sharp = big[off:off + h, off:off + w]
    ir = torch.from_numpy(np.mean(frames, axis=0).astype(np.float32))[None, None]
    ev = _bins(frames)
    margin = MotionDeconv(7, bins=7, lam=0.03)  # a light weight: the blur's effect shows
    border = MotionDeconv(7, bins=7, lam=0.03, border_iters=5)
    a = margin(ir, ev)[0][0, 0].numpy()
    b = border(ir, ev)[0][0, 0].numpy()
    np.testing.assert_array_equal(a[:, :3], ir[0, 0, :, :3].numpy())
    assert psnr(b, sharp, peak=1.0) > psnr(a, sharp, peak=1.0) + 0.8
    assert psnr(b[:, :8], sharp[:, :8], peak=1.0) > psnr(a[:, :8], sharp[:, :8], peak=1.0) + 3
    still = border(ir, torch.zeros_like(ev))[0]
    assert (still - ir).abs().max() < 1e-6
    scripted = torch.jit.script(border.eval())
    assert (scripted(ir, ev)[0][0, 0].numpy() - b).__abs__().max() < 1e-5


def test_evif_export_motion_border_rescripts_the_same_weights_with_the_setting(tmp_path, capsys):
    """``evif export --model F --out G --motion-border 3``: the same weights, the setting in
    the file's config and its scripted deconvolution; the frame's border now changes where
    the old file kept it; a model without the deconvolution refuses it in one line."""
    from evif_ros.apps.cli import main
    from evif_ros.learning.export import save
    from evif_ros.learning.pipeline import EvifPipeline, config_for
    from evif_ros.runtime.model_file import load_exported

    cfg = config_for("rt4", sub_windows=2, motion_taps=7, motion_curved=True, motion_gate=False)
    torch.manual_seed(0)
    save(EvifPipeline(cfg), cfg, tmp_path / "m.ts")
    assert main(["export", "--model", str(tmp_path / "m.ts"), "--out", str(tmp_path / "b.ts"),
                 "--motion-border", "3"]) == 0
    old, old_meta = load_exported(tmp_path / "m.ts")
    new, meta = load_exported(tmp_path / "b.ts")
    assert old_meta["config"]["motion_border"] == 0 and meta["config"]["motion_border"] == 3
    assert new.deblur.motion.border_iters == 3
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(),
                                                new.state_dict().values()))
    h, w, off = 96, 128, 40
    big = _scene(4, h + 2 * off, w + 2 * off)
    xs = np.arange(-3, 4) * 3
    frames = [np.roll(big, (0, int(x)), axis=(0, 1))[off:off + h, off:off + w] for x in xs]
    ir = torch.from_numpy(np.mean(frames, axis=0).astype(np.float32))[None, None]
    ev = _bins(frames)
    a = old.deblur.motion(ir, ev)[0]
    b = new.deblur.motion(ir, ev)[0]
    assert torch.equal(a[..., :2], ir[..., :2])  # the old margin
    assert (b[..., :2] - ir[..., :2]).abs().max() > 0.01
    lite = config_for("lite", sub_windows=2)
    save(EvifPipeline(lite), lite, tmp_path / "lite.ts")
    capsys.readouterr()
    assert main(["export", "--model", str(tmp_path / "lite.ts"), "--out",
                 str(tmp_path / "x.ts"), "--motion-border", "3"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lite.ts" in err[0] and "--motion-border needs" in err[0]
    assert not (tmp_path / "x.ts").exists()
