"""The visible reconstruction's memory on scripted recordings with ground truth
(:mod:`evif_ros.sim.stopgo`): SSIM over time while the camera moves, rests and pans, for
each model file beside the APS frame.

The model runs as the node runs it (TorchScript, state carried window to window), on every
event of each 30 Hz window (its per-sub-window, per-polarity counts: the stacked
reconstruction's input). The headline figures: SSIM at the stop (the last moving window),
2 s later, and their ratio; the APS frame's mean SSIM over the rest.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from evif_ros.errors import ConfigError
from evif_ros.evaluation.metrics import structural_similarity
from evif_ros.paths import output_dir
from evif_ros.runtime.model_file import load_exported, set_contrast
from evif_ros.sim.pairs import PairLibrary
from evif_ros.sim.stopgo import KINDS, LIGHTS, K, stopgo_recording

AFTER_S = 2.0


def load_visible_model(model_path: Path, k: int, contrast: float | None = None):
    """The scripted module of a model whose reconstruction takes the stacked per-polarity
    counts of ``k`` sub-windows (the real-time sizes); its event step scaled to a sensor of
    ``contrast`` as the node scales it (``runtime.model_file.set_contrast``; None: as
    trained)."""
    module, meta = load_exported(model_path)
    cfg = meta["config"]
    if not cfg.get("recon_stacked") or int(cfg["sub_windows"]) != k:
        raise ConfigError(f"{model_path}: needs a stacked reconstruction with K={k} (the "
                          "real-time sizes)")
    set_contrast(module, meta, contrast)
    return module


def run_visible(module, counts: np.ndarray) -> np.ndarray:
    """Visible images (T, H, W) uint8 of a loaded model over per-window counts
    (T, K, 2, H, W), the state carried from a reset."""
    t, _, _, h, w = counts.shape
    ir, exp_vox = torch.zeros(1, 1, h, w), torch.zeros(1, 10, h, w)
    state: list = []
    out = np.zeros((t, h, w), np.uint8)
    with torch.no_grad():
        for j in range(t):
            sub = torch.from_numpy(counts[j].astype(np.float32))[None]
            _, _, vis, state = module(ir, exp_vox, sub, state)
            out[j] = (vis[0, 0].clamp(0, 1) * 255).round().byte().numpy()
    return out


def evaluate_stopgo(models: dict[str, Path], pairs_dir: Path, out: Path, images: int = 2,
                    progress: bool = True, contrast: float | None = None) -> str:
    """Every light x kind over ``images`` RoadScene test images; writes ``stopgo.csv``,
    ``stopgo.md`` and ``stopgo.png``; returns the table. ``contrast``: the threshold each
    model is told (the simulated sensor's is ``sim.stopgo.SENSOR_CONTRAST``); None: as trained."""
    modules = {m: load_visible_model(p, K, contrast) for m, p in models.items()}
    lib = PairLibrary.open(pairs_dir)
    names = lib.split("test")[:images]
    output_dir(out)
    rows = []
    runs = [(n, li, k) for n in names for li in LIGHTS for k in KINDS]
    for i, (name, light, kind) in enumerate(tqdm(runs, desc="stop-and-go", disable=not progress)):
        rec = stopgo_recording(lib.load(name)[0], light, kind, seed=i)
        vis = {m: run_visible(module, rec.counts) for m, module in modules.items()}
        for j in range(rec.frames.shape[0]):
            row = {"image": name, "light": light, "kind": kind, "window": j,
                   "t_s": round((j + 1) * rec.period_ns * 1e-9, 3),
                   "moving": int(j < rec.stop_window),
                   "APS": structural_similarity(rec.aps[j], rec.frames[j])}
            for m in models:
                row[m] = structural_similarity(vis[m][j], rec.frames[j])
            rows.append(row)
    with open(out / "stopgo.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    table = _table(rows, list(models))
    (out / "stopgo.md").write_text(table + "\n")
    _plot(rows, list(models), out / "stopgo.png")
    return table


def _table(rows: list[dict], models: list[str]) -> str:
    lines = ["| light | recording | method | SSIM at stop | SSIM 2 s later | ratio | mean SSIM "
             "over the rest / pan |", "|---|---|---|---|---|---|---|"]
    for light in LIGHTS:
        for kind in KINDS:
            sel = [r for r in rows if r["light"] == light and r["kind"] == kind]
            for m in models + ["APS"]:
                if kind == "stop":
                    stop = np.mean([r[m] for r in sel if r["window"] == _stop_index(sel)])
                    late = np.mean([r[m] for r in sel if r["window"] == _stop_index(sel)
                                    + int(round(AFTER_S * 30))])
                    rest = np.mean([r[m] for r in sel if not r["moving"]])
                    lines.append(f"| {light} | stop | {m} | {stop:.3f} | {late:.3f} | "
                                 f"{late / max(stop, 1e-6):.2f} | {rest:.3f} |")
                else:
                    pan = np.mean([r[m] for r in sel if r["window"] >= 10])
                    lines.append(f"| {light} | slow pan | {m} | | | | {pan:.3f} |")
    return "\n".join(lines)


def _stop_index(sel: list[dict]) -> int:
    """The last moving window."""
    return max(r["window"] for r in sel if r["moving"])


def _plot(rows: list[dict], models: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(KINDS), len(LIGHTS), figsize=(12, 6), sharey=True)
    for a, kind in enumerate(KINDS):
        for b, light in enumerate(LIGHTS):
            ax = axes[a, b]
            sel = [r for r in rows if r["light"] == light and r["kind"] == kind]
            ts = sorted({r["t_s"] for r in sel})
            for m in models + ["APS"]:
                ax.plot(ts, [np.mean([r[m] for r in sel if r["t_s"] == t]) for t in ts],
                        label=m, lw=1.2, ls="--" if m == "APS" else "-")
            if kind == "stop":
                ax.axvline(KINDS["stop"][0], color="grey", lw=0.8)
            ax.set_title(f"{light}, {'stop after 1 s' if kind == 'stop' else 'slow pan'}")
            ax.set_xlabel("s")
    axes[0, 0].set_ylabel("visible SSIM")
    axes[1, 0].set_ylabel("visible SSIM")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
