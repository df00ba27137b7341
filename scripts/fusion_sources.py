"""How much of each source a model's fused image keeps: MI and SSIM of the fused image with
the sharp visible and the sharp IR frame separately (the metrics' sums hide which source a
gain comes from), and its SSIM with the model's own deblurred IR.

Run: .venv/bin/python scripts/fusion_sources.py [--data data/mix3/test_pairs] [--limit 60]
     MODEL.ts [MODEL.ts ...]     -> a markdown table on stdout
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from evif_ros.evaluation import metrics as M
from evif_ros.evaluation.benchmark import dataset_runner, run_exposure, stretch, to8
from evif_ros.sim.dataset import iter_samples

COLUMNS = ("MI(F, visible)", "MI(F, IR)", "SSIM(F, visible)", "SSIM(F, IR)",
           "SSIM(F, EVIF's deblurred IR)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", default="data/mix3/test_pairs")
    ap.add_argument("--split", default="test", choices=("test", "train"))
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    samples = list(iter_samples(args.data, args.split))[: args.limit]
    print(f"{len(samples)} exposures of {args.data}\n")
    print("| model | " + " | ".join(COLUMNS) + " |\n" + "|---" * (1 + len(COLUMNS)) + "|")
    for path in args.models:
        runner = dataset_runner(path, samples)
        acc = defaultdict(list)
        for s in samples:
            out, ir, lo, scale = run_exposure(runner, s)
            vis, f = s["vis_sharp"], out.fused
            for col, v in zip(COLUMNS, (
                    M.source_mi(vis, f), M.source_mi(ir, f), M.structural_similarity(f, vis),
                    M.structural_similarity(f, ir),
                    M.structural_similarity(f, to8(stretch(out.ir_deblurred, lo, scale))))):
                acc[col].append(v)
        print(f"| {path} | " + " | ".join(f"{np.mean(acc[c]):.3f}" for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
