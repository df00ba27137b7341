"""How the visible reconstruction recovers from lost events: held-out video sequences
(`evif video-dataset`, ground truth at every window end) run as the node runs them, once
whole and once with a span of sub-windows emptied (the scene moves on without events, as
in a recording that keeps only each APS exposure's events, or a saturated bus); visible
SSIM per window after the gap, both ways, for each model.

Usage: python scripts/event_gaps.py --model NAME=FILE [--model ...] [--data data/video_test]
       [--sequences 24] [--gap-start 30] [--gap 9] [--contrast]
(--gap-start and --gap in sub-windows; K = 6 per window. --contrast tells each model its
sequence's sensor threshold, as a rig calibration would.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from evif_ros.evaluation.metrics import structural_similarity
from evif_ros.evaluation.stopgo import load_visible_model, run_visible
from evif_ros.sim.video import iter_sequences

K = 6


def run(module, counts: np.ndarray, frames: np.ndarray, first: int) -> list[float]:
    """SSIM per window from ``first`` on, the state carried from a reset."""
    vis = run_visible(module, counts)
    return [structural_similarity(v, f) for v, f in zip(vis[first:], frames[first:])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, metavar="NAME=FILE")
    ap.add_argument("--data", type=Path, default=Path("data/video_test"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--sequences", type=int, default=24)
    ap.add_argument("--gap-start", type=int, default=30, help="first empty sub-window")
    ap.add_argument("--gap", type=int, default=9, help="empty sub-windows")
    ap.add_argument("--contrast", action="store_true",
                    help="tell each model its sequence's sensor threshold")
    a = ap.parse_args()
    torch.set_num_threads(1)
    models = dict(m.split("=", 1) for m in a.model)
    first = a.gap_start // K - 1  # from the last window before the gap
    gap_end = a.gap_start + a.gap
    ssim: dict[tuple[str, str], list[list[float]]] = {}
    # told each sequence's threshold, a model is loaded afresh (the step scales once per load)
    loaded = {} if a.contrast else {m: load_visible_model(Path(p), K) for m, p in models.items()}
    for n, q in enumerate(iter_sequences(a.data, a.split)):
        if n >= a.sequences:
            break
        counts, frames = q["counts"], q["frames"]
        if counts.shape[1] != K or counts.shape[0] * K < gap_end + K:
            print(f"event_gaps: {a.data}: sequences of {counts.shape[0]} windows x "
                  f"{counts.shape[1]} are too short for this gap", file=sys.stderr)
            return 2
        gapped = counts.copy()
        gapped.reshape(-1, *counts.shape[2:])[a.gap_start:gap_end] = 0
        for name, path in models.items():
            module = loaded.get(name) or load_visible_model(Path(path), K, q["c_on"])
            for kind, c in (("whole", counts), ("gap", gapped)):
                ssim.setdefault((name, kind), []).append(run(module, c, frames, first))
    windows = len(next(iter(ssim.values()))[0])
    print(f"{a.data} ({a.split}), {a.sequences} sequences, sub-windows {a.gap_start}-"
          f"{gap_end - 1} empty ({a.gap} of {K} per window); visible SSIM per window, "
          "whole / with the gap\n")
    head = "| window ends, sub-windows after the gap | " + " | ".join(models) + " |"
    print(head + "\n|---|" + "---|" * len(models))
    for j in range(windows):
        after = (first + j + 1) * K - gap_end
        cells = [f"{np.mean([s[j] for s in ssim[(m, 'whole')]]):.3f} / "
                 f"{np.mean([s[j] for s in ssim[(m, 'gap')]]):.3f}" for m in models]
        print(f"| {after:+d} | " + " | ".join(cells) + " |")
    lost = {m: np.mean([np.mean(w) - np.mean(g) for w, g in zip(ssim[(m, "whole")],
                                                                ssim[(m, "gap")])])
            for m in models}
    print("\nmean SSIM lost to the gap over these windows: "
          + ", ".join(f"{m} {v:.4f}" for m, v in lost.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
