"""The event-guided motion deconvolution (evif_ros.learning.motion) against frames blurred by
hand: the average of shifted copies (np.roll), and event bins made from the same copies."""

import numpy as np
import pytest
import torch

from evif_ros.evaluation.metrics import psnr
from evif_ros.learning.motion import (
    MotionDeconv,
    bin_shifts,
    centred_spectrum,
    path_response,
    quadratic_path,
    regularised_inverse,
    sharpens,
    shifted_sum,
    straight_path,
)

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


def _curve(k: np.ndarray) -> np.ndarray:
    """Whole-pixel positions (k, k^2 - 2k) of a curved path at steps k = -3..3 (7 copies,
    t = k/7 of the exposure from its middle): p(t) = 7 t (1, -2) + 49 t^2 (0, 1)."""
    return np.stack([k, k * k - 2 * k], -1).astype(float)


def _along(img: np.ndarray, pos: np.ndarray) -> list[np.ndarray]:
    return [np.roll(img, (int(p[0]), int(p[1])), axis=(0, 1)) for p in pos]


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


def test_straight_path_response_is_the_average_of_the_shifted_copies():
    img = _texture(2)
    d = (7, -14)
    by_hand = np.mean(_copies(img, d, 7), axis=0)
    times = torch.tensor([(i - 3) / 7 for i in range(7)], dtype=torch.float64)
    pos = straight_path(torch.tensor([[float(d[0]), float(d[1])]], dtype=torch.float64), times)
    spec = path_response(pos, H, W)
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


def _curved_bins(img: np.ndarray) -> torch.Tensor:
    bins = []
    for c in _along(img, _curve(np.arange(-3, 4))):
        gy, gx = np.gradient(c)
        bins.append(np.hypot(gy, gx) * 20)
    act = np.stack(bins)
    return torch.from_numpy(np.concatenate([act, act]).astype(np.float32))[None]


def test_bin_shifts_and_quadratic_path_follow_a_curved_motion():
    ev = _curved_bins(_texture(7))
    act = torch.nn.functional.avg_pool2d(ev[:, :BINS] + ev[:, BINS:], 2)
    found = bin_shifts(centred_spectrum(act), act.shape[2], act.shape[3], 20)[0].numpy() * 2
    np.testing.assert_allclose(found, _curve(np.arange(-3, 4)), atol=0.5)
    # a quadratic path through exact quadratic positions returns them
    exact = torch.from_numpy(_curve(np.arange(-3, 4)))[None]
    np.testing.assert_allclose(quadratic_path(exact, 7)[0].numpy(), exact[0].numpy(), atol=1e-9)


def test_path_response_is_the_average_of_the_copies_along_the_path():
    img = _texture(8)
    pos = _curve(np.arange(-3, 4))
    by_hand = np.mean(_along(img, pos), axis=0)
    resp = path_response(torch.from_numpy(pos)[None], H, W)
    mine = torch.fft.irfft2(torch.fft.rfft2(torch.from_numpy(img)) * resp[0], s=(H, W)).numpy()
    np.testing.assert_allclose(mine, by_hand, atol=1e-9)


def test_curved_deconvolution_sharpens_a_frame_blurred_along_a_curve():
    img = _texture(9)
    rng = np.random.default_rng(10)
    blurry = np.mean(_along(img, _curve(np.arange(-3, 4))), axis=0) + rng.normal(0, 0.002,
                                                                                  img.shape)
    frame = torch.from_numpy(blurry.astype(np.float32))[None, None]
    inner = (slice(20, -20), slice(20, -20))
    before = psnr(blurry[inner] * 255, img[inner] * 255)
    after = {}
    for curved in (False, True):
        out, _ = MotionDeconv(bins=BINS, curved=curved)(frame, _curved_bins(img))
        after[curved] = psnr(out[0, 0].numpy()[inner] * 255, img[inner] * 255)
    assert after[True] > before + 1.0 and after[True] > after[False] + 0.5, (before, after)


def test_scripted_curved_deconvolution_equals_eager():
    img = torch.from_numpy(_texture(11).astype(np.float32))[None, None]
    ev = _curved_bins(_texture(11))
    md = MotionDeconv(bins=BINS, curved=True).eval()
    a, _ = md(img, ev)
    b, _ = torch.jit.script(md)(img, ev)
    assert (a - b).abs().max() < 1e-6


def test_only_the_events_own_path_sharpens_them():
    act = _curved_bins(_texture(12))[:, :BINS]  # the content of bin k at _curve(k)
    true = torch.from_numpy(_curve(np.arange(-3, 4))).float()[None]
    assert bool(sharpens(act, true)[0])
    assert not bool(sharpens(act, -true)[0])  # the reverse motion
    assert not bool(sharpens(act, torch.zeros_like(true))[0])  # as they are: not sharper
    still = act[:, BINS // 2:BINS // 2 + 1].expand(1, BINS, H, W)  # nothing moves
    assert not bool(sharpens(still, true)[0])
    # each batch item is judged on its own
    both = sharpens(torch.cat([act, still]), torch.cat([true, true]))
    assert both.tolist() == [True, False]


def test_events_of_no_motion_leave_the_frame_unchanged_on_the_curved_path():
    """Noise events (the night scenario's background activity, hot pixels) give each time
    bin a spurious correlation peak: the curved path through them reaches 15 px, which the
    frame was deconvolved with before the path had to sharpen the events."""
    g = torch.Generator().manual_seed(0)
    vox = torch.log1p(torch.poisson(torch.full((1, 10, H, W), 0.3), generator=g))
    frame = torch.rand(1, 1, H, W, generator=g)
    md = MotionDeconv(curved=True)
    act = md.activity(vox)
    spec = centred_spectrum(act)
    path = quadratic_path(bin_shifts(spec, act.shape[2], act.shape[3], md.bin_reach), 5)
    out, d = md(frame, vox)
    assert d.abs().max() > 0 and path.abs().max() > 5  # a path was found, and not taken
    assert torch.equal(out, frame)


def test_a_short_curved_path_is_regularised_less_and_recovers_more():
    md = MotionDeconv(bins=BINS, curved=True)
    # 0.1 up to 8 px, then 0.1 per 8 px, at most 0.3 (by hand)
    lams = md.path_lam(torch.tensor([0.0, 4.0, 8.0, 12.0, 16.0, 40.0])).tolist()
    assert lams == pytest.approx([0.1, 0.1, 0.1, 0.15, 0.2, 0.3])
    img = _texture(13)
    blurry = np.mean(_along(img, _curve(np.arange(-3, 4))), axis=0)  # a 13.4 px path
    frame = torch.from_numpy(blurry.astype(np.float32))[None, None]
    inner = (slice(20, -20), slice(20, -20))
    scores = {}
    for name, m in (("by length", md), ("0.3 always", MotionDeconv(bins=BINS, curved=True,
                                                                   lam_short=0.3))):
        out, _ = m(frame, _curved_bins(img))
        scores[name] = psnr(out[0, 0].numpy()[inner] * 255, img[inner] * 255)
    assert scores["by length"] > scores["0.3 always"] + 1.0, scores


def test_shifted_sum_is_the_sum_of_the_maps_moved_by_hand():
    rng = np.random.default_rng(14)
    maps = rng.random((2, 3, 10, 12))
    pos = np.array([[[2, -3], [0.5, 0], [-1, 1.25]], [[0, 0], [-4, 7], [1.5, -0.5]]])
    yy, xx = np.mgrid[0:10, 0:12]
    by_hand = np.zeros((2, 10, 12))
    for i in range(2):
        for k in range(3):
            y, x = yy + pos[i, k, 0], xx + pos[i, k, 1]  # where each pixel samples the map
            y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
            for dy in (0, 1):
                for dx in (0, 1):
                    weight = (1 - abs(y - (y0 + dy))) * (1 - abs(x - (x0 + dx)))
                    by_hand[i] += weight * maps[i, k][(y0 + dy) % 10, (x0 + dx) % 12]
    mine = shifted_sum(torch.from_numpy(maps), torch.from_numpy(pos)).numpy()
    np.testing.assert_allclose(mine, by_hand, atol=1e-12)


def test_the_deblurring_network_takes_the_deconvolved_frame_near_events_or_everywhere():
    """Events only on the left half of a frame blurred as a whole: with the gate (the
    trained default) the right half stays blurry, without it the deconvolution's frame is
    taken wherever the deconvolution keeps it; the network's residual is zeroed so that
    what comes out is what it was given."""
    from evif_ros.learning.deblur import DeblurNet

    img = _texture(15)
    d = (10, -20)  # the network's voxel has 5 bins: 5 copies 2 and 4 px apart
    copies = _copies(img, d, 5)
    blurry = torch.from_numpy(np.mean(copies, axis=0).astype(np.float32))[None, None]
    act = np.stack([np.hypot(*np.gradient(c)) * 20 for c in copies]).astype(np.float32)
    ev = torch.from_numpy(np.concatenate([act, act]))[None]
    ev[..., W // 2:] = 0.0
    expected, _ = MotionDeconv(5)(blurry, ev)
    right = (slice(None), slice(None), slice(16, -16), slice(W // 2 + 8, -16))
    for gate in (True, False):
        net = DeblurNet(10, 8, 16, enhance=False, motion_taps=5, motion_gate=gate).eval()
        torch.nn.init.zeros_(net.out.weight)
        with torch.no_grad():
            out, _ = net(blurry, ev, [])
        if gate:
            assert torch.equal(out[right], blurry[right])
        else:
            assert torch.equal(out, expected)
            assert (out[right] - blurry[right]).abs().max() > 0.01


def test_regularised_inverse_undoes_a_blur_by_hand_and_keeps_an_unblurred_frame():
    """A 3-tap horizontal average (np.roll copies; 128 columns, so no frequency is removed
    exactly) is undone with a vanishing weight; with no blur (K = 1) the frame comes back
    unchanged whatever the weight."""
    img = _texture(5)
    blurred = sum(np.roll(img, s, axis=1) for s in (-1, 0, 1)) / 3
    kernel = np.zeros((H, W))
    kernel[0, [0, 1, W - 1]] = 1 / 3
    resp = torch.from_numpy(np.fft.rfft2(kernel))[None]
    x = torch.from_numpy(blurred)[None]
    sharp = regularised_inverse(x, resp, torch.tensor([1e-9], dtype=torch.float64))
    assert np.abs(sharp[0].numpy() - img).max() < 1e-5
    # a heavier weight keeps more of the blurry frame's gradients: in between
    soft = regularised_inverse(x, resp, torch.tensor([1.0], dtype=torch.float64))[0].numpy()
    assert 0 < np.abs(soft - img).mean() < np.abs(blurred - img).mean()
    ones = torch.ones(1, H, W // 2 + 1, dtype=torch.complex128)
    same = regularised_inverse(x, ones, torch.tensor([0.3], dtype=torch.float64))
    assert np.abs(same[0].numpy() - blurred).max() < 1e-12


def test_estimate_then_deconvolve_is_the_module_and_a_moved_path_is_honoured():
    """The two halves give the forward pass; the blur handed to ``deconvolve`` is the one
    it removes: the events' path recovers the frame, the same path twice as long does not."""
    img = _texture(6)
    d = (0, 21)
    blurred = np.mean(_copies(img, d, 7), axis=0)
    ir = torch.from_numpy(blurred.astype(np.float32))[None, None]
    ev = _event_bins(img, d)
    md = MotionDeconv(7, bins=BINS, curved=True)
    pos, extent, move, lam, d_found = md.estimate(ev)
    out, d_fwd = md(ir, ev)
    assert torch.equal(md.deconvolve(ir, pos, extent, move, lam), out)
    assert torch.equal(d_found, d_fwd)
    inner = (slice(8, -8), slice(24, -24))  # inside the margin of both kernels

    def score(y: np.ndarray) -> float:
        return psnr(y[inner], img[inner], peak=1.0)

    found = score(out[0, 0].numpy())
    doubled = score(md.deconvolve(ir, 2 * pos, 2 * extent, move, lam)[0, 0].numpy())
    assert found > score(blurred) + 2.0 and doubled < found - 2.0, (score(blurred), found,
                                                                    doubled)
