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


def test_eval_real_at_90ms_steps_like_three_30ms_windows(tmp_path, model_file):
    """`evif eval-real --period-ms 90` on a model trained at 33.3 ms takes each window in
    three 30 ms steps: with every APS mid-exposure on both grids, its scores are those of
    `--period-ms 30` (one step per window), and one 90 ms step would not give them."""
    import csv

    import cv2

    from evif_ros.apps.cli import main

    rng = np.random.default_rng(3)
    n, w, h = 20_000, 64, 48
    t = np.sort(np.concatenate([[1_000_000], rng.integers(1_000_001, 1_300_000, n - 1)]))
    np.savez(tmp_path / "events.npz", x=rng.integers(0, w, n).astype(np.uint16),
             y=rng.integers(0, h, n).astype(np.uint16), t_us=t.astype(np.int64),
             p=rng.integers(0, 2, n).astype(np.uint8), width=w, height=h)
    (tmp_path / "aps").mkdir()
    rows = ["index,aps,exposure_start_us,exposure_end_us"]
    for i in range(3):  # mid-exposures 90, 180, 270 ms after the first event
        cv2.imwrite(str(tmp_path / "aps" / f"{i}.png"), (rng.random((h, w)) * 255).astype(np.uint8))
        mid = 1_000_000 + 90_000 * (i + 1)
        rows.append(f"{i},aps/{i}.png,{mid - 10_000},{mid + 10_000}")
    (tmp_path / "frames.csv").write_text("\n".join(rows) + "\n")
    scores = {}
    for period in ("30", "90"):
        out = tmp_path / f"out{period}"
        assert main(["eval-real", str(tmp_path), "--model", str(model_file), "--period-ms",
                     period, "--out", str(out), "--quiet"]) == 0
        scores[period] = [(r["frame"], r["evif"], r["evif_exposure_mean"])
                          for r in csv.DictReader(open(out / "scores.csv"))]
    assert len(scores["30"]) == 3 and scores["90"] == scores["30"]


def test_a_10hz_cameras_windows_carry_the_state_through_trigger_jitter(model_file):
    """Windows 100 ms + 50 us apart, each spanning 100 ms of events: consecutive (one reset,
    the first), though over the default 100 ms reset gap; a 250 ms pause resets."""
    from evif_ros.runtime.sync import ExposureWindow

    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    runner = EvifRunner(model_file, calib, "cpu")
    assert runner.reset_gap_ns == 100 * MS
    ir = np.zeros(calib.ir_size[::-1], np.uint16)  # warped onto the DAVIS grid by run()
    starts = [1_000 * MS + i * (100 * MS + 50_000) for i in range(4)]
    starts.append(starts[-1] + 250 * MS)
    for t0 in starts:
        mid = t0 + 12 * MS
        edges = recon_edges(mid, 100 * MS, runner.sub_windows_for(100 * MS))
        runner.run(ExposureWindow(ir, t0, t0, 25 * MS, np.zeros(0, EVENT_DTYPE), edges, 0))
    assert runner.resets == 2
