"""Scene-source statistics (procedural world vs image pairs), from dataset samples.

Each figure comes from single exposures made exactly as `evif dataset` makes them (test
split, so only held-out images), which is what the networks are trained and scored on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from evif_ros.runtime.render import events_image, normalize, tile
from evif_ros.sim.dataset import DatasetConfig, make_sample
from evif_ros.sim.recording import psnr_counts
from evif_ros.sim.scenarios import PAIR_MOTION_SCALE

APS_DARK_DN, APS_CLIPPED_DN = 16, 250


@dataclass(frozen=True)
class SourceStats:
    scenario: str
    source: str
    samples: int
    event_rate_mev_s: float  # over the exposure and the reconstruction sub-windows
    on_share: float
    ir_psnr_db: float  # blurry IR against the sharp IR at mid-exposure
    aps_dark: float  # share of APS pixels below APS_DARK_DN
    aps_clipped: float  # share at or above APS_CLIPPED_DN


def source_stats(cfg: DatasetConfig, scenario: str, samples: int, seed: int
                 ) -> tuple[SourceStats, list[dict]]:
    """Statistics of ``samples`` test-split exposures of one scenario; also the samples."""
    drawn = [make_sample(seed, "test", i, cfg, scenario=scenario) for i in range(samples)]
    n_ev = sum(s["events"].size for s in drawn)
    span_s = sum((s["exposure_ns"] - s["recon_start_ns"]) * 1e-9 for s in drawn)
    aps = np.stack([s["aps_blur"] for s in drawn])
    return SourceStats(
        scenario, "pairs" if cfg.pairs_dir else "procedural", samples,
        n_ev / span_s / 1e6,
        sum(int(s["events"]["p"].sum()) for s in drawn) / max(n_ev, 1),
        float(np.mean([psnr_counts(s["ir_blur"].astype(np.float64),
                                   s["ir_sharp"].astype(np.float64)) for s in drawn])),
        float(np.mean(aps < APS_DARK_DN)), float(np.mean(aps >= APS_CLIPPED_DN)),
    ), drawn


def compare_sources(pairs_dir: Path, scenarios: list[str], samples: int, seed: int,
                    motion_scale: float = PAIR_MOTION_SCALE
                    ) -> tuple[list[SourceStats], list[dict]]:
    """Both sources for every scenario; returns the stats and one pair sample per scenario."""
    proc = DatasetConfig()
    pairs = replace(proc, pairs_dir=str(Path(pairs_dir).resolve()), motion_scale=motion_scale)
    rows, examples = [], []
    for name in scenarios:
        for cfg in (proc, pairs):
            st, drawn = source_stats(cfg, name, samples, seed)
            rows.append(st)
            if cfg.pairs_dir:
                examples.append(drawn[0])
    return rows, examples


def preview_grid(samples: list[dict], out_png: Path) -> None:
    """One row per sample: blurry IR | events (exposure) | sharp visible | blurry APS |
    sharp IR."""
    rows = []
    for s in samples:
        h, w = s["ir_blur"].shape
        ev = s["events"]
        ev = ev[(ev["t"] >= 0) & (ev["t"] < s["exposure_ns"])]
        label = f"{s['scenario']}: {s['image']}"
        vis = cv2.putText(s["vis_sharp"].copy(), label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX,
                          0.4, 255, 1, cv2.LINE_AA)
        rows.append([normalize(s["ir_blur"]), events_image(ev, w, h), vis, s["aps_blur"],
                     normalize(s["ir_sharp"])])
    grid = tile(rows, ["blurry IR", "events (exposure)", "visible (GT)", "APS (blurry)",
                       "sharp IR (GT)"])
    cv2.imwrite(str(out_png), grid)


def markdown(rows: list[SourceStats]) -> str:
    lines = ["| scenario | source | samples | MEv/s | ON share | blurry-IR PSNR (dB) | "
             f"APS < {APS_DARK_DN} DN | APS >= {APS_CLIPPED_DN} DN |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.scenario} | {r.source} | {r.samples} | {r.event_rate_mev_s:.2f} | "
                     f"{r.on_share:.0%} | {r.ir_psnr_db:.1f} | {r.aps_dark:.0%} | "
                     f"{r.aps_clipped:.0%} |")
    return "\n".join(lines)
