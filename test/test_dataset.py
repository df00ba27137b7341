import numpy as np
import pytest

from evif_ros.cli import main
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
