"""`scripts/adapt_visible.sh` run as a user runs it (a small run: two sequences, two
iterations, a tiny real-time-size model): the sensor's threshold range, the reconstruction
trained alone, a file the runtime scales by the rig's threshold, and a rerun that resumes."""

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from evif_ros.learning.export import save
from evif_ros.learning.pipeline import EvifPipeline, config_for
from evif_ros.runtime.model_file import load_exported

ROOT = Path(__file__).parents[2]
SMALL = {"SEQUENCES": "2", "ITERS": "2",
         "DATA_ARGS": "--size 32 --windows 3 --sub-windows 2",
         "TRAIN_ARGS": "--batch 1 --crop 32 --windows 3 --tbptt 3"}

pytestmark = pytest.mark.timeout(300)


def _run(c: str, run: Path, out: Path, photos: Path, init: Path):
    env = {**os.environ, **SMALL, "INIT": str(init)}
    return subprocess.run(["bash", "scripts/adapt_visible.sh", c, str(run), str(out),
                           str(photos)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)


def test_adapts_the_reconstruction_alone_to_the_sensors_threshold(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        noise = (rng.random((96, 128)) * 255).astype(np.uint8)
        cv2.imwrite(str(photos / f"p{i}.png"), cv2.normalize(
            cv2.GaussianBlur(noise, (0, 0), 3), None, 0, 255, cv2.NORM_MINMAX))
    torch.manual_seed(0)
    cfg = config_for("rt2", recon_base=4, deblur_base=4, fusion_base=4, fusion_dim=8,
                     sub_windows=2)
    init = tmp_path / "init.ts"
    save(EvifPipeline(cfg), cfg, init)
    run, out = tmp_path / "run", tmp_path / "adapted.ts"

    res = _run("0.46", run, out, photos, init)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "davis_contrast 0.46" in res.stdout
    # 0.46 / 1.27 = 0.362, 0.46 * 1.27 = 0.584: the range the data was drawn from
    meta = json.loads((run / "data" / "train.json").read_text())
    assert meta["config"]["contrast"] == [0.36, 0.58] and meta["sequences"] == 2
    c_on = np.concatenate([np.load(f)["c_on"] for f in sorted((run / "data").glob("train-*.npz"))])
    assert c_on.size == 2 and ((c_on >= 0.36) & (c_on <= 0.58)).all()

    before, _ = load_exported(init)
    after, meta_out = load_exported(out)
    assert meta_out["recon_contrast_ref"] == 0.29  # the node scales the step by C / 0.29
    assert meta_out["config"]["recon_feedback"] and meta_out["config"]["recon_advect"]
    old = dict(before.named_parameters())
    new = dict(after.named_parameters())
    for name, p in new.items():  # deblurring and fusion untouched, the reconstruction trained
        if not name.startswith("recon."):
            assert torch.equal(p, old[name]), name
    assert any(not (n in old and old[n].shape == p.shape and torch.equal(p, old[n]))
               for n, p in new.items() if n.startswith("recon."))

    log = (run / "visible" / "visible.csv").read_text()
    assert [line.split(",")[0] for line in log.splitlines()[1:]] == ["1", "2"]
    again = _run("0.46", run, out, photos, init)  # resumes: nothing left to train
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run / "visible" / "visible.csv").read_text() == log  # no iteration run again
    assert load_exported(out)[1]["recon_contrast_ref"] == 0.29
