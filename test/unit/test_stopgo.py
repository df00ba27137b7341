"""The simulated stop-and-go recordings (`evif eval-stopgo`): the camera moves, then only the
sensor's noise fires; models are loaded as the node loads them, told the sensor's threshold
when asked."""

import cv2
import numpy as np
import pytest

from evif_ros.errors import ConfigError
from evif_ros.evaluation.stopgo import load_visible_model
from evif_ros.paths import share_file
from evif_ros.runtime.model_file import load_exported
from evif_ros.sim.dvs import DvsConfig
from evif_ros.sim.stopgo import PERIOD_NS, SENSOR_CONTRAST, K, stopgo_recording


def _scene() -> np.ndarray:
    rng = np.random.default_rng(2)
    z = cv2.GaussianBlur(rng.random((120, 160)).astype(np.float32), (0, 0), 2.0)
    return np.clip((z - z.min()) / np.ptp(z), 0.02, 1.0)


def test_stop_moves_for_a_second_then_rests_with_noise_only():
    rec = stopgo_recording(_scene(), "day", "stop", seed=0, size=(64, 48))
    per_window = rec.counts.reshape(rec.counts.shape[0], -1).sum(1)
    # 1 s moving and 2.5 s resting at 30 Hz
    assert rec.counts.shape[1:] == (K, 2, 48, 64) and rec.counts.shape[0] == 105
    # window 30 starts at 30 x 33,333,333 ns, 10 ns before the stop: the rest begins at 31
    assert rec.stop_window == 31
    moving, resting = per_window[2:30], per_window[rec.stop_window:]
    # at rest only background activity: 0.1 Hz per pixel, 10 events per window expected
    expected = 0.1 * 64 * 48 * PERIOD_NS * 1e-9
    assert resting.max() < 3 * expected and resting.mean() == pytest.approx(expected, rel=0.3)
    assert moving.min() > 100 * resting.mean()
    assert np.ptp(rec.frames[rec.stop_window + 1:].astype(int), axis=0).max() == 0


def test_pan_never_rests():
    rec = stopgo_recording(_scene(), "night", "pan", seed=1, size=(64, 48))
    assert rec.stop_window == rec.counts.shape[0] == 90


def test_models_are_told_the_simulated_sensors_threshold():
    assert SENSOR_CONTRAST == DvsConfig().c_on  # what the recordings are simulated with
    path = share_file("models", "evif_rt.ts")
    module, meta = load_exported(path)
    base = float(module.recon.step_max)
    told = load_visible_model(path, K, SENSOR_CONTRAST)
    as_trained = load_visible_model(path, K)
    assert float(told.recon.step_max) == pytest.approx(
        base * SENSOR_CONTRAST / meta["recon_contrast_ref"])
    assert float(as_trained.recon.step_max) == base
    with pytest.raises(ConfigError, match="K=4"):
        load_visible_model(path, 4)


def test_eval_stopgo_help_names_the_simulated_sensors_threshold(capsys):
    from evif_ros.apps.cli import main

    main(["eval-stopgo", "--help"])  # the CLI turns argparse's exit into a return code
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"the simulated sensor's: {SENSOR_CONTRAST:g}" in help_text
