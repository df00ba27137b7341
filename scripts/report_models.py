"""Tables and the quality-against-latency plot of the models, from `scripts/eval_rt.sh`'s
reports and `scripts/bench_inference.py`'s JSON (saved as RUN/bench/<model>.json).

Run: .venv/bin/python scripts/report_models.py [RUN_DIR]  -> RUN/report.md,
RUN/quality_latency.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPLITS = {"test_pairs": "RoadScene test images", "test_proc": "procedural (unseen seed)"}
METRICS = ("CE", "EN", "MI", "AG", "SSIM", "Q_CB")
# the rows that are whole model files, by the name of their benchmark JSON (RUN/bench/)
BENCHED = {"evif_rt.ts (shipped, size rt2)": "evif_rt",
           "evif_rt1: size rt, full resolution (shipped earlier)": "evif_rt1",
           "evif_gpu.ts": "evif_gpu"}


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/rt2ft")
    lines = []
    quality: dict[str, dict] = {}
    for split, title in SPLITS.items():
        full = load(run / "eval" / split / "summary.json")
        if full is None:
            continue
        rows = {"evif_rt.ts (shipped, size rt2)": full}
        for suffix, name in (("line", "evif_rt with the motion deconvolution along one "
                                      "straight shift (same weights)"),
                             ("nomotion", "evif_rt without the motion deconvolution "
                                          "(shipped before)"),
                             ("rt1", "evif_rt1: size rt, full resolution (shipped earlier)"),
                             ("mipx", "evif_rt without the motion deconvolution, fusion "
                                      "fine-tuned with intensity MI, SSIM symmetric"),
                             ("sharp", "evif_rt without the motion deconvolution, fusion "
                                       "fine-tuned without the intensity-MI term"),
                             ("merged", "evif_rt, the base's fusion not fine-tuned"),
                             ("base", "evif_rt base (before fine-tuning on sequences at "
                                      "motion scale 3)"),
                             ("ft", "evif_rt, fusion retrained on the fine-tuning data"),
                             ("mi", "evif_rt with the MI terms (Eq. 4-5)"),
                             ("evif_gpu", "evif_gpu.ts")):
            s = load(run / "eval" / f"{split}_{suffix}" / "summary.json")
            if s is not None:
                rows[name] = s
        lines += [f"### {title} ({full['n']} exposures; other models: first "
                  f"{rows.get('evif_gpu.ts', full)['n']})", "",
                  "| model | IR PSNR (dB) | visible SSIM | " + " | ".join(METRICS) + " | SD |",
                  "|---" * (4 + len(METRICS)) + "|"]
        for name, s in rows.items():
            t1 = s["table1"]["EVIF"]
            lines.append(f"| {name} | {s['table2']['EVIF']:.2f} | {s['table3']['EVIF']:.3f} | "
                         + " | ".join(f"{t1[m]:.3f}" for m in METRICS)
                         + f" | {s.get('contrast_sd', {}).get('EVIF', float('nan')):.1f} |")
            if name in BENCHED:
                quality.setdefault(BENCHED[name], {})[split] = (s["table2"]["EVIF"],
                                                                s["table3"]["EVIF"])
        lines += ["", *_per_scenario(full), ""]
    bench = {p.stem: load(p) for p in sorted((run / "bench").glob("*.json"))}
    if bench:
        lines += ["### CPU latency per IR frame at 346x260 (this machine, same run as a "
                  "FireNet pass)", "", "| model | total p50 (ms) | p95 (ms) | FireNet p50 (ms) "
                  "| ratio | GMAC |", "|---|---|---|---|---|---|"]
        for name, b in bench.items():
            ms = b["ms"]
            lines.append(f"| {name} | {ms['total'][0]:.1f} | {ms['total'][1]:.1f} | "
                         f"{ms['FireNet pass'][0]:.1f} | {b['ratio_p50']:.2f} | "
                         f"{b.get('gmac_model', float('nan')):.2f} |")
    (run / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(run, quality, bench)


def _per_scenario(s: dict) -> list[str]:
    """IR PSNR and visible SSIM per scenario of the shipped model's report."""
    per = s["per_scenario"]
    psnr_cols = list(next(iter(per.values()))["PSNR"])
    vis_cols = list(next(iter(per.values()))["VIS_SSIM"])
    out = ["| scenario | " + " | ".join(f"IR PSNR: {c}" for c in psnr_cols) + " | "
           + " | ".join(f"visible SSIM: {c}" for c in vis_cols) + " |",
           "|---" * (1 + len(psnr_cols) + len(vis_cols)) + "|"]
    for scn, d in sorted(per.items()):
        out.append(f"| {scn} | " + " | ".join(f"{d['PSNR'][c]:.2f}" for c in psnr_cols) + " | "
                   + " | ".join(f"{d['VIS_SSIM'][c]:.3f}" for c in vis_cols) + " |")
    return out


def _plot(run: Path, quality: dict, bench: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (idx, label) in zip(axes, ((0, "IR PSNR (dB)"), (1, "visible SSIM"))):
        for key, per_split in quality.items():
            if key not in bench:
                continue
            x = bench[key]["ratio_p50"]
            for split, marker in (("test_pairs", "o"), ("test_proc", "s")):
                if split in per_split:
                    ax.scatter(x, per_split[split][idx], marker=marker,
                               label=f"{key} ({SPLITS[split].split()[0]})")
        ax.axvline(1.0, color="grey", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("CPU time per IR frame / one FireNet pass (p50)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(run / "quality_latency.png", dpi=90)


if __name__ == "__main__":
    main()
