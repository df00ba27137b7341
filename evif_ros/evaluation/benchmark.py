"""`evif eval`: the paper's Table 1 (six VIF metrics per method, on blurry and on
frame-deblurred inputs) and Table 2 (IR deblurring PSNR) on a dataset split with ground
truth, per scenario, with plots and an example grid; reference-free metrics on bags.

EVIF runs through the node's code path (:class:`evif_ros.runtime.inference.EvifRunner`). Metrics
follow the paper's protocol for synthetic data: they are computed against the ground-truth
sharp visible and infrared images (A = sharp visible, B = sharp IR stretched by the blurry
frame's range, F = fused).
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from evif_ros.errors import InputFileError, reason
from evif_ros.evaluation import metrics as M
from evif_ros.evaluation.baselines import event_integration
from evif_ros.evaluation.fusion_baselines import BASELINES
from evif_ros.learning.data import ir_range, sub_window_edges
from evif_ros.paths import output_dir
from evif_ros.runtime import topics
from evif_ros.runtime.calibration import Calibration, load_calibration, warp_ir_to_davis
from evif_ros.runtime.events import recon_edges
from evif_ros.runtime.inference import EvifRunner, Result
from evif_ros.runtime.msgs import EVENT_PACKET, POINTCLOUD2, image_from_msg, stamp_to_ns
from evif_ros.runtime.render import events_image, tile
from evif_ros.sim.dataset import iter_samples


def stretch(ir: np.ndarray, lo: float, scale: float) -> np.ndarray:
    return np.clip((ir.astype(np.float32) - lo) / scale, 0, 1)


def to8(img01: np.ndarray) -> np.ndarray:
    """[0, 1] float -> the 8-bit image every method is scored from (EVIF's outputs are
    8-bit already; scoring the baselines as floats would favour them, e.g. MI by up to
    ~10 %)."""
    return np.round(np.clip(img01, 0, 1) * 255.0).astype(np.uint8)


def dataset_runner(model: Path, samples: list[dict]) -> EvifRunner:
    """A CPU runner for a dataset's exposures, which are on the event-camera grid already
    (identity calibration, the dataset's size and exposure)."""
    h, w = samples[0]["ir_blur"].shape
    ident = Calibration(np.eye(3), (w, h), (w, h), samples[0]["exposure_ns"])
    return EvifRunner(model, ident, "cpu")


def run_exposure(runner: EvifRunner, s: dict, carry: bool = False
                 ) -> tuple[Result, np.ndarray, float, float]:
    """EVIF on one dataset exposure, by default from a reset state (the dataset's exposures
    are independent): its result, the sharp IR reference as every method is scored against it
    (8-bit, stretched by the blurry frame's range) and that range ``(lo, scale)``.

    ``carry`` (sequence samples, ``evif dataset --warmup-frames N``): first run the N
    earlier frames, one IR frame period apart, and carry the state into the exposure, as
    the node does on a stream; each frame's sub-windows then span the frame period (the
    node's ``recon_span_ms`` set to the camera's period), so no event between frames is
    left out. The earlier frames' outputs are not scored. A sample holds events from half an
    exposure before its N earlier frames' mid-exposures, so where the period is longer than
    the exposure the oldest frame's first sub-window is partly empty, as a node's just after
    it started."""
    lo, scale = ir_range(s["ir_blur"])
    runner.reset()
    n, period, exp = s["warmup_frames"] if carry else 0, s["frame_period_ns"], s["exposure_ns"]
    if n:
        edges = recon_edges(exp // 2, period, runner.sub_windows_for(period))
        for j in range(n):
            shift = (n - j) * period
            runner(s["ir_blur"], s["events"], -shift, exp, edges - shift, warp=False)
    else:
        span = exp // 2 - s["recon_start_ns"]
        edges = sub_window_edges(s["recon_start_ns"], exp, runner.sub_windows_for(span))
    res = runner(s["ir_blur"], s["events"], 0, exp, edges, warp=False)
    return res, to8(stretch(s["ir_sharp"], lo, scale)), lo, scale


class FrameDeblur:
    def __init__(self, path: Path):
        if not Path(path).is_file():
            raise InputFileError(f"{path}: frame-deblurring model not found "
                                 "(evif train-frame-deblur)")
        try:
            self.net = torch.jit.load(str(path)).eval()
        except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and others
            raise InputFileError(f"{path}: not a loadable TorchScript model "
                                 f"({reason(exc, 120)})") from exc

    def __call__(self, img01: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.net(torch.from_numpy(np.ascontiguousarray(img01, np.float32))[None, None])
        return out[0, 0].numpy()


def evaluate_dataset(data: Path, out: Path, model: Path, ablation: Path | None,
                     frame_deblur: Path | None, methods: list[str], limit: int = 0,
                     progress: bool = True, split: str = "test", carry: bool = False) -> dict:
    """``split``: ``test``, or ``train`` for a validation set made with ``evif dataset
    --split train`` and a seed never trained on (choosing among models without the test
    split). ``carry``: the state carried over a sequence sample's earlier frames
    (:func:`run_exposure`); the split must hold sequence samples."""
    samples = list(iter_samples(Path(data), split))[: limit or None]
    if carry and not samples[0]["warmup_frames"]:
        raise InputFileError(f"{data}: --carry needs sequence samples (evif dataset "
                             "--warmup-frames N); these are single exposures")
    h, w = samples[0]["ir_blur"].shape
    runner = dataset_runner(model, samples)
    abl = dataset_runner(ablation, samples) if ablation else None
    fdb = FrameDeblur(frame_deblur) if frame_deblur else None
    table1 = defaultdict(lambda: defaultdict(list))  # method -> metric -> values
    table2 = defaultdict(list)
    table3 = defaultdict(list)
    contrast = defaultdict(list)
    per_scn = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    examples = []
    for i, s in enumerate(tqdm(samples, desc="eval", unit="sample", disable=not progress)):
        scn = s["scenario"]
        ref_vis = s["vis_sharp"]  # uint8
        res, ref_ir, lo, scale = run_exposure(runner, s, carry)
        fused = {"EVIF": res.fused}  # uint8
        aps = s["aps_blur"].astype(np.float32) / 255.0
        ir01 = stretch(s["ir_blur"], lo, scale)
        inputs = {"blurry": (aps, ir01)}
        psnr = {"blurry": M.psnr(to8(ir01), ref_ir),
                "EVIF": M.psnr(to8(stretch(res.ir_deblurred, lo, scale)), ref_ir)}
        if fdb is not None:
            ir_db = np.clip(fdb(ir01), 0, 1)
            inputs["deblurred"] = (np.clip(fdb(aps), 0, 1), ir_db)
            psnr["frame-only deblurring"] = M.psnr(to8(ir_db), ref_ir)
        if abl is not None:
            r2 = run_exposure(abl, s, carry)[0]
            psnr["EVIF w/o enhancement"] = M.psnr(to8(stretch(r2.ir_deblurred, lo, scale)),
                                                  ref_ir)
        for name in methods:
            for variant, (va, vb) in inputs.items():
                fused[f"{name} ({variant})"] = to8(BASELINES[name](va, vb))
        sources = (M.masked_contrast(ref_vis), M.masked_contrast(ref_ir))
        for method, f in fused.items():
            for k, v in M.all_metrics(ref_vis, ref_ir, f, sources).items():
                table1[method][k].append(v)
                per_scn[scn][method][k].append(v)
            # CE rewards flat images: the fused image's contrast is reported beside the
            # sources' (standard deviation of the 8-bit image)
            contrast[method].append(float(np.std(f)))
        contrast["source: visible (sharp)"].append(float(np.std(ref_vis)))
        contrast["source: IR (sharp)"].append(float(np.std(ref_ir)))
        for k, v in psnr.items():
            table2[k].append(v)
            per_scn[scn]["PSNR"][k].append(v)
        recon = {"EVIF": res.visible,
                 "event integration (leaky)": event_integration(
                     s["events"], s["exposure_ns"] // 2, h, w) * 255.0,
                 "APS frame (blurry)": s["aps_blur"]}
        for k, img in recon.items():
            v = M.structural_similarity(img, ref_vis)
            table3[k].append(v)
            per_scn[scn]["VIS_SSIM"][k].append(v)
        if i < 4:
            examples.append({"row": [s["aps_blur"], to8(ir01),
                                     events_image(s["events"][(s["events"]["t"] >= 0)], w, h),
                                     res.visible, to8(stretch(res.ir_deblurred, lo, scale)),
                                     res.fused],
                             "truth": [s["vis_sharp"], ref_ir],
                             "fused": {m: f for m, f in fused.items() if m != "EVIF"}})
    summary = {"n": len(samples),
               "table1": {m: {k: float(np.mean(v)) for k, v in d.items()}
                          for m, d in table1.items()},
               "table2": {k: float(np.mean(v)) for k, v in table2.items()},
               "table3": {k: float(np.mean(v)) for k, v in table3.items()},
               "contrast_sd": {k: float(np.mean(v)) for k, v in contrast.items()},
               "per_scenario": {scn: {m: {k: float(np.mean(v)) for k, v in d.items()}
                                      for m, d in ms.items()} for scn, ms in per_scn.items()}}
    best = best_baseline(summary["table1"])
    rows = [ex["row"] + [ex["fused"].get(best, ex["row"][5])] + ex["truth"] for ex in examples]
    write_reports(summary, Path(out), rows, best)
    return summary


def best_baseline(t1: dict) -> str:
    """The non-EVIF method that is best on the most of the six metrics (ties: the first)."""
    others = {m: v for m, v in t1.items() if m != "EVIF"}
    if not others:
        return "EVIF"
    wins = dict.fromkeys(others, 0)
    for c in M.METRICS:
        vals = {m: v[c] for m, v in others.items()}
        wins[(min if c in M.LOWER_IS_BETTER else max)(vals, key=vals.get)] += 1
    return max(wins, key=wins.get)


def _fmt_table1(t1: dict) -> str:
    cols = list(M.METRICS)
    best = {}
    for c in cols:
        vals = {m: v[c] for m, v in t1.items()}
        best[c] = (min if c in M.LOWER_IS_BETTER else max)(vals, key=vals.get)
    lines = ["| method | " + " | ".join(f"{c} {'↓' if c in M.LOWER_IS_BETTER else '↑'}"
                                        for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m, v in t1.items():
        cells = [f"**{v[c]:.3f}**" if best[c] == m else f"{v[c]:.3f}" for c in cols]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_reports(summary: dict, out: Path, examples: list, best: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    t1, t2 = summary["table1"], summary["table2"]
    sd = summary.get("contrast_sd", {})
    sd_lines = ["", "Contrast (standard deviation of the 8-bit image; CE rewards flat "
                "images):", "", "| image | SD |", "|---|---|"] + [
        f"| {k} | {v:.1f} |" for k, v in sd.items()]
    (out / "table1.md").write_text(f"Six VIF metrics against the sharp ground truth "
                                   f"({summary['n']} test samples; best in bold)\n\n"
                                   + _fmt_table1(t1) + "\n" + "\n".join(sd_lines) + "\n")
    with open(out / "table1.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["method", *M.METRICS])
        for m, v in t1.items():
            wr.writerow([m, *[f"{v[c]:.4f}" for c in M.METRICS]])
    lines = ["| method | IR PSNR (dB) |", "|---|---|"] + [f"| {k} | {v:.2f} |"
                                                            for k, v in t2.items()]
    (out / "table2.md").write_text("IR deblurring PSNR against the sharp IR (blurry frame's "
                                   "0.5-99.5 % range = 0-255)\n\n" + "\n".join(lines) + "\n")
    with open(out / "table2.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["method", "psnr_db"])
        for k, v in t2.items():
            wr.writerow([k, f"{v:.4f}"])
    t3 = summary["table3"]
    lines = ["| reconstruction | SSIM vs sharp visible |", "|---|---|"] + [
        f"| {k} | {v:.3f} |" for k, v in t3.items()]
    (out / "table3.md").write_text("Visible reconstruction at mid-exposure (SSIM, 11x11 "
                                   "Gaussian window)\n\n" + "\n".join(lines) + "\n")
    scn_lines = []
    for scn, d in sorted(summary["per_scenario"].items()):
        scn_lines.append(f"## {scn}\n\n" + _fmt_table1({m: v for m, v in d.items()
                                                        if m not in ("PSNR", "VIS_SSIM")}))
        for key, label, fmt in (("PSNR", "IR PSNR (dB)", "{:.2f}"),
                                ("VIS_SSIM", "visible SSIM", "{:.3f}")):
            scn_lines.append(f"\n| {label} | " + " | ".join(d[key]) + " |\n|---"
                             + "|---" * len(d[key]) + "|\n| | "
                             + " | ".join(fmt.format(v) for v in d[key].values()) + " |\n")
    (out / "per_scenario.md").write_text("\n".join(scn_lines))
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, c in zip(axes.ravel(), M.METRICS):
        names = list(t1)
        ax.barh(names, [t1[m][c] for m in names],
                color=["tab:red" if m == "EVIF" else "tab:gray" for m in names])
        ax.set_title(f"{c} ({'lower' if c in M.LOWER_IS_BETTER else 'higher'} is better)")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "table1.png", dpi=90)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(list(t2), list(t2.values()), color="tab:blue")
    ax.set_xlabel("IR PSNR (dB)")
    fig.tight_layout()
    fig.savefig(out / "table2.png", dpi=90)
    plt.close(fig)
    if examples:
        grid = tile(examples, ["APS (blurry)", "IR (blurry)", "events", "EVIF visible",
                               "EVIF IR", "EVIF fused", f"best baseline: {best}",
                               "GT visible", "GT IR"])
        cv2.imwrite(str(out / "examples.png"), grid)


def evaluate_bag(bag: Path, out: Path, model: Path, calibration: Path, methods: list[str],
                 progress: bool = True) -> dict:
    """A recording without ground truth: EVIF through the synchronizer and the node's code
    path; every metric taken against the inputs (APS frame nearest in time, or EVIF's own
    visible reconstruction when the bag has none, and the warped blurry IR)."""
    from evif_ros.ros.bags import open_bag

    calib = load_calibration(calibration)
    runner = EvifRunner(model, calib, "cpu")
    # the node's front end, time offset included
    feeder = runner.window_feeder()
    windows, aps = [], []
    truth: dict[str, dict[int, np.ndarray]] = {topics.GT_VISIBLE: {}, topics.GT_IR: {}}
    dropped: dict[str, int] = defaultdict(int)  # malformed messages per topic, as the node
    first_drop: dict[str, str] = {}
    with open_bag(bag) as reader:
        for conn, _, raw in tqdm(reader.messages(), desc="read bag", unit="msg",
                                 disable=not progress):
            try:
                windows += _bag_message(reader, conn, raw, feeder, aps, truth)
            except Exception as exc:  # noqa: BLE001 - a damaged message is dropped, not fatal
                dropped[conn.topic] += 1
                first_drop.setdefault(conn.topic, reason(exc))
    for topic, n in dropped.items():
        print(f"warning: {bag}: dropped {n} malformed message(s) on {topic} (first: "
              f"{first_drop[topic]})", file=sys.stderr)
    if not windows:
        raise InputFileError(f"{bag}: no complete IR exposure (needs events, triggers and "
                             f"{topics.IR_IMAGE})")
    summary_extra = {"dropped_messages": dict(dropped)}
    return _score_bag_windows(bag, out, runner, calib, windows, aps, truth, model, methods,
                              progress, summary_extra)


def _bag_message(reader, conn, raw, feeder, aps: list, truth: dict) -> list:
    """One bag message into the evaluation's inputs; the windows it completes."""

    if conn.topic == topics.APS or conn.topic in truth:
        msg = reader.deserialize(raw, conn.msgtype)
        stamped = (stamp_to_ns(msg.header.stamp), image_from_msg(msg).copy())
        if conn.topic == topics.APS:
            aps.append(stamped)
        else:  # a simulated recording's ground truth, stamped with the trigger
            truth[conn.topic][stamped[0]] = stamped[1]
        return []
    if conn.topic in (topics.TRIGGERS, topics.IR_IMAGE) or conn.msgtype in (
            POINTCLOUD2, EVENT_PACKET):
        return feeder.message(conn.topic, conn.msgtype, reader.deserialize(raw, conn.msgtype))
    return []


def _score_bag_windows(bag, out, runner, calib, windows, aps, truth, model, methods,
                       progress, summary_extra) -> dict:

    table = defaultdict(lambda: defaultdict(list))
    gt_table = defaultdict(lambda: defaultdict(list))  # quantity -> method -> values
    reset_runner = EvifRunner(model, calib, "cpu") if truth[topics.GT_VISIBLE] else None
    examples = []
    for i, wdw in enumerate(tqdm(windows, desc="eval", unit="window", disable=not progress)):
        res = runner.run(wdw)  # state carried and reset across gaps, as in evif_node
        ir = warp_ir_to_davis(wdw.image, calib).astype(np.float32)
        lo, scale = ir_range(ir)
        ir01 = stretch(ir, lo, scale)
        vis01 = (min(aps, key=lambda a: abs(a[0] - wdw.mid_ns))[1].astype(np.float32) / 255
                 if aps else res.visible.astype(np.float32) / 255)
        gt_vis, gt_ir = (truth[t].get(wdw.t_start_ns) for t in (topics.GT_VISIBLE, topics.GT_IR))
        if reset_runner is not None and gt_vis is not None and gt_ir is not None:
            reset_runner.reset()
            fresh = reset_runner(wdw.image, wdw.events, wdw.t_start_ns, wdw.exposure_ns,
                                 wdw.recon_edges_ns)
            h, w = gt_vis.shape
            recon = {"EVIF (state carried, as the node)": res.visible,
                     "EVIF (state reset per exposure)": fresh.visible,
                     "event integration (leaky)": event_integration(
                         wdw.events, wdw.mid_ns, h, w) * 255.0}
            if aps:
                recon["APS frame (nearest)"] = to8(vis01)
            for k, img in recon.items():
                gt_table["visible SSIM"][k].append(M.structural_similarity(img, gt_vis))
            ref_ir = to8(stretch(warp_ir_to_davis(gt_ir, calib), lo, scale))
            for k, img in (("blurry", ir), ("EVIF (state carried, as the node)",
                                            res.ir_deblurred),
                           ("EVIF (state reset per exposure)", fresh.ir_deblurred)):
                gt_table["IR PSNR (dB)"][k].append(M.psnr(to8(stretch(img, lo, scale)),
                                                          ref_ir))
        fused = {"EVIF": res.fused}  # uint8
        for name in methods:
            fused[name] = to8(BASELINES[name](vis01, ir01))
        ref_vis, ref_ir = to8(vis01), to8(ir01)  # 8-bit, like every fused image
        sources = (M.masked_contrast(ref_vis), M.masked_contrast(ref_ir))
        for m, f in fused.items():
            for k, v in M.all_metrics(ref_vis, ref_ir, f, sources).items():
                table[m][k].append(v)
        if i < 4:
            examples.append([ref_vis, ref_ir, res.visible, res.fused])
    summary = {"n": len(windows), "table1": {m: {k: float(np.mean(v)) for k, v in d.items()}
                                             for m, d in table.items()},
               "reference": "inputs (no ground truth)",
               # what the node would publish: one output per window, stamped with its
               # exposure start, the recurrent state reset at the first and after each gap
               "exposure_starts_ns": [int(w.t_start_ns) for w in windows],
               "state_resets": runner.resets}
    if gt_table:
        summary["ground_truth"] = {q: {m: float(np.mean(v)) for m, v in d.items()}
                                   for q, d in gt_table.items()}
        summary["ground_truth_n"] = len(next(iter(gt_table["visible SSIM"].values())))
    out = Path(out)
    output_dir(out)
    if gt_table:
        lines = [f"Against the recording's ground truth ({summary['ground_truth_n']} "
                 f"exposures of {bag})", ""]
        for q, d in summary["ground_truth"].items():
            lines += [f"| {q} | " + " | ".join(d) + " |", "|---" * (len(d) + 1) + "|",
                      "| | " + " | ".join(f"{v:.3f}" for v in d.values()) + " |", ""]
        (out / "ground_truth.md").write_text("\n".join(lines))
    summary.update(summary_extra)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "table1.md").write_text(f"Metrics against the inputs ({len(windows)} exposures of "
                                   f"{bag}; no ground truth)\n\n" + _fmt_table1(summary["table1"])
                                   + "\n")
    if examples:
        cv2.imwrite(str(out / "examples.png"), tile(examples, ["visible input", "IR (warped)",
                                                               "EVIF visible", "EVIF fused"]))
    return summary
