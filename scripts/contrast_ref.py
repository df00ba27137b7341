"""Fit a model file's contrast reference: the sensor threshold its learned event step is
right for (``recon_contrast_ref`` in its metadata; see ``evif_ros/rigcal/contrast.py``).

The reconstruction's advection moves the kept image by ``step * (ON - OFF)``; the network
predicts the step without knowing the sensor's threshold C, so it learned one for the
thresholds of its training (0.1-0.6). Told C, the runtime scales the step by C / C_ref.
This script scores the visible SSIM of `evif video-dataset` sequences (each with its own
randomized threshold, stored as ``c_on``) with the step scaled by C / C_ref for several
C_ref, and by nothing (the step as trained), overall and per threshold range; ``--write``
stores the best C_ref in the model file (weights and code untouched).

    python scripts/contrast_ref.py --model models/evif_rt.ts --data data/video --split train
    python scripts/contrast_ref.py --model models/evif_rt.ts --data data/video_test \
        --split test --refs 0.29
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from evif_ros.learning.losses import ssim
from evif_ros.learning.train import model_from_exported
from evif_ros.runtime.model_file import load_exported
from evif_ros.sim.video import iter_sequences

BINS = (0.1, 0.16, 0.25, 0.4, 0.61)  # the training range 0.1-0.6 in four parts


def sequences(data: Path, split: str, limit: int):
    """``(counts (T, K, 2, S, S), frames (T, S, S) uint8, c_on)`` of a video split."""
    for n, q in enumerate(iter_sequences(data, split)):
        if n >= limit:
            return
        if np.isnan(q["c_on"]):
            sys.exit(f"{data}: no c_on (shards made before `evif video-dataset` stored "
                     "thresholds)")
        yield q["counts"], q["frames"], q["c_on"]


def sequence_ssim(model, counts: np.ndarray, frames: np.ndarray, skip: int) -> float:
    """Mean SSIM of the windows after the first ``skip`` (the state carried from a reset)."""
    ev = torch.from_numpy(counts).float()
    fr = torch.from_numpy(frames).float()[:, None, None] / 255
    state, scores = [], []
    for j in range(ev.shape[0]):
        vis, state, _, _ = model.reconstruct(ev[j][None], state)
        if j >= skip:
            scores.append(float(ssim(vis, fr[j])))
    return float(np.mean(scores))


def write_ref(path: Path, ref: float) -> None:
    """The file with ``recon_contrast_ref`` in its metadata, its code and weights as they are."""
    module, meta = load_exported(path)
    meta["recon_contrast_ref"] = round(ref, 3)
    torch.jit.save(module, str(path), _extra_files={"evif.json": json.dumps(meta)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("models/evif_rt.ts"))
    ap.add_argument("--data", type=Path, default=Path("data/video"))
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=96, help="first N sequences")
    ap.add_argument("--refs", type=float, nargs="+", default=[0.2, 0.23, 0.27, 0.29, 0.31, 0.35])
    ap.add_argument("--skip", type=int, default=8, help="windows left unscored after a reset")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="store the best C_ref in --model")
    ap.add_argument("--set", type=float, default=None, metavar="C_REF",
                    help="only store this C_ref in --model (a file whose reconstruction is "
                    "another's, bit for bit, takes that one's reference)")
    args = ap.parse_args()
    if args.set is not None:
        write_ref(args.model, args.set)
        print(f"wrote recon_contrast_ref {args.set:g} into {args.model}")
        return
    torch.set_num_threads(args.threads)
    model, _, _, _ = model_from_exported(args.model)
    model.eval()
    if not getattr(model.recon, "advect", False):
        sys.exit(f"{args.model}: its reconstruction has no event advection to scale")
    base = float(model.recon.step_max)
    settings = [None] + list(args.refs)
    rows = []
    seqs = list(sequences(args.data, args.split, args.limit))
    with torch.no_grad():
        for counts, frames, c in tqdm(seqs, desc="sequences", unit="seq"):
            row = [c]
            for ref in settings:
                model.recon.step_max = base * (1.0 if ref is None else c / ref)
                row.append(sequence_ssim(model, counts, frames, args.skip))
            rows.append(row)
    a = np.array(rows)
    names = ["as trained"] + [f"C_ref {r:g}" for r in args.refs]
    print(f"Visible SSIM, `{args.data}` {args.split} split, {len(a)} sequences, windows "
          f"{args.skip}+ (`{args.model}`):\n")
    print("| sensor threshold C | sequences | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        m = (a[:, 0] >= lo) & (a[:, 0] < hi)
        if m.any():
            print(f"| {lo:g}-{hi:g} | {m.sum()} | "
                  + " | ".join(f"{v:.4f}" for v in a[m, 1:].mean(0)) + " |")
    print(f"| all | {len(a)} | " + " | ".join(f"{v:.4f}" for v in a[:, 1:].mean(0)) + " |")
    best = args.refs[int(np.argmax(a[:, 2:].mean(0)))]
    print(f"\nbest C_ref: {best:g}")
    if args.write:
        write_ref(args.model, best)
        print(f"wrote recon_contrast_ref {best:g} into {args.model}")


if __name__ == "__main__":
    main()
