import numpy as np
import pytest
import yaml

from evif_ros.apps.cli import main
from evif_ros.errors import ConfigError, InputFileError
from evif_ros.paths import share_file
from evif_ros.runtime.calibration import fit_homography, load_calibration, warp_ir_to_davis
from evif_ros.sim.scenarios import SCENARIOS
from evif_ros.sim.scene import Scene
from evif_ros.sim.thermal import SYNTHETIC_IR_TO_DAVIS, ThermalCamera, ThermalConfig


def test_shipped_example_matches_synthetic_rig():
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    np.testing.assert_allclose(calib.ir_to_davis, SYNTHETIC_IR_TO_DAVIS, atol=1e-9)
    assert calib.ir_size == (320, 256) and calib.davis_size == (346, 260)


def test_warp_puts_misaligned_ir_onto_the_event_camera_grid():
    scene = Scene(SCENARIOS["static"], 4)
    temp = scene.render(0.0)[1]
    rng = np.random.default_rng(0)
    mis = ThermalCamera(ThermalConfig(ir_to_davis=tuple(map(tuple, SYNTHETIC_IR_TO_DAVIS))), rng)
    ir = mis.counts(mis.to_ir_grid(temp))
    aligned = mis.counts(temp)
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    warped = warp_ir_to_davis(ir, calib)
    inner = (slice(20, 240), slice(20, 320))  # away from the IR field-of-view border
    err_warped = np.abs(warped[inner] - aligned[inner]).mean()
    err_raw = np.abs(np.pad(ir, ((0, 4), (0, 26)), mode="edge")[inner] - aligned[inner]).mean()
    assert err_warped < 0.25 * err_raw


def test_calibrate_cli_recovers_homography(tmp_path, capsys):
    rng = np.random.default_rng(1)
    ir = rng.uniform([0, 0], [320, 256], size=(30, 2))
    h = SYNTHETIC_IR_TO_DAVIS
    pts = np.c_[ir, np.ones(30)] @ h.T
    davis = pts[:, :2] / pts[:, 2:] + rng.normal(0, 0.3, (30, 2))
    davis[:3] += 40  # three wrong matches: RANSAC must reject them
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# u_ir v_ir u_davis v_davis\n"
                     + "\n".join(" ".join(f"{v:.3f}" for v in row) for row in np.c_[ir, davis]))
    out = tmp_path / "calib.yaml"
    assert main(["calibrate", "--pairs", str(pairs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "27/30 inlier" in printed and "px RMS" in printed
    calib = load_calibration(out)
    grid = np.array([[u, v] for u in (0, 160, 319) for v in (0, 128, 255)], np.float64)
    def project(m):
        q = np.c_[grid, np.ones(len(grid))] @ m.T
        return q[:, :2] / q[:, 2:]
    assert np.abs(project(calib.ir_to_davis) - project(h)).max() < 1.0
    _, rms, _ = fit_homography(ir[3:], davis[3:])
    assert rms < 0.6


@pytest.mark.parametrize("content, match", [
    ("davis: {width: 346, height: 260}\n", "missing field 'ir'"),
    ("[1, 2", "not valid YAML"),
])
def test_bad_calibration_files(tmp_path, content, match):
    p = tmp_path / "c.yaml"
    p.write_text(content)
    with pytest.raises((ConfigError, InputFileError), match=match):
        load_calibration(p)


def test_singular_homography_and_missing_file(tmp_path):
    d = yaml.safe_load(share_file("calibration", "synthetic_rig.yaml").read_text())
    d["ir_to_davis_homography"] = [[0, 0, 0]] * 3
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(ConfigError, match="ir_to_davis_homography"):
        load_calibration(p)
    with pytest.raises(InputFileError, match="not found"):
        load_calibration(tmp_path / "nope.yaml")


def test_calibrate_cli_bad_pairs(tmp_path, capsys):
    p = tmp_path / "pairs.txt"
    p.write_text("1 2 3\n")
    assert main(["calibrate", "--pairs", str(p), "--out", str(tmp_path / "o.yaml")]) == 2
    assert "expected 4 columns" in capsys.readouterr().err
