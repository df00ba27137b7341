"""Held-out figures for the model card: IR deblurring PSNR (blurry vs EVIF vs EVIF without
cross-task enhancement) and visible-reconstruction SSIM (EVIF vs a non-learned
event-integration baseline), overall and per scenario, at full 346x260 resolution."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from evif_ros.core.baselines import event_integration
from evif_ros.model.data import sample_tensors
from evif_ros.model.losses import ssim
from evif_ros.model.train import model_from_checkpoint
from evif_ros.sim.dataset import iter_samples


def psnr_normalized(x: np.ndarray, ref: np.ndarray, lo: float, scale: float) -> float:
    """PSNR (dB) on the blurry frame's [0.5, 99.5] percentile range mapped to [0, 1]."""
    mse = float(np.mean(((x - ref) / scale) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    ta = torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None]
    tb = torch.from_numpy(np.ascontiguousarray(b, np.float32))[None, None]
    return float(ssim(ta, tb))


def evaluate(data: Path, checkpoint: Path, ablation: Path | None = None, limit: int = 0,
             progress: bool = True) -> dict:
    model, cfg, _ = model_from_checkpoint(checkpoint)
    model.eval()
    abl = None
    if ablation is not None:
        abl, _, _ = model_from_checkpoint(ablation)
        abl.eval()
        abl.use_fusion = False
    rows = []
    samples = list(iter_samples(Path(data), "test"))
    if limit:
        samples = samples[:limit]
    for s in tqdm(samples, desc="evaluate", unit="sample", disable=not progress):
        h, w = s["ir_blur"].shape
        exp_vox, subs = sample_tensors(s["events"], s["exposure_ns"], s["recon_start_ns"],
                                       cfg.sub_windows, h, w)
        ir = torch.from_numpy(s["ir_blur"].astype(np.float32))[None, None]
        ev_t = torch.from_numpy(exp_vox)[None]
        sub_t = torch.from_numpy(subs)[None]
        with torch.no_grad():
            fused, deb, vis, _ = model(ir, ev_t, sub_t, [])
            _, lo, scale = model.normalize_ir(ir)
            deb_abl = None
            if abl is not None:
                ir_n = (ir - lo) / scale
                from evif_ros.model.layers import pad_to
                ip, _, _ = pad_to(ir_n, 8)
                ep, _, _ = pad_to(ev_t, 8)
                sp, _, _ = pad_to(sub_t.reshape(1, -1, h, w), 8)
                sp = sp.reshape(1, cfg.sub_windows, cfg.in_ch, ip.shape[2], ip.shape[3])
                out = abl.run(ip, ep, sp, [])
                deb_abl = (out["ir_n"][0, 0, :h, :w] * scale[0, 0] + lo[0, 0]).numpy()
        lo_f, sc_f = float(lo), float(scale)
        sharp = s["ir_sharp"].astype(np.float64)
        gt_vis = s["vis_sharp"].astype(np.float32) / 255
        mid = s["exposure_ns"] // 2
        baseline = event_integration(s["events"], mid, h, w)
        row = {
            "scenario": s["scenario"],
            "psnr_blurry": psnr_normalized(s["ir_blur"].astype(np.float64), sharp, lo_f, sc_f),
            "psnr_evif": psnr_normalized(deb[0, 0].numpy().astype(np.float64), sharp, lo_f,
                                         sc_f),
            "ssim_visible_evif": _ssim(vis[0, 0].numpy(), gt_vis),
            "ssim_visible_integration": _ssim(baseline, gt_vis),
            "ssim_aps": _ssim(s["aps_blur"].astype(np.float32) / 255, gt_vis),
        }
        if deb_abl is not None:
            row["psnr_no_enhance"] = psnr_normalized(deb_abl.astype(np.float64), sharp, lo_f,
                                                     sc_f)
        rows.append(row)
    return summarize(rows)


def summarize(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "scenario"]
    groups = defaultdict(list)
    for r in rows:
        groups[r["scenario"]].append(r)
        groups["all"].append(r)
    return {g: {"n": len(rs), **{k: float(np.mean([r[k] for r in rs])) for k in keys}}
            for g, rs in groups.items()}


def markdown(summary: dict) -> str:
    cols = [k for k in summary["all"] if k != "n"]
    head = "| scenario | n | " + " | ".join(cols) + " |"
    sep = "|---" * (len(cols) + 2) + "|"
    order = ["all"] + sorted(k for k in summary if k != "all")
    lines = [head, sep]
    for g in order:
        s = summary[g]
        lines.append(f"| {g} | {s['n']} | " + " | ".join(f"{s[c]:.3f}" for c in cols) + " |")
    return "\n".join(lines)


def write(summary: dict, out: Path) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_eval.json").write_text(json.dumps(summary, indent=1))
    (out / "model_eval.md").write_text(markdown(summary) + "\n")
