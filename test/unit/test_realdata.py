"""Real recordings with APS frames: DV's AEDAT4 and the events.npz + frames.csv layout,
the structure score, and `evif eval-real` end to end."""

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from evif_ros.apps.cli import main
from evif_ros.errors import InputFileError
from evif_ros.evaluation.real_recording import load_recording, with_aps_offset
from evif_ros.evaluation.structure import structure_score

FIXTURE = Path(__file__).parents[1] / "fixtures" / "dv_sample_davis346.aedat4"


def test_dv_written_aedat4_reads_as_its_readme_says():
    rec = load_recording(FIXTURE)
    # figures of ../shared/data/real_davis/README.md (written by DV, counted there)
    assert (rec.width, rec.height) == (346, 260)
    assert rec.events.size == 6676 and len(rec.frames) == 4
    assert np.all(np.diff(rec.events["t"]) >= 0)
    assert all(f.image.shape == (260, 346) and f.end_ns > f.start_ns for f in rec.frames)


def _folder(tmp_path: Path, header="index,aps,exposure_start_us,exposure_end_us",
            size=(64, 48)) -> Path:
    w, h = size
    rng = np.random.default_rng(0)
    n = 5000
    t = np.sort(rng.integers(1_000_000, 1_300_000, n))
    np.savez(tmp_path / "events.npz", x=rng.integers(0, 64, n).astype(np.uint16),
             y=rng.integers(0, 48, n).astype(np.uint16), t_us=t.astype(np.int64),
             p=rng.integers(0, 2, n).astype(np.uint8), width=64, height=48)
    (tmp_path / "aps").mkdir()
    rows = [header]
    for i in range(3):
        cv2.imwrite(str(tmp_path / "aps" / f"{i:06d}.png"),
                    (rng.random((h, w)) * 255).astype(np.uint8))
        rows.append(f"{i},aps/{i:06d}.png,{1_000_000 + 100_000 * i},{1_080_000 + 100_000 * i}")
    (tmp_path / "frames.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_folder_layout_reads_times_in_ns(tmp_path):
    rec = load_recording(_folder(tmp_path))
    assert rec.events.size == 5000 and len(rec.frames) == 3
    assert rec.frames[1].start_ns == 1_100_000_000 and rec.frames[1].mid_ns == 1_140_000_000
    later = with_aps_offset(rec, 15_000_000)
    assert later.frames[1].start_ns == 1_115_000_000 and later.frames[1].end_ns == 1_195_000_000
    assert rec.frames[1].start_ns == 1_100_000_000  # the recording itself is left alone
    assert later.events is rec.events and np.array_equal(later.frames[2].image,
                                                         rec.frames[2].image)


@pytest.mark.parametrize("broken, message", [
    (lambda p: (p / "frames.csv").unlink(), "no frames.csv"),
    (lambda p: (p / "frames.csv").write_text("index,file,start,end\n0,a,1,2\n"),
     "needs columns"),
    (lambda p: cv2.imwrite(str(p / "aps" / "000001.png"), np.zeros((10, 10), np.uint8)),
     "10x10, the events' sensor is 64x48"),
    (lambda p: np.savez(p / "events.npz", x=np.zeros(3)), "missing array"),
])
def test_bad_folders_fail_in_one_line_naming_the_file(tmp_path, broken, message):
    root = _folder(tmp_path)
    broken(root)
    with pytest.raises(InputFileError, match=message):
        load_recording(root)


def test_structure_score_by_hand():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((80, 100)) * 255).astype(np.uint8), (0, 0), 2)
    assert structure_score(img, img) == pytest.approx(1.0)
    # equalisation undoes a monotone tone change; gradient magnitude ignores the sign
    assert structure_score(img, 255 - img) > 0.99
    assert structure_score(np.full_like(img, 7), img) == 0.0  # a flat image has no structure
    other = cv2.GaussianBlur((rng.random((80, 100)) * 255).astype(np.uint8), (0, 0), 2)
    assert abs(structure_score(other, img)) < 0.2


def test_eval_real_cli_on_dv_file(tmp_path, tiny_model, capsys):
    out = tmp_path / "out"
    assert main(["eval-real", str(FIXTURE), "--out", str(out), "--model", str(tiny_model),
                 "--quiet"]) == 0
    rows = list(csv.DictReader(open(out / "scores.csv")))
    # the first APS frame's mid-exposure precedes the first event: nothing to score it by
    assert [r["frame"] for r in rows] == ["1", "2", "3"]
    assert all(-1 <= float(r["evif"]) <= 1 for r in rows)
    # the DV frames are exposed for 0.5 ms: no 30 Hz window ends inside one but the window
    # at its middle, so the exposure's mean reconstruction is that window's image
    assert all(r["evif_exposure_mean"] == r["evif"] for r in rows)
    # a resting camera's 0.5 ms exposures: no motion, so the APS blur costs nothing
    assert all(float(r["blur_ceiling"]) == 1.0 for r in rows)
    grid = cv2.imread(str(out / "grid.png"))
    assert grid is not None and grid.shape[1] == 4 * 346
    assert "EVIF visible" in capsys.readouterr().out


def test_eval_real_event_latency_scores_later_reconstructions(tmp_path, tiny_model, capsys):
    out = tmp_path / "out"
    assert main(["eval-real", str(FIXTURE), "--out", str(out), "--model", str(tiny_model),
                 "--event-latency-ms", "20", "--quiet"]) == 0
    rows = list(csv.DictReader(open(out / "scores.csv")))
    rec = load_recording(FIXTURE)
    t0 = int(rec.events["t"][0])
    # every frame 20 ms later: the first one's too, whose own mid-exposure precedes the first
    # event (the plain run leaves it out, above)
    assert [float(r["mid_ms"]) for r in rows] == [
        round((f.mid_ns - t0) * 1e-6 + 20, 1) for f in rec.frames]
    assert (rec.frames[0].mid_ns - t0) < 0 < len(rows) - 3
    said = capsys.readouterr().out
    for text in ((out / "summary.md").read_text(), said):
        assert "latency of +20 ms taken off" in text
    # the old name still works (scripts and notes use it)
    assert main(["eval-real", str(FIXTURE), "--out", str(tmp_path / "o2"), "--model",
                 str(tiny_model), "--aps-offset-ms", "20", "--quiet"]) == 0
    assert (tmp_path / "o2" / "scores.csv").read_text() == (out / "scores.csv").read_text()
    # the DV sample is too short for the latency estimate: said on one line, not an error
    assert re.search(r"^event latency not measured \(.*at least 3\)$", said, re.M)


def test_eval_real_cli_bad_path_is_one_line(tmp_path, capsys):
    assert main(["eval-real", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such recording" in err[0]
