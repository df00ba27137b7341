"""Image-pair scenes: registration, small images, physics of the events, the split."""

import json

import cv2
import numpy as np
import pytest

from evif_ros.apps.cli import main
from evif_ros.runtime.voxel import polarity_voxel_grid
from evif_ros.sim.dataset import iter_samples
from evif_ros.sim.dvs import DvsConfig, DvsSimulator
from evif_ros.sim.pairs import ImagePairScene, PairLibrary, image_split, srgb_to_linear
from evif_ros.sim.scenarios import SCENARIOS

W, H = 346, 260


def _write_pair(root, name, vis_bgr, ir):
    (root / "vi").mkdir(parents=True, exist_ok=True)
    (root / "ir").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "vi" / name), vis_bgr)
    cv2.imwrite(str(root / "ir" / name), ir)


def _marker_pair(w, h, x, y):
    """A textured grey visible image and a flat IR image, each with one bright square
    at (x, y): the feature both modalities share."""
    rng = np.random.default_rng(0)
    vis = np.full((h, w, 3), 60, np.uint8) + rng.integers(0, 20, (h, w, 1), dtype=np.uint8)
    ir = np.full((h, w), 40, np.uint8)
    vis[y - 6:y + 6, x - 6:x + 6] = 250
    ir[y - 6:y + 6, x - 6:x + 6] = 230
    return vis, ir


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    for i in range(30):  # enough that both splits hold images (about 1 in 5 is test)
        vis, ir = _marker_pair(420, 320, 100 + 7 * i, 140)
        _write_pair(root, f"img_{i:02d}.png", vis, ir)
    return root


def _centroid(img, thresh):
    ys, xs = np.nonzero(img > thresh)
    return np.array([xs.mean(), ys.mean()])


def test_srgb_decoding_matches_the_standard():
    # IEC 61966-2-1 by hand: 0.5 -> ((0.5 + 0.055) / 1.055) ** 2.4; 0.04 -> 0.04 / 12.92
    out = srgb_to_linear(np.array([0.0, 0.04, 0.5, 1.0]))
    np.testing.assert_allclose(out, [0.0, 0.04 / 12.92, 0.21404114, 1.0], rtol=1e-5)


@pytest.mark.parametrize("size", [(420, 320), (300, 180)])  # the second is smaller than
def test_registration_kept_on_the_sensor_grid_at_every_time(tmp_path, size):  # the sensor
    w, h = size
    vis, ir = _marker_pair(w, h, w // 2, h // 2)
    _write_pair(tmp_path, "a.png", vis, ir)
    lin, unit = PairLibrary.open(tmp_path).load("a.png")
    scene = ImagePairScene(SCENARIOS["day"], 3, lin, unit, sprites=(0, 0))
    seen = []
    for t in np.linspace(0.0, 1.0, 9):
        rad, temp = scene.render(t)
        assert rad.shape == temp.shape == (H, W) and np.isfinite(rad).all()
        assert rad.min() > 0  # the DVS takes the log: JPEG black is not zero light
        c_vis = _centroid(rad, 0.5 * rad.max())
        c_ir = _centroid(temp, temp.min() + 0.5 * np.ptp(temp))
        np.testing.assert_allclose(c_vis, c_ir, atol=0.5)
        seen.append(c_vis)
    # and the camera did move, so the check above is not a still frame's
    assert np.ptp(np.array(seen), axis=0).max() > 5


def test_static_scene_gives_only_noise_and_motion_on_where_radiance_rises(pairs):
    lin, unit = PairLibrary.open(pairs).load("img_03.png")
    quiet = DvsConfig(noise_rate_hz=0.0, hot_pixel_fraction=0.0)

    def run(scenario, steps, step_ns=1_000_000):
        scene = ImagePairScene(SCENARIOS[scenario], 5, lin, unit, sprites=(0, 0))
        dvs = DvsSimulator(quiet, np.random.default_rng(1))
        frames = [scene.render(0.3 + k * step_ns * 1e-9)[0] for k in range(steps)]
        ev = np.concatenate([dvs.step(f, k * step_ns) for k, f in enumerate(frames)])
        return ev, frames

    ev, _ = run("static", 30)
    assert ev.size == 0  # nothing moves and the sensor is noiseless: no event at all
    ev, frames = run("day", 21)
    d_log = np.log(frames[-1] + quiet.log_eps) - np.log(frames[0] + quiet.log_eps)
    grid = polarity_voxel_grid(ev, 1, 0, 20_000_001, H, W)
    net = grid[0] - grid[1]
    up, down = d_log > 3 * quiet.c_on, d_log < -3 * quiet.c_off
    assert up.sum() > 20 and down.sum() > 20
    assert np.mean(net[up] > 0) > 0.95 and np.mean(net[down] < 0) > 0.95


def test_split_by_image_is_disjoint_and_written_into_the_dataset(pairs, tmp_path):
    lib = PairLibrary.open(pairs)
    names = set(lib.names)
    train, test = set(lib.split("train")), set(lib.split("test"))
    assert train | test == names and not train & test
    assert all(image_split(n) == "test" for n in test)
    for split in ("train", "test"):
        assert main(["dataset", "--out", str(tmp_path), "--split", split, "--samples", "4",
                     "--seed", "3", "--pairs", str(pairs), "--procedural-fraction", "0.25",
                     "--workers", "1", "--quiet"]) == 0
    meta = {s: json.loads((tmp_path / f"{s}.json").read_text()) for s in ("train", "test")}
    assert set(meta["train"]["images"]) == train and set(meta["test"]["images"]) == test
    for split, allowed in (("train", train), ("test", test)):
        for s in iter_samples(tmp_path, split):
            if s["source"] == "pairs":
                assert s["image"] in allowed
            else:
                assert s["image"] == ""


def test_pair_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(Exception, match="no vi/ folder"):
        PairLibrary.open(tmp_path)
    vis, ir = _marker_pair(100, 80, 50, 40)
    _write_pair(tmp_path, "x.png", vis, cv2.resize(ir, (90, 80)))
    with pytest.raises(Exception, match="registered pixel for pixel"):
        PairLibrary.open(tmp_path).load("x.png")


def test_rig_films_the_named_pair_and_rejects_an_unknown_one(pairs):
    from evif_ros.sim.rig import EventChunk, IrFrame, Rig, RigConfig

    rig = Rig(RigConfig(scenario="day", seed=2, pairs_dir=str(pairs), image="img_04.png"))
    assert rig.image == "img_04.png"
    recs = list(rig.run(0.08))
    frames = [r for r in recs if isinstance(r, IrFrame)]
    assert sum(r.events.size for r in recs if isinstance(r, EventChunk)) > 1000
    assert frames and frames[0].counts.shape == (256, 320)
    with pytest.raises(Exception, match="no pair named 'nope.png'"):
        Rig(RigConfig(pairs_dir=str(pairs), image="nope.png"))


def test_motion_scale_multiplies_the_camera_speed(tmp_path):
    """Pair scenes move at the scenario's speeds times ``motion_scale`` (`day`: 350 px/s
    peak). The shared marker's image speed, from its centroid every 10 ms over 4 s: the
    peak stays under the scenario's, and the RMS speed of a sum of sinusoids does not
    depend on their frequencies, so it scales with ``motion_scale`` alone."""
    vis, ir = _marker_pair(420, 320, 210, 160)
    _write_pair(tmp_path, "a.png", vis, ir)
    lin, unit = PairLibrary.open(tmp_path).load("a.png")
    speeds = {}
    for scale in (1.0, 3.0):
        scene = ImagePairScene(SCENARIOS["day"], 11, lin, unit, sprites=(0, 0),
                               motion_scale=scale)
        c = np.array([_centroid(scene.render(t)[0], 0.5) for t in np.arange(0.0, 4.0, 0.01)])
        speeds[scale] = np.hypot(*np.diff(c, axis=0).T) / 0.01
    assert speeds[1.0].max() <= 1.1 * 350, speeds[1.0].max()
    rms = {k: float(np.sqrt(np.mean(v ** 2))) for k, v in speeds.items()}
    assert 2.6 < rms[3.0] / rms[1.0] < 3.4, rms
    with pytest.raises(Exception, match="motion-scale"):
        ImagePairScene(SCENARIOS["day"], 11, lin, unit, motion_scale=-1.0)
