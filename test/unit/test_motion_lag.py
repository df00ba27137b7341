"""The thermal lag in the motion deconvolution (``motion.lag_kernel``, ``MotionDeconv(lag=)``)
against the simulator's microbolometer (``sim.thermal``: a first-order response integrated
in 1 ms steps, read at 7 points of the exposure and averaged), a separate implementation of
the same physics."""

import numpy as np
import pytest
import torch

from evif_ros.evaluation.metrics import psnr
from evif_ros.learning.motion import MotionDeconv, lag_kernel, path_at, path_response
from evif_ros.sim.thermal import ThermalCamera, ThermalConfig

EXPOSURE_MS = 25.0
H, W = 96, 128


def _bolometer(tau_ms: float, temperature_at, size=(1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's (blurry, sharp) frames in kelvin above 20 C, noise-free, of a scene
    ``temperature_at(s)`` also in kelvin above 20 C."""
    cfg = ThermalConfig(width=size[0], height=size[1], tau_ms=tau_ms, netd_k=0.0,
                        exposure_ns=int(EXPOSURE_MS * 1e6))
    cam = ThermalCamera(cfg, np.random.default_rng(0), davis_size=size)
    blurry, sharp = cam.capture(lambda s: 20.0 + temperature_at(s), 0)
    return ((blurry - cfg.counts_offset) / cfg.counts_per_kelvin,
            (sharp - cfg.counts_offset) / cfg.counts_per_kelvin)


@pytest.mark.parametrize("tau_ms", [8.0, 12.0])
def test_lag_kernel_weighs_the_past_as_the_simulated_bolometer_does(tau_ms):
    """A pixel that warms by 1 K at time s: the blurry frame reads the kernel's weight of the
    times after s."""
    t, w = lag_kernel(7, tau_ms / EXPOSURE_MS)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
    assert bool((w > 0).all()) and bool((t <= 0.5).all())
    t_ms = (t.double().numpy() + 0.5) * EXPOSURE_MS  # from the exposure's start
    for step_ms in (-20.0, -8.0, -1.0, 3.0, 10.0, 17.0, 23.0):
        blurry, _ = _bolometer(tau_ms, lambda s, at=step_ms: np.full(
            (1, 1), 1.0 if s * 1e3 >= at else 0.0, np.float32))
        # the simulator sees the step at its next 1 ms tick
        mine = float(w.double().numpy()[t_ms >= step_ms].sum())
        assert float(blurry[0, 0]) == pytest.approx(mine, abs=0.03), step_ms


def test_without_lag_the_kernel_is_the_readings_average():
    t, w, recent = MotionDeconv(7).kernel(torch.device("cpu"))
    np.testing.assert_allclose(t.numpy(), (np.arange(7) + 0.5) / 7 - 0.5, atol=1e-7)
    np.testing.assert_allclose(w.numpy(), np.full(7, 1 / 7), atol=1e-7)
    assert bool(recent.all())
    t, _, recent = MotionDeconv(7, lag=0.4).kernel(torch.device("cpu"))
    assert torch.equal(recent, t >= -0.9) and 0 < int(recent.sum()) < len(t)
    with pytest.raises(ValueError, match="lag"):
        MotionDeconv(7, lag=-0.1)


def test_before_the_exposure_the_path_goes_on_with_its_start_velocity():
    coef = torch.tensor([[[4.0, -2.0], [6.0, 1.0]]], dtype=torch.float64)  # v, a
    t = torch.tensor([-1.5, -0.5, 0.0, 0.5], dtype=torch.float64)
    p = path_at(coef, t)[0].numpy()
    # inside: v t + a t^2; at t = -1.5, one exposure before the start at velocity v - a
    inside = lambda s: np.array([4 * s + 6 * s * s, -2 * s + s * s])  # noqa: E731
    np.testing.assert_allclose(p[1:], np.stack([inside(s) for s in (-0.5, 0.0, 0.5)]))
    np.testing.assert_allclose(p[0], inside(-0.5) - np.array([4 - 6, -2 - 1]))


def test_weighted_path_response_is_the_weighted_sum_of_the_copies():
    rng = np.random.default_rng(3)
    img = rng.random((H, W))
    pos = np.array([[0, 0], [2, -3], [-5, 1]], dtype=float)
    wts = np.array([0.5, 0.3, 0.2])
    by_hand = sum(wi * np.roll(img, (int(p[0]), int(p[1])), axis=(0, 1))
                  for wi, p in zip(wts, pos))
    resp = path_response(torch.from_numpy(pos)[None], H, W, torch.from_numpy(wts))
    mine = torch.fft.irfft2(torch.fft.rfft2(torch.from_numpy(img)) * resp[0], s=(H, W)).numpy()
    np.testing.assert_allclose(mine, by_hand, atol=1e-6)  # the frequencies are float32


def _texture() -> np.ndarray:
    """A smooth periodic random image in kelvin (a few K of contrast)."""
    rng = np.random.default_rng(5)
    spec = np.fft.rfft2(rng.standard_normal((H, W)))
    fy = np.fft.fftfreq(H)[:, None]
    fx = np.fft.rfftfreq(W)[None, :]
    img = np.fft.irfft2(spec * np.exp(-(fy ** 2 + fx ** 2) / (2 * 0.06 ** 2)), s=(H, W))
    return (3.0 * img / img.std()).astype(np.float32)


def _moved(img: np.ndarray, dx: float) -> np.ndarray:
    """``img`` moved right by ``dx`` px (a phase ramp: exact for a periodic image)."""
    fx = np.fft.rfftfreq(W)[None, :]
    return np.fft.irfft2(np.fft.rfft2(img) * np.exp(-2j * np.pi * fx * dx), s=(H, W)
                         ).astype(np.float32)


def test_the_lag_kernel_undoes_the_simulated_bolometers_blur():
    """A pan of 21 px per exposure (0.84 px/ms) seen by a 10 ms bolometer; the exposure's
    event bins are the moving image's edges, 3 px apart. Deconvolved with the lag the frame
    sharpens (the long kernel has frequencies it nearly removes, which the regularisation
    leaves: +2.3 dB here); deconvolved as a plain average of the readings it does not.
    (Regularising towards the blurry frame moved back by the kernel's centroid gained 0.2 dB
    more here and lost 0.05 dB on the microbolometer test split: not done.)"""
    tex = _texture()
    speed = 21.0 / EXPOSURE_MS  # px per ms, 0 at mid-exposure
    blurry, sharp = _bolometer(10.0, lambda s: _moved(tex, speed * (s * 1e3 - 12.5)), (W, H))
    lo, span = float(sharp.min()), float(sharp.max() - sharp.min())
    frame = torch.from_numpy(((blurry - lo) / span).astype(np.float32))[None, None]
    truth = (sharp - lo) / span
    bins = []
    for k in range(7):  # bin centres (k + 0.5) / 7 of the exposure: 3 px apart
        gy, gx = np.gradient(_moved(tex, 3.0 * (k - 3)))
        bins.append(np.hypot(gy, gx) * 20)
    act = np.stack(bins).astype(np.float32)
    vox = torch.from_numpy(np.concatenate([act, act]))[None]
    inner = (slice(24, -24), slice(24, -24))
    score = {"blurry": psnr(np.clip(frame[0, 0].numpy()[inner], 0, 1) * 255, truth[inner] * 255)}
    for name, lag in (("average", 0.0), ("lag", 10.0 / EXPOSURE_MS)):
        out, _ = MotionDeconv(7, bins=7, curved=True, lag=lag)(frame, vox)
        score[name] = psnr(np.clip(out[0, 0].numpy()[inner], 0, 1) * 255, truth[inner] * 255)
    assert score["lag"] > score["blurry"] + 1.5, score
    assert score["lag"] > score["average"] + 1.5, score
    scripted = torch.jit.script(MotionDeconv(7, bins=7, curved=True, lag=0.4).eval())
    a = MotionDeconv(7, bins=7, curved=True, lag=0.4)(frame, vox)[0]
    assert (scripted(frame, vox)[0] - a).abs().max() < 1e-6


def test_a_rig_exports_the_shipped_weights_with_its_lag(tmp_path):
    """``evif export --model F --ir-lag-ms 10`` (``rescript`` with ``motion_lag``): the same
    weights, the lag in the file's metadata and in the scripted deconvolution; a model
    without the deconvolution refuses it."""
    from evif_ros.errors import ConfigError
    from evif_ros.learning.export import rescript, save
    from evif_ros.learning.pipeline import EvifPipeline, config_for
    from evif_ros.runtime.model_file import load_exported

    # the shipped file's deconvolution settings (a training option, not the size's)
    cfg = config_for("rt4", sub_windows=2, motion_taps=7, motion_curved=True)
    torch.manual_seed(0)
    save(EvifPipeline(cfg), cfg, tmp_path / "m.ts")
    rescript(tmp_path / "m.ts", tmp_path / "rig.ts", {"ir_lag_ms": 10.0, "ir_exposure_ms": 25.0},
             motion_lag=0.4)
    old, old_meta = load_exported(tmp_path / "m.ts")
    new, meta = load_exported(tmp_path / "rig.ts")
    assert meta["config"]["motion_lag"] == 0.4
    assert (meta["ir_lag_ms"], meta["ir_exposure_ms"]) == (10.0, 25.0)
    assert {k: v for k, v in meta["config"].items() if k != "motion_lag"} == \
        {k: v for k, v in old_meta["config"].items() if k != "motion_lag"}
    t, w = lag_kernel(7, 0.4)
    assert new.deblur.motion.weights == w.tolist() and new.deblur.motion.times == t.tolist()
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(),
                                                new.state_dict().values()))
    lite = config_for("lite", sub_windows=2)
    save(EvifPipeline(lite), lite, tmp_path / "lite.ts")
    with pytest.raises(ConfigError, match="lite.ts: .*--motion-taps"):
        rescript(tmp_path / "lite.ts", tmp_path / "x.ts", motion_lag=0.4)
    with pytest.raises(ConfigError, match="lite.ts: --motion-everywhere needs"):
        rescript(tmp_path / "lite.ts", tmp_path / "x.ts", motion_gate=False)
    assert not (tmp_path / "x.ts").exists()


def test_the_runtime_warns_when_the_rigs_exposure_is_not_the_lags():
    from evif_ros.runtime.inference import lag_warnings

    meta = {"ir_lag_ms": 10.0, "ir_exposure_ms": 25.0}
    assert lag_warnings(meta, 25_000_000) == [] and lag_warnings({}, 5_000_000) == []
    assert lag_warnings({"ir_lag_ms": 0.0, "ir_exposure_ms": 25.0}, 40_000_000) == []
    (text,) = lag_warnings(meta, 40_000_000)
    assert "10 ms" in text and "25 ms" in text and "--ir-exposure-ms 40" in text
