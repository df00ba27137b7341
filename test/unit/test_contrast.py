"""The contrast threshold measured from APS frames and events (rigcal.contrast): against
counts built by hand from a known log change, against the event simulator's own threshold,
and the refusals."""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from evif_ros.apps.cli import main
from evif_ros.errors import ConfigError, InputFileError
from evif_ros.paths import share_file
from evif_ros.rigcal.contrast import estimate_contrast, pair_slope
from evif_ros.runtime.calibration import load_calibration
from evif_ros.runtime.events import EVENT_DTYPE
from evif_ros.runtime.inference import EvifRunner
from evif_ros.runtime.model_file import contrast_gain, load_exported, set_contrast
from evif_ros.runtime.voxel import voxel_grid
from evif_ros.sim.dvs import DvsConfig, DvsSimulator

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dv_sample_davis346.aedat4"


def events_at(xs, ys, ps, t0=0):
    ev = np.zeros(len(xs), EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"] = xs, ys, ps
    ev["t"] = t0 + np.arange(len(xs))
    return ev


def test_net_counts_by_hand():
    # the estimator's net count per pixel between two frames: a one-bin voxel grid
    ev = events_at([1, 1, 1, 2, 0], [0, 0, 0, 1, 1], [1, 1, 0, 0, 1])
    n = voxel_grid(ev, 1, 0, 10, 2, 3)[0]
    assert n.tolist() == [[0, 1, 0], [1, 0, -1]]


def test_pair_slope_recovers_the_step_of_hand_made_counts():
    # a frame whose right half brightens by 3 steps of 0.3 log units and whose left half
    # darkens by 2: the counts are what a pixel with C = 0.3 reports, the slope is C
    h, w, c = 40, 60, 0.3
    im0 = np.full((h, w), 60.0)
    steps = np.where(np.arange(w) >= w // 2, 3, -2)[None].repeat(h, 0)
    im1 = (im0 + 1.0) * np.exp(c * steps) - 1.0  # the estimator's log(I + 1)
    slope, corr = pair_slope(im0.round().astype(np.uint8), im1.round().astype(np.uint8),
                             steps.astype(float), sigma=0, border=0)
    assert slope == pytest.approx(c, rel=0.02)
    assert corr > 0.99


def moving_texture(seed: int, size=(96, 128)) -> callable:
    """Radiance of a smooth random texture translating 0.6 px right per unit time."""
    rng = np.random.default_rng(seed)
    h, w = size
    base = cv2.GaussianBlur(rng.random((h, w + 200)), (0, 0), 4)
    base = 0.05 + 0.9 * (base - base.min()) / np.ptp(base)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def at(t: float) -> np.ndarray:
        return cv2.remap(base.astype(np.float32), xx + 0.6 * t + 50, yy, cv2.INTER_LINEAR)
    return at


@pytest.mark.parametrize("c", [0.2, 0.45])
def test_estimate_matches_the_simulators_threshold(c):
    # the truth is the DVS simulator's configuration (sim/dvs.py, a different model of the
    # pixel), APS frames its radiance read linearly, sharp, every 40 time steps
    render = moving_texture(1)
    h, w = render(0).shape
    dvs = DvsSimulator(DvsConfig(width=w, height=h, c_on=c, c_off=c, c_sigma=0.02,
                                 refractory_ns=0, noise_rate_hz=0.0, hot_pixel_fraction=0.0),
                       np.random.default_rng(2))
    step_ns = 1_000_000
    events, frames = [], []
    for i in range(161):
        rad = render(i)
        events.append(dvs.step(rad, i * step_ns))
        if i % 40 == 0:
            frames.append(((rad * 240).round().astype(np.uint8), i * step_ns))
    est = estimate_contrast(np.concatenate(events), frames)
    assert est.used.sum() == 4
    assert est.contrast == pytest.approx(c, rel=0.12)


def test_refuses_without_motion_or_frames():
    frame = np.full((30, 40), 100, np.uint8)
    with pytest.raises(InputFileError, match="rec.aedat4: needs at least 2 APS frames"):
        estimate_contrast(events_at([], [], []), [(frame, 0)], source="rec.aedat4")
    rng = np.random.default_rng(0)  # noise events, frames that do not change
    noise = events_at(rng.integers(0, 40, 500), rng.integers(0, 30, 500),
                      rng.integers(0, 2, 500))
    with pytest.raises(InputFileError, match="rec.aedat4: no pair of APS frames"):
        estimate_contrast(noise, [(frame, 0), (frame, 1000)], source="rec.aedat4")


# --- the contrast threshold in the rig calibration, the model file and the runtime ---

def test_contrast_gain_is_the_ratio_to_the_files_reference():
    assert contrast_gain({"recon_contrast_ref": 0.25}, 0.5) == pytest.approx(2.0)
    assert contrast_gain({"recon_contrast_ref": 0.25}, None) is None
    assert contrast_gain({}, 0.5) is None  # a file fitted before references existed


def one_window(module, k: int, events_per_pixel: int = 3):
    """The visible image of one window whose every pixel of a square got ON events."""
    h, w = 64, 64
    sub = torch.zeros(1, k, 2, h, w)
    sub[:, :, 0, 16:48, 16:48] = float(np.log1p(events_per_pixel))
    with torch.no_grad():
        _, _, vis, _ = module(torch.zeros(1, 1, h, w), torch.zeros(1, 10, h, w), sub, [])
    return vis


def test_shipped_file_scales_its_step_to_the_sensor():
    path = share_file("models", "evif_rt.ts")
    module, meta = load_exported(path)
    ref = meta["recon_contrast_ref"]
    assert 0.1 <= ref <= 0.6  # inside the training's threshold range
    base, k = float(module.recon.step_max), meta["config"]["sub_windows"]
    as_trained = one_window(module, k)
    assert set_contrast(module, meta, ref) == pytest.approx(1.0)
    assert torch.equal(one_window(module, k), as_trained)
    module2, _ = load_exported(path)
    assert set_contrast(module2, meta, 2 * ref) == pytest.approx(2.0)
    assert float(module2.recon.step_max) == pytest.approx(2 * base)
    # a larger threshold: each event moves the kept image further where events fell
    assert not torch.equal(one_window(module2, k), as_trained)
    module3, _ = load_exported(path)
    assert set_contrast(module3, meta, None) is None
    assert float(module3.recon.step_max) == base


RIG = """davis: {width: 346, height: 260}
ir: {width: 320, height: 256}
ir_to_davis_homography: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
ir_exposure_ns: 25000000
"""


def test_calibration_reads_writes_and_checks_the_contrast(tmp_path):
    p = tmp_path / "rig.yaml"
    p.write_text(RIG)
    assert load_calibration(p).davis_contrast is None
    p.write_text(RIG + "davis_contrast: 0.42\n")
    calib = load_calibration(p)
    assert calib.davis_contrast == 0.42
    calib.save(tmp_path / "copy.yaml")
    assert load_calibration(tmp_path / "copy.yaml").davis_contrast == 0.42
    for bad in ("abc", "0", "-0.3", "3.5", ".nan"):
        p.write_text(RIG + f"davis_contrast: {bad}\n")
        with pytest.raises(ConfigError, match=r"rig.yaml: field 'davis_contrast'"):
            load_calibration(p)


def test_runner_applies_the_rigs_contrast_or_says_why_not(tmp_path, tiny_model):
    p = tmp_path / "rig.yaml"
    p.write_text(RIG + "davis_contrast: 0.5\n")
    calib = load_calibration(p)
    path = share_file("models", "evif_rt.ts")
    runner = EvifRunner(path, calib, "cpu")
    ref = load_exported(path)[1]["recon_contrast_ref"]
    assert runner.contrast_gain == pytest.approx(0.5 / ref)
    assert float(runner.model.recon.step_max) == pytest.approx(0.1 * 0.5 / ref)
    assert not runner.warnings
    tiny = EvifRunner(tiny_model, calib, "cpu")  # no advection, no reference
    assert tiny.contrast_gain is None
    assert any("davis_contrast (0.5) is not used" in w for w in tiny.warnings)


def test_contrast_cli_on_a_dv_file_writes_the_rig_file(tmp_path, capsys):
    out = tmp_path / "rig.yaml"
    assert main(["contrast", str(FIXTURE), "--calibration",
                 str(share_file("calibration", "synthetic_rig.yaml")), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    c = float(re.search(r"contrast threshold ([0-9.]+)", text).group(1))
    assert 0.1 < c < 1.0  # what DAVIS346 biases give; the file's own value is not known
    assert load_calibration(out).davis_contrast == pytest.approx(c, abs=1e-3)
    assert main(["contrast", str(FIXTURE), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--calibration and --out go together" in err[0]


def test_eval_real_scales_the_step_when_told_the_contrast(tmp_path, capsys):
    model = share_file("models", "evif_rt.ts")
    ref = load_exported(model)[1]["recon_contrast_ref"]
    assert main(["eval-real", str(FIXTURE), "--out", str(tmp_path / "o"), "--model",
                 str(model), "--contrast", str(2 * ref), "--quiet"]) == 0
    assert "event step x2.00" in capsys.readouterr().out
    assert "event step x2.00" in (tmp_path / "o" / "summary.md").read_text()
