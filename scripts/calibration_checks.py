"""Figures of the rig calibration (issue 30), each from one command:

- the synthetic calibration recording against its ground truth (focal lengths, the thermal
  to DAVIS mapping, the clock offset, the trigger check);
- detection under the motion blur of a 100 ms hand-held APS exposure (simulated);
- false detections on real DAVIS346 APS frames (../shared/data/real_davis: cups/aps/*.png
  and the DV sample's frames);
- with --recon: detection in the shipped model's event reconstructions (a 6 s recording with
  events, reconstructed at each APS frame's mid-exposure with the state carried), the
  fallback a rig with a dark APS would need.

Usage: python scripts/calibration_checks.py [--out runs/calibration] [--duration 20] [--recon]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

from evif_ros.rigcal.detect import detect
from evif_ros.rigcal.recording import read_recording
from evif_ros.runtime.calibration import load_calibration
from evif_ros.runtime.camera_model import mapping_error_px
from evif_ros.runtime.target import Checkerboard

EVIF = [sys.executable, "-m", "evif_ros.apps.cli"]
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_davis"


def evif(*args) -> str:
    res = subprocess.run([*EVIF, *map(str, args)], capture_output=True, text=True)
    if res.returncode:
        sys.exit(res.stderr)
    return res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/calibration"))
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--recon", action="store_true")
    a = ap.parse_args()
    board = Checkerboard()
    rec = a.out / "recording"
    if not (rec / "ground_truth.yaml").exists():
        evif("simulate", "--scenario", "calibration", "--out", rec, "--duration", a.duration,
             "--no-events", "--quiet")
    print(evif("calibrate", "--bag", rec / "rig", "--out", a.out / "calib.yaml",
               "--latency-ns", 6_000_000, 14_000_000, "--quiet"))
    gt = yaml.safe_load((rec / "ground_truth.yaml").read_text())
    est = load_calibration(a.out / "calib.yaml")
    truth = load_calibration(rec / "ground_truth_calibration.yaml")
    print("| quantity | estimate | truth | error | bound |\n|---|---|---|---|---|")
    for name, cam in (("APS", est.geometry.davis), ("thermal", est.geometry.ir)):
        K = np.asarray(gt["davis" if name == "APS" else "ir"]["K"])
        for i, axis in ((0, "fx"), (1, "fy")):
            print(f"| {name} {axis} (px) | {cam.K[i, i]:.3f} | {K[i, i]:.3f} | "
                  f"{100 * (cam.K[i, i] / K[i, i] - 1):+.3f} % | 0.5 % |")
    print(f"| thermal -> DAVIS mapping at {truth.geometry.working_distance_m:g} m | | | "
          f"{mapping_error_px(est.geometry, truth.geometry):.3f} DAVIS px RMS | 0.5 px |")
    print(f"| time offset (ms) | {est.time_offset_ns / 1e6:.3f} | {gt['time_offset_ns'] / 1e6:.3f} "
          f"| {(est.time_offset_ns - gt['time_offset_ns']) / 1e6:+.3f} ms | 1 ms |")

    blur = a.out / "blur100"
    if not (blur / "ground_truth.yaml").exists():
        evif("simulate", "--scenario", "calibration", "--out", blur, "--duration", 10,
             "--aps-exposure-ms", 100, "--no-events", "--seed", 1, "--quiet")
    frames = read_recording(blur / "rig").aps
    found = sum(detect(img, board) is not None for _, img in frames)
    print(f"\n100 ms hand-held APS exposures: board found in {found} of {len(frames)} frames")

    false, total = 0, 0
    for png in sorted((REAL / "cups" / "aps").glob("*.png")):
        total += 1
        false += detect(cv2.imread(str(png), cv2.IMREAD_GRAYSCALE), board) is not None
    import dv_processing as dv
    sample = REAL / "dv_sample_davis346.aedat4"
    if sample.exists():
        r = dv.io.MonoCameraRecording(str(sample))
        while (fr := r.getNextFrame()) is not None:
            img = fr.image if fr.image.ndim == 2 else cv2.cvtColor(fr.image, cv2.COLOR_BGR2GRAY)
            total += 1
            false += detect(img, board) is not None
    print(f"real DAVIS346 APS frames without a board: {false} false detections in {total}")
    if a.recon:
        recon_check(a.out / "with_events", board)


def recon_check(out: Path, board: Checkerboard) -> None:
    import torch

    from evif_ros.ros.bags import header_ns, open_bag
    from evif_ros.runtime import topics
    from evif_ros.runtime.events import recon_edges
    from evif_ros.runtime.model_file import load_exported
    from evif_ros.runtime.msgs import events_from_any, image_from_msg
    from evif_ros.runtime.voxel import WindowVoxelizer

    if not (out / "ground_truth.yaml").exists():
        evif("simulate", "--scenario", "calibration", "--out", out, "--duration", 6, "--quiet")
    chunks, aps = [], []
    with open_bag(out / "rig") as r:
        for c, _, raw in r.messages():
            if c.topic == topics.EVENTS:
                chunks.append(events_from_any(r.deserialize(raw, c.msgtype), c.msgtype, c.topic))
            elif c.topic == topics.APS:
                m = r.deserialize(raw, c.msgtype)
                aps.append((header_ns(m), image_from_msg(m).copy()))
    ev = np.concatenate(chunks)
    ev = ev[np.argsort(ev["t"], kind="stable")]
    module, meta = load_exported(Path("models/evif_rt.ts"))
    k, (h, w) = int(meta["config"]["sub_windows"]), aps[0][1].shape
    vox = WindowVoxelizer(h, w, k)
    ir, exp = torch.zeros(1, 1, h, w), torch.zeros(1, 10, h, w)
    state, prev, found, n = [], int(ev["t"][0]), 0, 0
    with torch.no_grad():
        for t, _ in aps:
            if t <= prev:
                continue
            a, b = np.searchsorted(ev["t"], [prev, t])
            _, subs = vox(ev[a:b], prev, t - prev, recon_edges(t, t - prev, k))
            _, _, vis, state = module(ir, exp, torch.from_numpy(subs)[None], state)
            prev = t
            img = (vis[0, 0].clamp(0, 1) * 255).round().byte().numpy()
            n += 1
            found += detect(img, board) is not None
    print(f"event reconstructions (models/evif_rt.ts) at the APS times: board found in "
          f"{found} of {n}")


if __name__ == "__main__":
    main()
