"""A window whose events span more than the reconstruction was trained to take in one step
runs it in several, the state carried: the runner's result must be the one of consecutive
one-step windows cut by hand, through the model's ``step`` and, for files written before
it, through the whole forward."""

import numpy as np
import pytest
import torch

from evif_ros.learning.export import save
from evif_ros.learning.pipeline import EvifPipeline, config_for
from evif_ros.paths import share_file
from evif_ros.runtime.calibration import load_calibration
from evif_ros.runtime.events import EVENT_DTYPE, recon_edges
from evif_ros.runtime.feeder import WindowFeeder
from evif_ros.runtime.inference import EvifRunner

MS = 1_000_000


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(5)
    cfg = config_for("rt2", recon_base=4, deblur_base=4, fusion_base=4, fusion_dim=8,
                     sub_windows=3, recon_feedback=True)
    path = tmp_path_factory.mktemp("steps") / "fb.ts"
    save(EvifPipeline(cfg), cfg, path)  # recon_span_ns 33.3 ms: the step
    return path


def _events(w, h, t_end, n=40_000, seed=0):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, t_end, n))
    ev["x"], ev["y"] = rng.integers(0, w, n), rng.integers(0, h, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def test_steps_per_span_hand_counted(model_file):
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    runner = EvifRunner(model_file, calib, "cpu")
    assert runner.recon_step_ns == 33_333_333
    got = {ms: runner.steps_for(int(ms * MS)) for ms in (10, 25, 33.3, 34, 40, 66.7, 100, 101, 110)}
    assert got == {10: 1, 25: 1, 33.3: 1, 34: 1, 40: 2, 66.7: 2, 100: 3, 101: 3, 110: 4}
    assert runner.sub_windows_for(100 * MS) == 9
    assert EvifRunner(model_file, calib, "cpu", recon_step_ns=0).steps_for(100 * MS) == 1


@pytest.mark.parametrize("with_step", [True, False])
def test_a_100ms_window_equals_three_one_step_windows(model_file, with_step):
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    w, h = calib.davis_size
    # the IR frame on the DAVIS grid already (warp=False)
    ir = np.random.default_rng(1).integers(3000, 9000, (h, w)).astype(np.uint16)
    ev = _events(w, h, 100 * MS)
    runner = EvifRunner(model_file, calib, "cpu")
    edges = recon_edges(100 * MS, 100 * MS, runner.sub_windows_for(100 * MS))
    assert len(edges) == 3 * runner.k + 1
    if not with_step:  # a file written before `step`: the runner sees no such method
        class Old:
            def __init__(self, m):
                self.m = m

            def __call__(self, *a):
                return self.m(*a)
        runner.model = Old(runner.model)
    stepped = runner(ir, ev, 0, 25 * MS, edges, warp=False)
    by_hand = EvifRunner(model_file, calib, "cpu", recon_step_ns=0)
    for end in (100 * MS / 3, 200 * MS / 3, 100 * MS):  # three windows cut by hand
        end = int(round(end))
        res = by_hand(ir, ev, 0, 25 * MS, recon_edges(end, end - int(round(end - 100 * MS / 3)),
                                                        by_hand.k), warp=False)
    assert np.array_equal(stepped.visible, res.visible)
    assert np.array_equal(stepped.fused, res.fused)
    assert all(torch.equal(a, b) for a, b in zip(runner.state, by_hand.state))
    one_step = EvifRunner(model_file, calib, "cpu", recon_step_ns=0)
    once = one_step(ir, ev, 0, 25 * MS, recon_edges(100 * MS, 100 * MS, one_step.k), warp=False)
    assert not np.array_equal(once.visible, stepped.visible)  # else the steps could not show


def test_the_node_front_end_bins_every_step_of_a_10hz_camera(model_file):
    """A node told its camera runs at 10 Hz (recon_span 100 ms): the synchronizer cuts the
    window into three steps' sub-windows over the whole span."""
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    runner = EvifRunner(model_file, calib, "cpu")
    span = 100 * MS
    feeder = WindowFeeder(calib, runner.sub_windows_for(span), prebin=True, recon_span_ns=span)
    edges = feeder.sync.window_span(1_000 * MS)[0]
    assert len(edges) == 3 * runner.k + 1 and edges[-1] - edges[0] == span
