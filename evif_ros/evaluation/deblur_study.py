"""Learning curves of IR deblurring networks alone (issue 29): validation PSNR against
training time on this CPU, for event-guided networks of several widths at full and half
resolution and for the frame-only network (no events), all on the same data.

Each design trains from scratch for a fixed wall-clock budget with the PSNR loss of
`evif train` (normalised by the blurry frame's range), and is scored at fixed points of
that budget on full validation frames, the way `evif eval` scores IR PSNR (8-bit, stretched
by the blurry frame's range). Evaluation time is not counted as training time. No
reconstruction features enter (the cross-task enhancement is measured on its own): the
study asks what capacity, resolution and events buy the deblurring network itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from evif_ros.evaluation.benchmark import stretch, to8
from evif_ros.evaluation.metrics import psnr
from evif_ros.learning.data import ShardData, ir_range, sample_tensors
from evif_ros.learning.deblur import DeblurNet
from evif_ros.learning.frame_deblur import FrameDeblurNet
from evif_ros.learning.layers import pad_to
from evif_ros.learning.losses import psnr_loss


@dataclass(frozen=True)
class Design:
    """One network of the study. ``events`` False: the frame-only network (NAFNet blocks,
    ``base`` wide, ``blocks`` per level); True: DeblurNet at 1/``shuffle`` resolution."""

    name: str
    events: bool
    base: int
    shuffle: int = 2
    blocks: int = 1
    motion_taps: int = 0

    def build(self) -> torch.nn.Module:
        if not self.events:
            return FrameDeblurNet(self.base, self.blocks)
        return DeblurNet(10, self.base, 32, enhance=False, conv_first=True,
                         shuffle=self.shuffle, motion_taps=self.motion_taps)


DESIGNS = {d.name: d for d in (
    Design("events-h8", True, 8),  # the shipped CPU size (85k parameters)
    Design("events-h8-motion", True, 8, motion_taps=7),  # ... with the shipped deconvolution
    Design("events-h16", True, 16),
    Design("events-h32", True, 32),
    Design("events-h64", True, 64),  # EFNet's width (4.4 M parameters)
    Design("events-f8", True, 8, shuffle=1),
    Design("events-f32", True, 32, shuffle=1),
    Design("frame-16", False, 16, 1),  # the shipped frame-only network
    Design("frame-32", False, 32, 2),
)}


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def forward(net: torch.nn.Module, design: Design, ir_n: torch.Tensor,
            voxel: torch.Tensor) -> torch.Tensor:
    """Normalised blurry IR (B,1,H,W) and exposure counts (B,10,H,W) -> sharp (B,1,H,W)."""
    if not design.events:
        return net(ir_n)
    return net(ir_n, torch.log1p(voxel), [])[0]


def frame_psnr(frame: np.ndarray, ref: np.ndarray) -> float:
    """IR PSNR as `evif eval` scores it: a frame in the blurry frame's normalised units
    (0-1 = its 0.5-99.5 % range), clipped and quantised to 8 bits, against ``ref`` (8-bit)."""
    return psnr(to8(np.clip(frame, 0, 1)), ref)


class Validation:
    """Full frames of a split, held as tensors (padded to a multiple of 16)."""

    def __init__(self, samples: list[dict]):
        self.items = []
        for s in samples:
            lo, scale = ir_range(s["ir_blur"])
            h, w = s["ir_blur"].shape
            exp_vox = sample_tensors(s["events"], s["exposure_ns"], s["recon_start_ns"], 1,
                                     h, w)[0]
            ir_n = (s["ir_blur"].astype(np.float32) - lo) / scale
            ref = to8(stretch(s["ir_sharp"], lo, scale))
            x = pad_to(torch.from_numpy(ir_n)[None, None], 16)[0]
            v = pad_to(torch.from_numpy(exp_vox)[None], 16)[0]
            self.items.append((x, v, ref, h, w, frame_psnr(ir_n, ref)))

    def blurry_psnr(self) -> float:
        return float(np.mean([it[5] for it in self.items]))

    @torch.no_grad()
    def __call__(self, net: torch.nn.Module, design: Design, device: str = "cpu") -> float:
        net.eval()
        scores = []
        for x, v, ref, h, w, _ in self.items:
            out = forward(net, design, x.to(device), v.to(device))[0, 0, :h, :w].cpu().numpy()
            scores.append(frame_psnr(out, ref))
        net.train()
        return float(np.mean(scores))


def run_design(design: Design, data: ShardData, val: Validation, out: Path,
               weights: Path, budget_min: float, points: int = 6, batch: int = 8, crop: int = 96,
               lr: float = 4e-4, seed: int = 0, progress=print, device: str = "cpu") -> dict:
    """Train ``design`` for ``budget_min`` minutes of training time on ``device``, scoring
    it ``points`` times; the curve goes to ``out/<name>.json`` (a finished design is not run
    again), the trained network to ``weights/<name>.ts`` (not beside the committed curves)."""
    path = out / f"{design.name}.json"
    if path.exists():
        return json.loads(path.read_text())
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = design.build().to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    marks = [budget_min * 60 * (i + 1) / points for i in range(points)]
    curve = [{"train_s": 0.0, "iters": 0, "psnr": val(net, design, device)}]
    # a GPU runs asynchronously: a step's time is known once it has finished
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    trained, it = 0.0, 0
    for mark in marks:
        while trained < mark:
            t0 = time.perf_counter()
            b = data.batch(rng, batch, crop, 1).to(torch.device(device))
            ir_n, sharp_n = b.ir_normalized()
            loss = psnr_loss(forward(net, design, ir_n, b.exp_vox), sharp_n)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sync()
            trained += time.perf_counter() - t0
            it += 1
        curve.append({"train_s": round(trained, 1), "iters": it,
                      "psnr": val(net, design, device)})
        progress(f"{design.name}: {trained / 60:.1f} of {budget_min:.0f} min, {it} it, "
                 f"{(it / trained):.2f} it/s, val {curve[-1]['psnr']:.2f} dB")
    result = {"design": asdict(design), "params": n_params(net), "curve": curve,
              "blurry_psnr": val.blurry_psnr(), "budget_min": budget_min,
              "batch": batch, "crop": crop, "lr": lr, "threads": torch.get_num_threads(),
              "device": device}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    weights.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(net.cpu()), str(weights / f"{design.name}.ts"))
    return result


def table(results: list[dict]) -> str:
    """Markdown: one row per design, gain over blurry at each scored point and at the end."""
    rows = ["| design | events | resolution | parameters | iterations | val PSNR (dB) | "
            "gain over blurry (dB) | gain at half the time |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        d, c = r["design"], r["curve"]
        half = c[len(c) // 2]
        res = "full" if not d["events"] or d["shuffle"] == 1 else f"1/{d['shuffle']}"
        rows.append(f"| {d['name']} | {'yes' if d['events'] else 'no'} | {res} | "
                    f"{r['params']:,} | {c[-1]['iters']} | {c[-1]['psnr']:.2f} | "
                    f"{c[-1]['psnr'] - r['blurry_psnr']:+.2f} | "
                    f"{half['psnr'] - r['blurry_psnr']:+.2f} |")
    return "\n".join(rows)


def scenario_table(scores: dict[str, list[float]], scenarios: list[str], what: str) -> str:
    """Markdown: one row per method of ``scores`` (IR PSNR per sample, in the order of
    ``scenarios``, each sample's scenario), its mean over all samples and per scenario."""
    names = sorted(set(scenarios))
    sc = np.array(scenarios)
    rows = [f"| {what} | IR PSNR (dB) | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names)]
    for name, vals in scores.items():
        v = np.array(vals)
        rows.append(f"| {name} | {v.mean():.2f} | "
                    + " | ".join(f"{v[sc == n].mean():.2f}" for n in names) + " |")
    return "\n".join(rows)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        c = r["curve"]
        style = "-" if r["design"]["events"] else "--"
        ax.plot([p["train_s"] / 60 for p in c], [p["psnr"] - r["blurry_psnr"] for p in c],
                style, marker="o", ms=3, label=f"{r['design']['name']} ({r['params'] / 1e3:.0f}k)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("training time on this CPU (min, one thread)")
    ax.set_ylabel("validation IR PSNR gain over blurry (dB)")
    ax.set_title("IR deblurring alone: learning curves")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
