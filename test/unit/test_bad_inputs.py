"""Bad inputs of the review on main at 444caa9 (issue 31): each now ends in one line naming
the file or field, exit status 2, no traceback, never a silent exit 0."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from evif_ros.apps.cli import main
from evif_ros.drivers.davis_sources import AedatSource
from evif_ros.errors import InputFileError

ROOT = Path(__file__).parents[2]


def _one_line(capsys, *names):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    for n in names:
        assert str(n) in err[0]
    return err[0]


def test_calibration_with_a_huge_sensor_is_refused(tmp_path, capsys):
    data = yaml.safe_load((ROOT / "calibration" / "synthetic_rig.yaml").read_text())
    data["davis"] = {"width": 10_000_000, "height": 10_000_000}
    calib = tmp_path / "huge.yaml"
    calib.write_text(yaml.safe_dump(data))
    bag = tmp_path / "bag"
    bag.mkdir()
    assert main(["eval", "--bag", str(bag), "--calibration", str(calib), "--out",
                 str(tmp_path / "o")]) == 2
    _one_line(capsys, calib, "'davis'", "8192")


def test_dataset_shard_without_its_keys(tmp_path, capsys):
    np.savez(tmp_path / "test-00000.npz", events=np.zeros(3))
    assert main(["eval", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--only-evif"]) == 2
    _one_line(capsys, "test-00000.npz", "event_offsets")


@pytest.mark.parametrize("content", [b"\x00\xff\xfe binary", b"- a\n- list\n"])
def test_rig_config_that_is_not_a_parameter_mapping(tmp_path, capsys, content):
    cfg = tmp_path / "rig.yaml"
    cfg.write_bytes(content)
    assert main(["rig", "--config", str(cfg), "--sim", "day", "--duration", "0.1"]) == 2
    _one_line(capsys, cfg)


def test_rig_with_a_missing_aedat4_fails_instead_of_running_empty(tmp_path, capsys):
    assert main(["rig", "--aedat4", str(tmp_path / "none.aedat4")]) == 2
    _one_line(capsys, "none.aedat4")


def test_bad_frame_deblur_file(tmp_path, capsys, tiny_model):
    from evif_ros.sim.dataset import DatasetConfig, write_dataset
    write_dataset(tmp_path / "d", "test", 1, 0, cfg=DatasetConfig(width=64, height=48),
                  workers=1, progress=False)
    bad = tmp_path / "fd.ts"
    bad.write_bytes(b"not a model")
    assert main(["eval", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o"),
                 "--model", str(tiny_model), "--ablation", str(tiny_model), "--frame-deblur",
                 str(bad), "--methods", "average"]) == 2
    _one_line(capsys, bad)


def test_empty_aedat4_message_is_one_line_without_the_cpp_trace(tmp_path):
    empty = tmp_path / "empty.aedat4"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError) as info:
        AedatSource(empty)
    msg = str(info.value)
    assert "\n" not in msg and "Stacktrace" not in msg and "End-Of-File" in msg
