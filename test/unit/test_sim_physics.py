"""Physics of the synthetic rig: noise floor, event polarity, dynamic range, blur."""

import cv2
import numpy as np
import pytest

from evif_ros.runtime.voxel import polarity_voxel_grid
from evif_ros.sim.dataset import make_sample
from evif_ros.sim.dvs import DvsConfig, DvsSimulator
from evif_ros.sim.recording import psnr_counts
from evif_ros.sim.scenarios import SCENARIOS
from evif_ros.sim.scene import Scene

W, H = 346, 260


def _run(scenario, seed, duration_s, step_ns=1_000_000, cfg=None):
    scene = Scene(SCENARIOS[scenario], seed)
    dvs = DvsSimulator(cfg or DvsConfig(), np.random.default_rng(seed))
    chunks, frames = [], []
    for k in range(int(duration_s * 1e9 / step_ns) + 1):
        rad, _ = scene.render(k * step_ns * 1e-9)
        frames.append(rad)
        chunks.append(dvs.step(rad, k * step_ns))
    return np.concatenate(chunks), frames, dvs


def test_static_scene_gives_only_noise_at_configured_rate():
    cfg = DvsConfig(noise_rate_hz=0.5, hot_pixel_fraction=2e-4, hot_pixel_rate_hz=200.0)
    ev, _, dvs = _run("static", 3, 1.0, cfg=cfg)
    hot = np.isin(ev["y"].astype(np.int64) * W + ev["x"], dvs.hot_pixels)
    ba = ev[~hot]
    expected_ba = cfg.noise_rate_hz * W * H * 1.0
    assert ba.size == pytest.approx(expected_ba, rel=0.1)
    assert hot.sum() == pytest.approx(cfg.hot_pixel_rate_hz * dvs.hot_pixels.size, rel=0.25)
    # noise: both polarities equally, spread over the sensor rather than on edges
    assert ba["p"].mean() == pytest.approx(0.5, abs=0.03)
    counts = np.bincount(ba["y"].astype(np.int64) * W + ba["x"], minlength=W * H)
    assert counts.max() <= 8


def test_moving_scene_on_where_brighter_off_where_darker():
    cfg = DvsConfig(noise_rate_hz=0.0, hot_pixel_fraction=0.0)
    ev, frames, _ = _run("day", 5, 0.02, cfg=cfg)
    d_log = (np.log(frames[-1] + cfg.log_eps) - np.log(frames[0] + cfg.log_eps))
    grid = polarity_voxel_grid(ev, 1, 0, 20_000_001, H, W)
    net = grid[0] - grid[1]
    up, down = d_log > 3 * cfg.c_on, d_log < -3 * cfg.c_off
    assert up.sum() > 300 and down.sum() > 300
    assert np.mean(net[up] > 0) > 0.95
    assert np.mean(net[down] < 0) > 0.95
    # and (nearly) silent where nothing changed
    flat = np.abs(d_log) < 0.05
    assert np.mean(grid[:, flat].sum(axis=0) == 0) > 0.9


def test_night_aps_underexposed_but_events_carry_texture():
    s = make_sample(11, "test", 0, scenario="night")
    assert np.mean(s["aps_blur"] < 16) > 0.8
    ev = s["events"]
    grid = polarity_voxel_grid(ev, 1, 0, s["exposure_ns"], H, W).sum(axis=0)
    vis = s["vis_sharp"].astype(np.float32)
    grad = np.hypot(*np.gradient(vis))
    # events concentrate on the visible texture's edges despite the darkness
    corr = np.corrcoef(grid.ravel(), grad.ravel())[0, 1]
    assert corr > 0.3
    assert ev.size > 20_000


def test_hdr_events_see_what_the_aps_frame_clips():
    s = make_sample(12, "test", 1, scenario="hdr")
    aps = s["aps_blur"]
    clipped, dark = aps >= 250, aps <= 3
    assert clipped.mean() > 0.1 and dark.mean() > 0.1
    count = polarity_voxel_grid(s["events"], 1, 0, s["exposure_ns"], H, W).sum(axis=0)
    # events fire in both the saturated and the black parts of the APS frame
    assert count[clipped].mean() > 0.5 and count[dark].mean() > 0.5


def _sharpness(img):
    """Edge energy at a scale above the sensor noise (NETD, column pattern)."""
    smooth = cv2.GaussianBlur(img.astype(np.float64), (0, 0), 1.5)
    return float(np.mean(np.hypot(*np.gradient(smooth))))


def test_blurry_ir_blurrier_than_ground_truth_and_more_when_fast():
    psnr = {}
    for name in ("day", "fast", "static"):
        vals = []
        for i in range(3):
            s = make_sample(21, "test", 10 + i, scenario=name)
            if name != "static":
                assert _sharpness(s["ir_blur"]) < _sharpness(s["ir_sharp"])
            vals.append(psnr_counts(s["ir_blur"], s["ir_sharp"]))
        psnr[name] = np.mean(vals)
    assert psnr["static"] > psnr["day"] + 5
    assert psnr["day"] > psnr["fast"] + 2


def test_rig_ir_and_visible_ground_truth_show_the_same_instant():
    """The thermal camera renders the scene on the scene's clock, as the event camera does:
    with the IR camera on the DAVIS grid, the edges of the sharp IR and of the visible
    frame at mid-exposure coincide (the IR was once rendered 1 s of scene time late)."""
    from evif_ros.sim.rig import Rig, synthetic_rig_config

    def edges(img):
        f = img.astype(np.float32)
        f = (f - f.mean()) / (f.std() + 1e-6)
        return np.hypot(cv2.Sobel(f, cv2.CV_32F, 1, 0), cv2.Sobel(f, cv2.CV_32F, 0, 1))

    inner = (slice(20, -20), slice(20, -20))
    rig = Rig(synthetic_rig_config({"scenario": "day", "seed": 3, "aligned": True}))
    for frame in list(rig.ir_frames(0.2))[:3]:
        ir, vis = edges(frame.sharp_counts), edges(frame.visible)
        corr = {(dy, dx): float((np.roll(ir, (dy, dx), (0, 1))[inner] * vis[inner]).mean())
                for dy in range(-12, 13, 2) for dx in range(-12, 13, 2)}
        assert max(corr, key=corr.get) == (0, 0), frame.seq
        assert corr[(0, 0)] > 0.5  # misregistered by the camera's motion: ~0.2


@pytest.mark.parametrize("tau_ms", [0.0, 10.0])
def test_photoreceptor_bandwidth_delays_a_step_as_a_first_order_lag(tau_ms):
    # one pixel steps from 1 to e (+1 log unit) at t = 0, thresholds exactly 0.25
    cfg = DvsConfig(width=1, height=1, c_sigma=0.0, noise_rate_hz=0.0, hot_pixel_fraction=0.0,
                    refractory_ns=0, photoreceptor_tau_ns=int(tau_ms * 1e6))
    dvs = DvsSimulator(cfg, np.random.default_rng(0))
    dvs.reset(np.ones((1, 1)), 0)
    step_ns = 50_000
    t = np.concatenate([dvs.step(np.full((1, 1), np.e), i * step_ns)["t"]
                        for i in range(1, 1000)])
    # the log's floor (log_eps) keeps the step a hair below 1.0: three crossings either way
    if tau_ms == 0:  # within the first step, interpolated: 12.5, 25, 37.5 us, up to the us
        assert t.tolist() == [13_000, 25_000, 38_000]
    else:
        # 1 - exp(-t / tau) reaches 0.25, 0.5, 0.75 at -tau ln(1 - k / 4)
        truth = [-tau_ms * 1e6 * np.log(1 - k / 4) for k in (1, 2, 3)]
        assert len(t) == 3 and np.abs(t - truth).max() < step_ns
