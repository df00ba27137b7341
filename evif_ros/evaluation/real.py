"""The visible reconstruction over a real recording, scored against its APS frames.

The model file runs as the node runs it (TorchScript, the state carried from window to
window): windows every ``period_ns`` (the IR frame period the node would see) with one
ending at each APS frame's mid-exposure, where the reconstruction is scored. A model with
image feedback takes every event since the previous window (its training); one without
takes the ``span_ns`` before each window end (the IR exposure, as the node cuts it). Event
integration (leaky, :func:`event_integration`) is scored beside it.

A diagnostic beside the score: the mean of the reconstructions at every window end inside
the APS exposure, scored the same way. The APS frame integrates its whole exposure (104 ms
in ``cups``), so on fast motion even a perfect image at mid-exposure correlates poorly with
it; how much the average gains shows how much of a low score is the reference's blur.
And a ceiling per frame (:mod:`evif_ros.evaluation.exposure_blur`): the reconstruction
scored against itself blurred along the exposure's motion, what the APS blur alone would
leave of a perfect score.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from evif_ros.evaluation.baselines import event_integration
from evif_ros.evaluation.benchmark import to8
from evif_ros.evaluation.exposure_blur import blur_along, exposure_path
from evif_ros.evaluation.real_recording import RealRecording, with_aps_offset
from evif_ros.evaluation.structure import structure_score
from evif_ros.paths import output_dir
from evif_ros.runtime.events import recon_edges
from evif_ros.runtime.inference import recon_steps, step_through
from evif_ros.runtime.model_file import load_exported, set_contrast
from evif_ros.runtime.render import events_image, tile
from evif_ros.runtime.voxel import WindowVoxelizer

PERIOD_NS = 33_333_333  # the synthetic rig's 30 Hz IR frames
EXPOSURE_NS = 25_000_000  # and their exposure


@dataclass
class FrameScore:
    index: int
    mid_ns: int  # relative to the recording's first event
    events: int  # events in the APS exposure
    evif: float
    integration: float
    evif_exposure: float  # the mean reconstruction over the APS exposure (diagnostic)
    blur_ceiling: float  # the reconstruction against itself blurred as the APS (diagnostic)
    motion_px: float  # the length of that blur's path over the exposure


@dataclass
class RealReport:
    recording: str
    model: str
    frames: list[FrameScore]
    contrast: float | None = None  # the sensor's threshold the event step was scaled to
    gain: float | None = None  # that scaling (None: the step as trained)
    aps_offset_ns: int = 0  # frames scored against the reconstruction this much later

    def summary(self, method: str) -> tuple[float, float]:
        v = [getattr(f, method) for f in self.frames]
        return float(np.mean(v)), float(np.min(v))

    def table(self) -> str:
        rows = ["| method | mean structure score | worst frame | frames < 0.30 |",
                "|---|---|---|---|"]
        for m, name in (("evif", "EVIF visible"), ("integration", "event integration"),
                        ("evif_exposure", "EVIF averaged over the APS exposure (diagnostic)"),
                        ("blur_ceiling", "EVIF against itself blurred by the exposure's "
                                         "motion (the APS blur's ceiling, diagnostic)")):
            mean, worst = self.summary(m)
            low = sum(getattr(f, m) < 0.3 for f in self.frames)
            rows.append(f"| {name} | {mean:.3f} | {worst:.3f} | {low} of {len(self.frames)} |")
        return "\n".join(rows)


def window_ends(rec: RealRecording, t0: int, period_ns: int) -> np.ndarray:
    """Regular window ends from the first event, plus one at each APS mid-exposure."""
    t_end = int(rec.events["t"][-1]) - t0
    grid = np.arange(period_ns, t_end + period_ns, period_ns, dtype=np.int64)
    mids = np.array([f.mid_ns - t0 for f in rec.frames], np.int64)
    return np.unique(np.concatenate([grid, mids[mids > 0]]))


def evaluate_recording(model_path: Path, rec: RealRecording, out_dir: Path,
                       period_ns: int = PERIOD_NS, span_ns: int = EXPOSURE_NS,
                       progress: bool = True, contrast: float | None = None,
                       aps_offset_ns: int = 0) -> RealReport:
    """``contrast``: the sensor's contrast threshold (log units), as the rig calibration's
    ``davis_contrast`` gives it to the node; None keeps the step the model was trained with.
    ``aps_offset_ns``: each frame is scored against the reconstruction that much after its
    mid-exposure (``real_recording.with_aps_offset``; a timing diagnostic)."""
    rec = with_aps_offset(rec, aps_offset_ns)
    module, meta = load_exported(model_path)
    gain = set_contrast(module, meta, contrast)
    cfg = meta["config"]
    k, feedback = int(cfg["sub_windows"]), bool(cfg.get("recon_feedback", False))
    h, w = rec.height, rec.width
    t0 = int(rec.events["t"][0])
    ev = rec.events.copy()
    ev["t"] -= t0
    times = ev["t"]
    ir = torch.zeros(1, 1, h, w)
    exp_vox = torch.zeros(1, 10, h, w)
    ends = window_ends(rec, t0, period_ns)
    mids = {f.mid_ns - t0: i for i, f in enumerate(rec.frames)}
    spans = np.array([(f.start_ns - t0, f.end_ns - t0) for f in rec.frames], np.int64)
    # the exposure means: float sums only while an exposure is open, then 8-bit like the rest
    open_sums: dict[int, list] = {}
    exposure_mean: dict[int, np.ndarray] = {}
    # one buffer for every window (per step count), as the runner's
    voxelize: dict[int, WindowVoxelizer] = {}
    # a long period runs the reconstruction in steps of the span it was trained at
    step_ns = int(meta.get("recon_span_ns", 0) or 0) if feedback else 0
    visible: dict[int, np.ndarray] = {}
    state: list = []
    prev = 0
    with torch.no_grad():
        for end in tqdm(ends, desc="windows", unit="win", disable=not progress):
            start = prev if feedback else end - span_ns
            a, b = np.searchsorted(times, [start, end])
            n = recon_steps(int(end - start), step_ns)  # as the runner cuts a long span
            edges = recon_edges(int(end), int(end - start), k * n)
            if n not in voxelize:
                voxelize[n] = WindowVoxelizer(h, w, k * n)
            _, subs = voxelize[n](ev[a:b], int(start), int(end - start), edges)
            state, last = step_through(module, torch.from_numpy(subs)[None], state, k)
            _, _, vis, state = module(ir, exp_vox, last, state)
            prev = int(end)
            img = vis[0, 0].clamp(0, 1).numpy()
            for i in np.flatnonzero((spans[:, 0] <= end) & (end <= spans[:, 1])):
                acc = open_sums.setdefault(int(i), [np.zeros((h, w), np.float64), 0])
                acc[0] += img
                acc[1] += 1
            for i in [i for i in open_sums if spans[i, 1] < end]:
                acc = open_sums.pop(i)
                exposure_mean[i] = to8(acc[0] / acc[1])
            if int(end) in mids:
                visible[mids[int(end)]] = to8(img)
    for i, acc in open_sums.items():  # exposures still open at the last window
        exposure_mean[i] = to8(acc[0] / acc[1])
    scores, grid_rows = [], []
    for i, f in enumerate(rec.frames):
        if i not in visible:  # an APS frame before the first event
            continue
        mid = f.mid_ns - t0
        a, b = np.searchsorted(times, [mid - 10 * 30_000_000, mid])
        integ = event_integration(ev[a:b], mid, h, w)
        a2, b2 = np.searchsorted(times, [f.start_ns - t0, f.end_ns - t0])
        path = exposure_path(ev[a2:b2], f.start_ns - t0, f.end_ns - t0, h, w)
        scores.append(FrameScore(i, int(mid), int(b2 - a2),
                                 structure_score(visible[i], f.image),
                                 structure_score(integ, f.image),
                                 structure_score(exposure_mean[i], f.image),
                                 structure_score(visible[i], blur_along(visible[i], path)),
                                 float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())))
        grid_rows.append([f.image, events_image(ev[a2:b2], w, h), visible[i],
                          (integ * 255).round().astype(np.uint8)])
    report = RealReport(str(rec.path), str(model_path), scores,
                        None if gain is None else contrast, gain, aps_offset_ns)
    _write(report, grid_rows, Path(out_dir), (w, h))
    return report


def _write(report: RealReport, grid_rows: list, out: Path, size: tuple[int, int]) -> None:
    output_dir(out)
    with open(out / "scores.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["frame", "mid_ms", "events_in_exposure", "evif", "integration",
                     "evif_exposure_mean", "blur_ceiling", "motion_px"])
        for f in report.frames:
            wr.writerow([f.index, round(f.mid_ns * 1e-6, 1), f.events, round(f.evif, 4),
                         round(f.integration, 4), round(f.evif_exposure, 4),
                         round(f.blur_ceiling, 4), round(f.motion_px, 1)])
    (out / "summary.md").write_text(
        f"Recording `{report.recording}`, model `{report.model}`"
        + ("" if report.gain is None else f" (event step x{report.gain:.2f} for a contrast "
           f"threshold of {report.contrast:g})")
        + ("" if not report.aps_offset_ns else f", the events' latency of "
           f"{report.aps_offset_ns * 1e-6:+g} ms taken off (each APS frame scored against the "
           f"reconstruction made that much after its mid-exposure)")
        + f": structure score per APS frame (evif_ros/evaluation/structure.py), "
        f"{len(report.frames)} frames.\n\n"
        + report.table() + "\n")
    if not grid_rows:
        return
    # six rows spread over the recording, the EVIF's worst frame among them
    n = len(grid_rows)
    pick = set(np.linspace(0, n - 1, min(n, 5)).round().astype(int).tolist())
    pick.add(int(np.argmin([f.evif for f in report.frames])))
    rows = [grid_rows[i] for i in sorted(pick)]
    labels = ["APS frame", "events in its exposure", "EVIF visible", "event integration"]
    cell = (size[0] // 2 * 2, size[1] // 2 * 2) if size[0] <= 400 else (346, 260)
    cv2.imwrite(str(out / "grid.png"), tile(rows, labels, cell))
