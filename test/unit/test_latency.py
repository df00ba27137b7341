"""The event pixels' latency behind the APS frames (evaluation.latency), against the event
simulator's own pixels (ideal ones report at once, a first-order photoreceptor of time
constant tau lags a moving texture by about tau), and its way into the rig calibration.

The texture moves at 200 px/s: slower, an ideal pixel's events come late too, by the time
the change takes to reach the threshold (at 80 px/s: +7 ms ideal, +17 ms with tau 10 ms)."""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_contrast import RIG

from evif_ros.apps.cli import main
from evif_ros.errors import ConfigError, InputFileError
from evif_ros.evaluation.latency import estimate_latency
from evif_ros.paths import share_file
from evif_ros.runtime.calibration import load_calibration
from evif_ros.runtime.events import merge_sorted
from evif_ros.sim.dvs import DvsConfig, DvsSimulator

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dv_sample_davis346.aedat4"
W, H = 96, 72
STEP_NS = 1_000_000
EXPOSURE_NS = 10_000_000


def recording(tau_ns: int, seconds: float = 0.9, speed_px_s: float = 200.0):
    """Events and 8-bit frames ``(image, mid_ns)`` of a blurred random texture sliding to the
    right, every 60 ms from 150 ms, exposed 10 ms (the mean radiance over the exposure)."""
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.random((H, 4 * W)).astype(np.float32), (0, 0), 2.5)
    tex = 0.05 + 0.9 * (tex - tex.min()) / np.ptp(tex)

    def radiance(t_ns):
        shift = speed_px_s * t_ns * 1e-9
        m = np.float32([[1, 0, shift], [0, 1, 0]])  # sample at x + shift
        return cv2.warpAffine(tex, m, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)

    dvs = DvsSimulator(DvsConfig(width=W, height=H, c_on=0.15, c_off=0.15, c_sigma=0.0,
                                 noise_rate_hz=0.0, hot_pixel_fraction=0.0,
                                 photoreceptor_tau_ns=tau_ns), np.random.default_rng(1))
    starts = np.arange(150_000_000, int(seconds * 1e9) - 150_000_000, 60_000_000)
    chunks, frames, acc = [], [], {}
    for t in range(0, int(seconds * 1e9), STEP_NS):
        rad = radiance(t)
        chunks.append(dvs.step(rad, t))
        for s in starts[(starts <= t) & (t < starts + EXPOSURE_NS)]:
            acc.setdefault(int(s), []).append(rad)
    for s, rads in sorted(acc.items()):
        image = np.clip(np.mean(rads, 0) * 255, 0, 255).astype(np.uint8)
        frames.append((image, s + EXPOSURE_NS // 2))
    return merge_sorted(*chunks), frames


def test_ideal_pixels_report_at_once():
    events, frames = recording(0)
    est = estimate_latency(events, frames, H, W)
    assert est.reliable and est.frames == len(frames)
    assert abs(est.latency_ns) <= 3_000_000


def test_slow_photoreceptors_are_found_late_by_about_their_time_constant():
    events, frames = recording(10_000_000)
    est = estimate_latency(events, frames, H, W)
    assert est.reliable
    assert 6_000_000 <= est.latency_ns <= 16_000_000


def test_too_short_a_recording_is_refused_by_name():
    events, frames = recording(0, seconds=0.4)
    with pytest.raises(InputFileError, match=r"^rec.aedat4: [0-2] APS frames .* at least 3"):
        estimate_latency(events, frames, H, W, "rec.aedat4")


def test_calibration_reads_writes_and_checks_the_latency(tmp_path):
    p = tmp_path / "rig.yaml"
    p.write_text(RIG)
    assert load_calibration(p).davis_latency_ns == 0
    p.write_text(RIG + "davis_latency_ns: 22700000\n")
    calib = load_calibration(p)
    assert calib.davis_latency_ns == 22_700_000
    calib.save(tmp_path / "copy.yaml")
    assert load_calibration(tmp_path / "copy.yaml").davis_latency_ns == 22_700_000
    for bad in ("abc", "600000000", "-600000000", "[1]"):
        p.write_text(RIG + f"davis_latency_ns: {bad}\n")
        with pytest.raises(ConfigError, match=r"rig.yaml: (field 'davis_latency_ns'|timing)"):
            load_calibration(p)


def test_contrast_cli_says_why_a_short_file_gets_no_latency(tmp_path, capsys):
    """The DV sample (0.17 s, 4 frames) is too short for the latency: the threshold is
    still measured and written, the latency left out with the reason on one line."""
    out = tmp_path / "rig.yaml"
    assert main(["contrast", str(FIXTURE), "--calibration",
                 str(share_file("calibration", "synthetic_rig.yaml")), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^event latency not measured: .*dv_sample_davis346.aedat4: \d APS "
                     r"frames", text, re.M)
    assert load_calibration(out).davis_latency_ns == 0
    assert load_calibration(out).davis_contrast is not None


def test_a_long_recording_is_sampled_evenly(monkeypatch):
    import evif_ros.evaluation.latency as latency

    events, frames = recording(0)
    monkeypatch.setattr(latency, "MAX_FRAMES", 4)
    est = latency.estimate_latency(events, frames, H, W)
    assert est.frames == 4 and abs(est.latency_ns) <= 3_000_000


def test_contrast_cli_writes_the_latency_of_slow_pixels(tmp_path, capsys):
    """The user's path: a recording (the `cups` layout: events.npz + frames.csv + PNGs) of
    pixels with a 10 ms photoreceptor through `evif contrast --out`: the rig file gets a
    latency of about 10 ms (the feeder's use of it: test_feeder.py)."""
    events, frames = recording(10_000_000)
    rec = tmp_path / "rec"
    (rec / "aps").mkdir(parents=True)
    np.savez(rec / "events.npz", x=events["x"], y=events["y"], t_us=events["t"] // 1000,
             p=events["p"], width=W, height=H)
    rows = ["index,aps,exposure_start_us,exposure_end_us"]
    for i, (image, mid) in enumerate(frames):
        cv2.imwrite(str(rec / "aps" / f"{i:04d}.png"), image)
        start = (mid - EXPOSURE_NS // 2) // 1000
        rows.append(f"{i},aps/{i:04d}.png,{start},{start + EXPOSURE_NS // 1000}")
    (rec / "frames.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "rig.yaml"
    assert main(["contrast", str(rec), "--calibration",
                 str(share_file("calibration", "synthetic_rig.yaml")), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    latency = load_calibration(out).davis_latency_ns
    assert 6_000_000 <= latency <= 16_000_000
    assert f"davis_latency_ns {latency}" in said
