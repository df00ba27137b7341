"""`evif eval` on a tiny test split and on a bag, with a tiny real TorchScript model."""

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import tiny_config

from evif_ros.apps.cli import main
from evif_ros.evaluation.benchmark import dataset_runner, run_exposure
from evif_ros.learning.export import save
from evif_ros.learning.frame_deblur import FrameDeblurNet
from evif_ros.learning.pipeline import EvifPipeline
from evif_ros.sim.dataset import DatasetConfig, iter_samples, write_dataset
from evif_ros.sim.recording import simulate_recording
from evif_ros.sim.rig import RigConfig
from evif_ros.sim.thermal import SYNTHETIC_IR_TO_DAVIS, ThermalConfig


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model):
    d = tmp_path_factory.mktemp("models")
    shutil.copy(tiny_model, d / "evif.ts")
    torch.manual_seed(1)
    cfg = tiny_config()
    save(EvifPipeline(cfg), cfg, d / "abl.ts")
    torch.jit.save(torch.jit.script(FrameDeblurNet(4).eval()), str(d / "fd.ts"))
    return d


@pytest.mark.timeout(600)
@pytest.mark.slow  # trains or runs a whole CLI flow: make test, not test-fast
def test_eval_on_a_test_split_writes_both_tables_plots_and_grid(models, tmp_path):
    data = tmp_path / "data"
    write_dataset(data, "test", 3, seed=5, shard_size=3, workers=1, progress=False)
    out = tmp_path / "eval"
    assert main(["eval", "--data", str(data), "--out", str(out), "--model",
                 str(models / "evif.ts"), "--ablation", str(models / "abl.ts"),
                 "--frame-deblur", str(models / "fd.ts"), "--quiet"]) == 0
    for name in ("table1.md", "table1.csv", "table2.md", "table2.csv", "table3.md",
                 "per_scenario.md",
                 "table1.png", "table2.png", "examples.png", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(out / "table1.csv")))
    methods = [r["method"] for r in rows]
    assert "EVIF" in methods and "gff (blurry)" in methods and "gff (deblurred)" in methods
    assert all(np.isfinite(float(r[c])) for r in rows for c in ("EN", "MI", "AG", "SSIM"))
    t2 = {r["method"] for r in csv.DictReader(open(out / "table2.csv"))}
    assert t2 == {"blurry", "frame-only deblurring", "EVIF w/o enhancement", "EVIF"}


@pytest.mark.timeout(600)
@pytest.mark.slow  # trains or runs a whole CLI flow: make test, not test-fast
def test_eval_on_a_bag_without_ground_truth(models, tmp_path):
    sim = tmp_path / "sim"
    thermal = ThermalConfig(ir_to_davis=tuple(map(tuple, SYNTHETIC_IR_TO_DAVIS)))
    simulate_recording(sim, 0.25, RigConfig(scenario="day", seed=6, thermal=thermal),
                       progress=False)
    out = tmp_path / "evalbag"
    assert main(["eval", "--bag", str(sim / "rig.mcap"), "--out", str(out), "--model",
                 str(models / "evif.ts"), "--methods", "average", "gff", "--quiet"]) == 0
    text = (out / "table1.md").read_text()
    assert "no ground truth" in text and "| EVIF |" in text and "| gff |" in text
    # a simulated recording carries its ground truth: every window is scored against it,
    # the model with its state carried (as the node) and reset per exposure
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ground_truth_n"] == summary["n"] > 0
    vis, ir = summary["ground_truth"]["visible SSIM"], summary["ground_truth"]["IR PSNR (dB)"]
    assert set(vis) == {"EVIF (state carried, as the node)", "EVIF (state reset per exposure)",
                        "event integration (leaky)", "APS frame (nearest)"}
    assert all(-1 <= v <= 1 for v in vis.values()) and all(10 < v < 80 for v in ir.values())


def test_eval_on_an_empty_directory_is_one_line(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "no test" in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_eval_scores_a_validation_set_of_train_shards_and_only_those(models, tmp_path, capsys):
    """`--split train` scores a set made with `evif dataset --split train` (a validation set
    of another seed); the default still looks for test shards only."""
    data = tmp_path / "val"
    write_dataset(data, "train", 2, seed=9, shard_size=2, workers=1, progress=False)
    out = tmp_path / "eval"
    assert main(["eval", "--data", str(data), "--out", str(out), "--model",
                 str(models / "evif.ts"), "--only-evif", "--split", "train", "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["n"] == 2
    assert main(["eval", "--data", str(data), "--out", str(tmp_path / "o"), "--only-evif",
                 "--quiet"]) == 2
    assert "no test-*.npz shards" in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_carry_runs_the_earlier_frames_one_period_apart_as_the_node(models, tmp_path, capsys):
    """`evif eval --carry`: the reconstruction first runs a sequence sample's earlier frames,
    each over one IR frame period ending at its own mid-exposure, the state carried. The
    windows are computed here by hand, not by the code under test."""
    period, exposure, n = 40_000_000, 25_000_000, 2
    data = tmp_path / "seq"
    write_dataset(data, "test", 1, seed=3, shard_size=1, workers=1, progress=False,
                  cfg=DatasetConfig(warmup_frames=n, frame_period_ns=period,
                                    exposure_ns=exposure))
    s = next(iter_samples(data, "test"))
    runner = dataset_runner(models / "evif.ts", [s])
    k = runner.k
    runner.reset()
    for j in (2, 1, 0):  # frames ending 80 ms, 40 ms and 0 ms before this mid-exposure
        end = 12_500_000 - j * period
        edges = np.array([end - period + i * period // k for i in range(k)] + [end], np.int64)
        by_hand = runner(s["ir_blur"], s["events"], -j * period, exposure, edges, warp=False)
    carried = run_exposure(runner, s, carry=True)[0]
    np.testing.assert_array_equal(carried.visible, by_hand.visible)
    np.testing.assert_array_equal(carried.fused, by_hand.fused)
    # the earlier frames' events change what the exposure shows
    assert not np.array_equal(run_exposure(runner, s)[0].visible, carried.visible)
    out = tmp_path / "eval"
    assert main(["eval", "--data", str(data), "--out", str(out), "--model",
                 str(models / "evif.ts"), "--only-evif", "--carry", "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["n"] == 1
    # single exposures have nothing to carry: one line naming the folder
    single = tmp_path / "single"
    write_dataset(single, "test", 1, seed=3, shard_size=1, workers=1, progress=False)
    assert main(["eval", "--data", str(single), "--out", str(tmp_path / "o"), "--only-evif",
                 "--carry", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--carry needs sequence samples" in err and str(single) in err
