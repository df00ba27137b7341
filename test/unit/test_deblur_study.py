"""The deblurring learning-curve study (evif_ros.evaluation.deblur_study) on a tiny simulated
dataset: a design trains for its budget, its curve and network are written, a finished
design is not trained again, and the table reports gains over the blurry frame."""

import json

import numpy as np
import pytest
import torch

from evif_ros.evaluation.benchmark import stretch, to8
from evif_ros.evaluation.deblur_study import DESIGNS, Validation, run_design, table
from evif_ros.evaluation.metrics import psnr
from evif_ros.learning.data import ShardData, ir_range
from evif_ros.sim.dataset import iter_samples


def test_a_design_trains_for_its_budget_and_is_kept(tiny_data, tmp_path):
    samples = list(iter_samples(tiny_data, "test"))
    val = Validation(samples)
    # the blurry frame's score, by hand: the frame stretched by its own range
    s = samples[0]
    lo, scale = ir_range(s["ir_blur"])
    by_hand = psnr(to8(np.clip((s["ir_blur"] - lo) / scale, 0, 1)),
                   to8(stretch(s["ir_sharp"], lo, scale)))
    assert val.items[0][5] == pytest.approx(by_hand)
    design = DESIGNS["events-h8"]
    res = run_design(design, ShardData(tiny_data, "train"), val, tmp_path / "out",
                     tmp_path / "w", budget_min=0.05, points=2, batch=2, crop=32,
                     progress=lambda m: None)
    curve = res["curve"]
    assert len(curve) == 3 and curve[0]["iters"] == 0
    assert 0 < curve[1]["iters"] < curve[2]["iters"]
    assert curve[2]["train_s"] >= 0.05 * 60 and res["device"] == "cpu"
    assert all(np.isfinite(c["psnr"]) for c in curve)
    net = torch.jit.load(str(tmp_path / "w" / "events-h8.ts"))
    x, v = val.items[0][0], val.items[0][1]
    assert net(x, torch.log1p(v), [])[0].shape == x.shape
    # finished: the stored curve comes back, nothing is trained again
    stored = json.loads((tmp_path / "out" / "events-h8.json").read_text())
    stored["curve"][-1]["psnr"] = 99.0
    (tmp_path / "out" / "events-h8.json").write_text(json.dumps(stored))
    again = run_design(design, ShardData(tiny_data, "train"), val, tmp_path / "out",
                       tmp_path / "w", budget_min=0.02, progress=lambda m: None)
    assert again["curve"][-1]["psnr"] == 99.0


def test_the_table_reports_gains_over_the_blurry_frame():
    result = {"design": {"name": "x", "events": True, "shuffle": 2}, "params": 1234,
              "blurry_psnr": 28.0,
              "curve": [{"iters": 0, "psnr": 28.0}, {"iters": 5, "psnr": 28.5},
                        {"iters": 10, "psnr": 29.25}]}
    row = table([result]).splitlines()[2]
    assert row == "| x | yes | 1/2 | 1,234 | 10 | 29.25 | +1.25 | +0.50 |"
