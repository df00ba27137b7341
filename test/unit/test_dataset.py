import numpy as np
import pytest

from evif_ros.apps.cli import main
from evif_ros.errors import InputFileError
from evif_ros.sim.dataset import iter_samples


def _load(path, split):
    return list(iter_samples(path, split))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    a = tmp_path_factory.mktemp("a")
    assert main(["dataset", "--out", str(a), "--split", "train", "--samples", "5",
                 "--seed", "4", "--shard-size", "2", "--workers", "1", "--quiet"]) == 0
    return a


def test_shards_and_sample_contents(dataset):
    assert len(list(dataset.glob("train-*.npz"))) == 3
    samples = _load(dataset, "train")
    assert len(samples) == 5
    s = samples[0]
    assert s["ir_blur"].shape == s["ir_sharp"].shape == (260, 346)
    assert s["ir_blur"].dtype == np.uint16 and s["vis_sharp"].dtype == np.uint8
    assert s["aps_blur"].shape == (260, 346)
    ev = s["events"]
    assert np.all(np.diff(ev["t"]) >= 0)
    # events cover the reconstruction sub-windows before the exposure and the exposure
    assert ev["t"].min() >= s["recon_start_ns"] and ev["t"].max() <= s["exposure_ns"]


def test_same_seed_same_data_other_split_differs(dataset, tmp_path):
    assert main(["dataset", "--out", str(tmp_path), "--split", "train", "--samples", "5",
                 "--seed", "4", "--shard-size", "2", "--workers", "2", "--quiet"]) == 0
    for a, b in zip(_load(dataset, "train"), _load(tmp_path, "train")):
        for key in ("ir_blur", "ir_sharp", "vis_sharp", "aps_blur", "events"):
            np.testing.assert_array_equal(a[key], b[key])
    t = tmp_path / "test"
    assert main(["dataset", "--out", str(t), "--split", "test", "--samples", "1",
                 "--seed", "4", "--quiet"]) == 0
    assert not np.array_equal(_load(t, "test")[0]["ir_sharp"],
                              _load(dataset, "train")[0]["ir_sharp"])


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(InputFileError, match="no train"):
        next(iter_samples(tmp_path, "train"))


def test_sequence_samples_hold_the_earlier_frames_events_and_their_grids(tmp_path):
    from evif_ros.learning.data import ShardData
    assert main(["dataset", "--out", str(tmp_path), "--split", "train", "--samples", "2",
                 "--seed", "4", "--workers", "1", "--warmup-frames", "2",
                 "--frame-period-ms", "40", "--quiet"]) == 0
    s = _load(tmp_path, "train")[0]
    assert s["warmup_frames"] == 2 and s["frame_period_ns"] == 40_000_000
    # events from the first earlier frame's sub-windows: 2 periods before recon_start
    assert s["events"]["t"].min() >= s["recon_start_ns"] - 80_000_000
    assert s["events"]["t"].min() < s["recon_start_ns"] - 40_000_000
    batch = ShardData(tmp_path, "train").batch(np.random.default_rng(0), 2, 32, 3)
    assert tuple(batch.warm_sub_vox.shape) == (2, 2, 3, 10, 32, 32)
    assert tuple(batch.sub_vox.shape) == (2, 3, 10, 32, 32)


def test_warmup_grids_by_hand():
    from evif_ros.learning.data import warmup_tensors
    from evif_ros.runtime.events import EVENT_DTYPE
    # exposure 20 ms, reconstruction from -10 ms to mid-exposure (10 ms): K = 2 sub-windows
    # of 10 ms each ([-10, 0), [0, 10) ms); two earlier frames 30 ms apart, oldest first:
    # frame 0's sub-windows are [-70, -60), [-60, -50) ms, frame 1's [-40, -30), [-30, -20);
    # 5 time bins of 2 ms per sub-window, channels ON bins 0-4 then OFF bins 5-9
    ev = np.zeros(3, EVENT_DTYPE)
    ev["t"] = [-65_000_000, -31_000_000, -5_000_000]  # frame 0 sw 0; frame 1 sw 1; current
    ev["x"], ev["y"], ev["p"] = [1, 2, 3], [0, 1, 2], [1, 0, 1]
    grids = warmup_tensors(ev, 20_000_000, -10_000_000, 2, 2, 30_000_000, 4, 5)
    assert grids.shape == (2, 2, 10, 4, 5) and grids.sum() == 2
    assert grids[0, 0, 2, 0, 1] == 1  # -65 ms: frame 0, sub-window 0, bin 2, ON
    assert grids[1, 0, 9, 1, 2] == 1  # -31 ms: frame 1, sub-window 0, bin 4, OFF
