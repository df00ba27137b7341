"""The visible-only sequence simulator: rests and flicker as the issue asks, determinism."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from evif_ros.errors import ConfigError
from evif_ros.sim.dvs import DvsConfig, DvsSimulator
from evif_ros.sim.video import VideoConfig, make_sequence, simulate_windows, speed_profile


def _photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur((rng.random((200, 240)) * 255).astype(np.uint8), (0, 0), 3)
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), img)
    return path


def test_rest_windows_carry_only_noise_and_motion_windows_many_events():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48]
    stripes = (0.05 + 0.9 * (np.sin(xx / 3.0) > 0)).astype(np.float32)
    moving_until = 0.1

    def render(t, lit=True):
        shift = 40.0 * min(t, moving_until)  # 40 px/s, then rest
        return np.roll(stripes, int(round(shift * 4)) // 4, axis=1)

    dvs = DvsSimulator(DvsConfig(width=48, height=48, noise_rate_hz=0.0,
                                 hot_pixel_fraction=0.0), rng)
    counts, frames, _ = simulate_windows(render, lambda a, b: 160.0 if a < moving_until else 0,
                                         dvs, rng, (48, 48), 20_000_000, 10, 4)
    per_window = counts.reshape(10, -1).sum(1)
    assert counts.shape == (10, 4, 2, 48, 48) and frames.shape == (10, 48, 48)
    assert per_window[1:5].min() > 100  # 20-100 ms: the stripes move (a px every 25 ms)
    assert per_window[6:].max() == 0  # at rest, without noise, nothing fires


def test_flicker_fires_a_static_scene_but_not_its_ground_truth():
    rng = np.random.default_rng(1)
    base = np.full((32, 32), 0.5, np.float32)

    def render(t, lit=True):
        return base * (1 + 0.4 * np.sin(2 * np.pi * 100.0 * t)) if lit else base

    dvs = DvsSimulator(DvsConfig(width=32, height=32, noise_rate_hz=0.0,
                                 hot_pixel_fraction=0.0, c_sigma=0.0), rng)
    counts, frames, _ = simulate_windows(render, lambda a, b: 0.0, dvs, rng, (32, 32),
                                         30_000_000, 3, 6, flicker_hz=100.0)
    # ln(1.4 / 0.6) = 0.85 log units peak to peak: 3 ON + 3 OFF crossings per cycle at 0.25
    assert counts[:, :, 0].sum() > 32 * 32 * 3 * 2 and counts[:, :, 1].sum() > 32 * 32 * 3 * 2
    assert np.ptp(frames.astype(int), axis=0).max() == 0  # ground truth under mean light


def test_speed_profile_rests_and_bounds():
    rng = np.random.default_rng(5)
    t = np.linspace(0, 1, 1001)
    rests = 0
    for _ in range(20):
        v = speed_profile(rng, t, 100.0)
        assert np.abs(v).max() <= 100.0
        rests += int((v == 0).sum() > 50)
    assert rests >= 5  # held stops are common, as the issue asks


def test_sequences_are_deterministic_per_seed(tmp_path):
    cfg = VideoConfig(photos_dir=str(tmp_path), size=32, windows=4, sub_windows=3)
    photo = _photo(tmp_path)
    a = make_sequence(photo, cfg, np.random.default_rng(7))
    b = make_sequence(photo, cfg, np.random.default_rng(7))
    c = make_sequence(photo, cfg, np.random.default_rng(8))
    assert a["counts"].shape == (4, 3, 2, 32, 32) and a["counts"].dtype == np.uint8
    assert np.array_equal(a["counts"], b["counts"]) and np.array_equal(a["frames"], b["frames"])
    assert not np.array_equal(a["frames"], c["frames"])
    assert 10e6 <= a["period_ns"] <= 110e6


def test_training_reads_each_sequences_threshold_back(tmp_path):
    """`train-visible --contrast-ref` scales each sequence's step by the threshold its
    sensor was drawn with: the shard keeps it beside the events and the batch says which
    sequences it drew; a shard written before thresholds were stored reads as NaN, which
    the option refuses."""
    from evif_ros.learning.train_visible import SequenceData
    from evif_ros.sim.video import write_video_dataset

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        cv2.imwrite(str(photos / f"p{i}.png"), cv2.imread(str(_photo(tmp_path))))
    cfg = VideoConfig(photos_dir=str(photos), size=32, windows=3, sub_windows=2)
    write_video_dataset(tmp_path / "v", "train", 3, 5, cfg, workers=1, progress=False)
    data = SequenceData(tmp_path / "v")
    stored = np.load(sorted((tmp_path / "v").glob("train-*.npz"))[0])["c_on"]
    assert np.array_equal(data.c_on, stored) and ((stored >= 0.1) & (stored <= 0.6)).all()
    ev, _ = data.batch(np.random.default_rng(0), 4, 16, 2)
    assert len(data.last) == 4 and ev.shape[0] == 4
    old = tmp_path / "old"
    old.mkdir()
    z = dict(np.load(sorted((tmp_path / "v").glob("train-*.npz"))[0]))
    del z["c_on"]
    np.savez(old / "train-00000.npz", **z)
    assert np.isnan(SequenceData(old).c_on).all()


def test_event_gap_drops_one_span_after_the_first_window():
    from evif_ros.learning.train_visible import drop_event_gap

    t, k = 5, 3
    counts = np.ones((t, k, 2, 4, 4), np.uint8)
    for seed in range(40):
        ev = counts.copy()
        a, b = drop_event_gap(ev, np.random.default_rng(seed))
        flat = ev.reshape(t * k, -1)
        empty = np.flatnonzero(flat.sum(1) == 0)
        # one span of 1 to 2K sub-windows, none of the first window's, the rest untouched
        assert np.array_equal(empty, np.arange(a, b)) and 1 <= b - a <= 2 * k and a >= k
        assert flat[np.setdiff1d(np.arange(t * k), empty)].min() == 1


def test_training_batches_with_gaps_leave_the_data_in_memory_alone(tmp_path):
    from evif_ros.learning.train_visible import SequenceData
    from evif_ros.sim.video import write_video_dataset

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "p0.png"), cv2.imread(str(_photo(tmp_path))))
    cfg = VideoConfig(photos_dir=str(photos), size=32, windows=3, sub_windows=2)
    write_video_dataset(tmp_path / "v", "train", 2, 5, cfg, workers=1, progress=False)
    data = SequenceData(tmp_path / "v")
    data.counts[:] = 1  # an event everywhere: a batch's empty sub-windows are its gaps
    # whole-size crops: without the copy a batch would be a view of the data
    ev, _ = data.batch(np.random.default_rng(0), 8, 32, 3, gaps=1.0)
    assert (data.counts == 1).all()
    per_sub = ev.reshape(8, 3 * 2, -1).sum(2)
    assert (per_sub == 0).any(1).all()  # every sequence lost a span


def test_scene_folders_skip_thermal_halves_and_split_pairs_as_the_pipeline_does(tmp_path):
    """A registered pair set (vi/ + ir/) adds its visible halves only, and each visible half
    falls in the split the pipeline's pair library (`PairLibrary.split`, the truth here)
    gives its file name, so no pipeline test image becomes a training scene."""
    from evif_ros.sim.pairs import PairLibrary
    from evif_ros.sim.video import list_scenes

    img = cv2.imread(str(_photo(tmp_path)))
    photos, pairs = tmp_path / "photos", tmp_path / "pairs"
    for folder in (photos / "sub", pairs / "vi", pairs / "ir"):
        folder.mkdir(parents=True)
    for i in range(30):
        cv2.imwrite(str(photos / "sub" / f"p{i}.png"), img)
        cv2.imwrite(str(pairs / "vi" / f"{i:05d}.png"), img)
        cv2.imwrite(str(pairs / "ir" / f"{i:05d}.png"), img[:, :, 0])
    lib = PairLibrary.open(pairs)
    cfg = VideoConfig(photos_dir=str(photos), extra_dirs=(str(pairs),))
    for split in ("train", "test"):
        scenes = list_scenes(cfg, split)
        assert not any(p.parent.name == "ir" for p in scenes)
        assert {p.name for p in scenes if p.parent.name == "vi"} == set(lib.split(split))
    assert len(list_scenes(cfg, "train")) + len(list_scenes(cfg, "test")) == 60


def test_contrast_range_reaches_the_sensor_and_the_default_draws_as_before(tmp_path):
    """--contrast narrows each sequence's ON threshold (log-uniform) to a rig's measured
    range; OFF stays 0.7-1.4 times ON; the default draws the numbers it drew before."""
    from evif_ros.sim.video import randomized_sensor, write_video_dataset

    near = [randomized_sensor(np.random.default_rng(s), 32, contrast=(0.4, 0.5))[0]
            for s in range(60)]
    on = np.array([c.c_on for c in near])
    assert on.min() >= 0.4 and on.max() <= 0.5 and on.std() > 0.02
    ratio = np.array([c.c_off for c in near]) / on
    assert ratio.min() >= 0.7 - 1e-9 and ratio.max() <= 1.4 + 1e-9
    for s in range(20):
        # before the option: exp(uniform(log 0.1, log 0.6)), the first draw
        expect = float(np.exp(np.random.default_rng(s).uniform(np.log(0.1), np.log(0.6))))
        assert randomized_sensor(np.random.default_rng(s), 32)[0].c_on == expect
    with pytest.raises(ConfigError, match="--contrast 0.5 0.4"):
        write_video_dataset(tmp_path / "v", "train", 1, 0,
                            VideoConfig(photos_dir=str(tmp_path), contrast=(0.5, 0.4)),
                            progress=False)


def test_refractory_range_reaches_the_sensor_and_defaults_keep_old_datasets(tmp_path):
    """--refractory-ms draws each sequence's refractory period from its range (multiples of
    1 us); the default range draws the same numbers as before the option, and a dataset
    written before the option resumes (its metadata lacks the new fields)."""
    import json

    from evif_ros.sim.video import randomized_sensor, write_video_dataset

    long = [randomized_sensor(np.random.default_rng(s), 32, (1.5, 2.5))[0].refractory_ns
            for s in range(50)]
    assert min(long) >= 1_500_000 and max(long) <= 2_500_000 and len(set(long)) > 40
    for s in range(20):
        # the draws before the option: thresholds (2), mismatch, then the refractory period
        # as int(uniform(0, 1e6)) // 1000 * 1000
        rng = np.random.default_rng(s)
        rng.uniform(size=3)
        expect = int(rng.uniform(0, 1e6)) // 1000 * 1000
        assert randomized_sensor(np.random.default_rng(s), 32)[0].refractory_ns == expect
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "p0.png"), cv2.imread(str(_photo(tmp_path))))
    cfg = VideoConfig(photos_dir=str(photos), size=32, windows=2, sub_windows=2)
    write_video_dataset(tmp_path / "v", "train", 2, 5, cfg, workers=1, progress=False)
    meta_path = tmp_path / "v" / "train.json"
    meta = json.loads(meta_path.read_text())
    for key in ("extra_dirs", "refractory_ms", "contrast"):
        del meta["config"][key]
    meta_path.write_text(json.dumps(meta))
    write_video_dataset(tmp_path / "v", "train", 2, 5, cfg, workers=1, progress=False)
    other = VideoConfig(photos_dir=str(photos), size=32, windows=2, sub_windows=2,
                        refractory_ms=(0.0, 2.0))
    with pytest.raises(ConfigError, match="different dataset"):
        write_video_dataset(tmp_path / "v", "train", 2, 5, other, workers=1, progress=False)
    with pytest.raises(ConfigError, match="refractory"):
        write_video_dataset(tmp_path / "w", "train", 2, 5,
                            VideoConfig(photos_dir=str(photos), refractory_ms=(2.0, 1.0)),
                            workers=1, progress=False)
