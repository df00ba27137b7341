"""The event-guided motion deconvolution (evif_ros.model.motion) against frames blurred by
hand: the average of shifted copies (np.roll), and event bins made from the same copies."""

import numpy as np
import pytest
import torch

from evif_ros.core.metrics import psnr
from evif_ros.model.motion import MotionDeconv, blur_response

H, W = 96, 128
BINS = 7  # 7 time bins: the bins' and the 7 blur copies' offsets are whole pixels for d = 7 n


def _texture(seed: int) -> np.ndarray:
    """A smooth random image in [0.2, 0.8] (blocks of 4 px, box-filtered)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((H // 4, W // 4))
    img = np.kron(coarse, np.ones((4, 4)))
    k = np.ones(3) / 3
    img = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, img)
    img = np.apply_along_axis(lambda c: np.convolve(c, k, "same"), 0, img)
    return 0.2 + 0.6 * img


def _copies(img: np.ndarray, d: tuple[int, int], n: int) -> list[np.ndarray]:
    """``img`` moved by ``(i - (n-1)/2) / n * d`` for i < n (whole pixels, wrapping)."""
    out = []
    for i in range(n):
        f = (i - (n - 1) / 2) / n
        dy, dx = round(f * d[0]), round(f * d[1])
        assert abs(dy - f * d[0]) < 1e-9 and abs(dx - f * d[1]) < 1e-9, "not whole pixels"
        out.append(np.roll(img, (dy, dx), axis=(0, 1)))
    return out


def _event_bins(img: np.ndarray, d: tuple[int, int]) -> torch.Tensor:
    """(1, 2*BINS, H, W): ON / OFF activity at the edges of the moving image in each bin."""
    bins = []
    for c in _copies(img, d, BINS):
        gy, gx = np.gradient(c)
        bins.append(np.hypot(gy, gx) * 20)
    act = np.stack(bins)
    return torch.from_numpy(np.concatenate([act, act]).astype(np.float32))[None]


@pytest.mark.parametrize("d", [(7, -14), (0, 21), (-14, 0)])
def test_displacement_is_the_motion_of_the_event_bins(d):
    found = MotionDeconv(bins=BINS).displacement(_event_bins(_texture(1), d))[0].numpy()
    # the blur kernel is symmetric, so either sign is the same motion
    err = min(np.abs(found - d).max(), np.abs(found + np.array(d)).max())
    assert err <= 0.5, (found, d)


def test_blur_response_is_the_average_of_the_shifted_copies():
    img = _texture(2)
    d = (7, -14)
    by_hand = np.mean(_copies(img, d, 7), axis=0)
    spec = blur_response(torch.tensor([[float(d[0]), float(d[1])]], dtype=torch.float64), H, W, 7)
    mine = torch.fft.irfft2(torch.fft.rfft2(torch.from_numpy(img)) * spec[0], s=(H, W)).numpy()
    np.testing.assert_allclose(mine, by_hand, atol=1e-9)


def test_deconvolution_sharpens_a_frame_blurred_by_the_events_motion():
    img = _texture(3)
    d = (7, -14)
    rng = np.random.default_rng(4)
    blurry = np.mean(_copies(img, d, 7), axis=0) + rng.normal(0, 0.002, img.shape)
    out, found = MotionDeconv(bins=BINS)(torch.from_numpy(blurry.astype(np.float32))[None, None],
                                         _event_bins(img, d))
    inner = (slice(12, -12), slice(12, -12))  # the frame border is left blurry
    before = psnr(blurry[inner] * 255, img[inner] * 255)
    after = psnr(out[0, 0].numpy()[inner] * 255, img[inner] * 255)
    assert after > before + 1.0, (before, after, found)
    np.testing.assert_array_equal(out[0, 0, :3].numpy(), blurry[:3].astype(np.float32))


def test_without_events_or_beyond_the_allowed_motion_the_frame_passes_unchanged():
    img = torch.from_numpy(_texture(5).astype(np.float32))[None, None]
    md = MotionDeconv(bins=BINS, max_px=20.0)
    out, d = md(img, torch.zeros(1, 2 * BINS, H, W))
    assert d.abs().max() == 0 and (out - img).abs().max() < 1e-5
    out, d = md(img, _event_bins(_texture(5), (0, 28)))  # 28 px > 20
    assert abs(abs(float(d[0, 1])) - 28) <= 0.5 and torch.equal(out, img)


def test_scripted_motion_deconvolution_equals_eager():
    img = torch.from_numpy(_texture(6).astype(np.float32))[None, None]
    ev = _event_bins(_texture(6), (7, 7))
    md = MotionDeconv(bins=BINS).eval()
    a, da = md(img, ev)
    b, db = torch.jit.script(md)(img, ev)
    assert torch.equal(da, db) and (a - b).abs().max() < 1e-6
