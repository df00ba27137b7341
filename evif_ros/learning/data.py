"""Training batches from `evif dataset` shards: random crops, flips, voxel grids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from evif_ros.runtime.events import recon_edges
from evif_ros.runtime.voxel import WindowVoxelizer, window_voxels
from evif_ros.sim.dataset import iter_samples

# a model's weight-free motion deconvolution of a whole frame: (blurry IR in the frame's
# normalised units (H, W), the exposure's event counts (10, H, W)) -> (H, W), same units
Deconvolver = Callable[[np.ndarray, np.ndarray], np.ndarray]


def ir_range(ir: np.ndarray) -> tuple[float, float]:
    """``(lo, scale)`` of the model's IR normalisation (raw counts): the 0.5 / 99.5
    percentiles of the whole blurry frame, as :meth:`EvifPipeline.normalize_ir` computes
    at inference. Training crops use their frame's range, not their own, so the loss is
    in the units the evaluation's PSNR is measured in."""
    lo, hi = np.quantile(ir.astype(np.float64), [0.005, 0.995])
    return float(lo), float(max(hi - lo, 1.0))


def sub_window_edges(recon_start_ns: int, exposure_ns: int, k: int) -> np.ndarray:
    """K equal sub-windows from the reconstruction start to mid-exposure."""
    mid = exposure_ns // 2
    return recon_edges(mid, mid - recon_start_ns, k)


def sample_tensors(events: np.ndarray, exposure_ns: int, recon_start_ns: int, k: int,
                   height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Exposure voxel (10, H, W) and K sub-window voxels (K, 10, H, W) of a dataset sample
    (times relative to the exposure start)."""
    return window_voxels(events, 0, exposure_ns, sub_window_edges(recon_start_ns, exposure_ns, k),
                         height, width)


def warmup_tensors(events: np.ndarray, exposure_ns: int, recon_start_ns: int, k: int,
                   frames: int, period_ns: int, height: int, width: int) -> np.ndarray:
    """Sub-window voxels (N, K, 10, H, W) of the N earlier IR frames of a sequence sample,
    oldest first: each frame's K sub-windows end at its own mid-exposure, ``period_ns``
    apart, as the synchronizer cuts them from a stream."""
    out = np.zeros((frames, k, 10, height, width), np.float32)
    vox = WindowVoxelizer(height, width, k)  # one buffer for all frames
    edges = sub_window_edges(recon_start_ns, exposure_ns, k)
    for j in range(frames):
        shift = (frames - j) * period_ns
        out[j] = vox(events, -shift, exposure_ns, edges - shift)[1]
    return out


@dataclass
class Batch:
    ir: torch.Tensor  # (B, 1, h, w) raw counts
    exp_vox: torch.Tensor  # (B, 10, h, w)
    sub_vox: torch.Tensor  # (B, K, 10, h, w)
    ir_sharp: torch.Tensor  # (B, 1, h, w) raw counts
    vis: torch.Tensor  # (B, 1, h, w) in [0, 1]
    aps: torch.Tensor  # (B, 1, h, w) in [0, 1]
    ir_lo: torch.Tensor  # (B, 1, 1, 1) raw counts, of the whole blurry frame
    ir_scale: torch.Tensor  # (B, 1, 1, 1) raw counts
    warm_sub_vox: torch.Tensor  # (B, N, K, 10, h, w): N earlier frames' (N = 0: none)
    # (B, 1, h, w) raw counts: the blurry frame deconvolved whole, then cropped (the blurry
    # crop where the data was loaded without a deconvolver)
    ir_deconv: torch.Tensor

    def to(self, device: torch.device) -> "Batch":
        return Batch(*[t.to(device, non_blocking=True) for t in vars(self).values()])

    def ir_normalized(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Blurry and sharp IR crops in the frame's normalised units."""
        return ((self.ir - self.ir_lo) / self.ir_scale,
                (self.ir_sharp - self.ir_lo) / self.ir_scale)

    def deconv_normalized(self) -> torch.Tensor:
        """The deconvolved crops in the frame's normalised units."""
        return (self.ir_deconv - self.ir_lo) / self.ir_scale


class ShardData:
    """A split held in memory (a few hundred MB for ~2000 samples).

    ``deconvolve``: the model's motion deconvolution, run once per sample on the whole
    frame, so that a crop shows the deblurring network what it sees at inference: the
    events of a 128 px crop give a worse motion than the frame's (0.4 dB of the
    deconvolution's 1.0 dB gain on training crops), and beyond the crop's border margin
    none at all."""

    def __init__(self, data_dir: Path, split: str, limit: int = 0,
                 deconvolve: Optional[Deconvolver] = None):
        self.samples = []
        for i, s in enumerate(iter_samples(Path(data_dir), split)):
            if limit and i >= limit:
                break
            s["ir_lo"], s["ir_scale"] = ir_range(s["ir_blur"])
            if deconvolve is not None:
                s["ir_deconv"] = deconvolved(s, deconvolve)
            self.samples.append(s)

    def __len__(self) -> int:
        return len(self.samples)

    def batch(self, rng: np.random.Generator, size: int, crop: int, k: int,
              flip: bool = True, span_ns: int = 0) -> Batch:
        """``span_ns`` > 0: the sub-windows span that long before mid-exposure (models with
        image feedback take every event since the previous window) where the sample
        holds earlier frames' events; else the span stored (the exposure)."""
        parts = [self.crop(self.samples[int(rng.integers(len(self.samples)))], rng, crop, k,
                           flip, span_ns) for _ in range(size)]
        return Batch(*[torch.from_numpy(np.stack(x)) for x in zip(*parts)])

    @staticmethod
    def crop(s: dict, rng: np.random.Generator, crop: int, k: int, flip: bool,
             span_ns: int = 0):
        h, w = s["ir_blur"].shape
        y0, x0 = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        ev = s["events"]
        keep = (ev["x"] >= x0) & (ev["x"] < x0 + crop) & (ev["y"] >= y0) & (ev["y"] < y0 + crop)
        ev = ev[keep]
        ev["x"] -= x0
        ev["y"] -= y0
        mirror = flip and rng.random() < 0.5
        if mirror:
            ev["x"] = crop - 1 - ev["x"]
        start = s["recon_start_ns"]
        if span_ns and s["warmup_frames"]:
            start = s["exposure_ns"] // 2 - span_ns
        exp_vox, subs = sample_tensors(ev, s["exposure_ns"], start, k, crop, crop)
        win = (slice(y0, y0 + crop), slice(x0, x0 + crop))

        def img(a, scale=1.0):
            out = a[win].astype(np.float32)[None] * scale
            return np.ascontiguousarray(out[..., ::-1]) if mirror else out
        frame_range = [np.full((1, 1, 1), s[k], np.float32) for k in ("ir_lo", "ir_scale")]
        warm = warmup_tensors(ev, s["exposure_ns"], start, k, s["warmup_frames"],
                              s["frame_period_ns"], crop, crop)
        return (img(s["ir_blur"]), exp_vox, subs, img(s["ir_sharp"]), img(s["vis_sharp"], 1 / 255),
                img(s["aps_blur"], 1 / 255), *frame_range, warm,
                img(s.get("ir_deconv", s["ir_blur"])))


def deconvolved(s: dict, deconvolve: Deconvolver) -> np.ndarray:
    """A sample's whole blurry frame through ``deconvolve``, in raw counts (H, W)."""
    h, w = s["ir_blur"].shape
    exp_vox = sample_tensors(s["events"], s["exposure_ns"], s["recon_start_ns"], 1, h, w)[0]
    ir_n = (s["ir_blur"].astype(np.float32) - s["ir_lo"]) / s["ir_scale"]
    return (deconvolve(ir_n, exp_vox) * s["ir_scale"] + s["ir_lo"]).astype(np.float32)


class _BatchStream(torch.utils.data.IterableDataset):
    """Endless batches of one worker, from its own generator (deterministic per worker)."""

    def __init__(self, data: ShardData, seed: list[int], size: int, crop: int, k: int,
                 span_ns: int = 0):
        self.data, self.seed, self.size, self.crop, self.k = data, seed, size, crop, k
        self.span_ns = span_ns

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng(self.seed + [info.id if info else 0])
        while True:
            yield self.data.batch(rng, self.size, self.crop, self.k, span_ns=self.span_ns)


def batch_stream(data: ShardData, seed: list[int], size: int, crop: int, k: int,
                 workers: int, span_ns: int = 0):
    """Batches made by ``workers`` processes (0: in this one), so voxelising the crops
    keeps pace with a GPU. The order is fixed for a given seed and worker count."""
    if workers <= 0:
        rng = np.random.default_rng(seed)
        while True:
            yield data.batch(rng, size, crop, k, span_ns=span_ns)
    loader = torch.utils.data.DataLoader(_BatchStream(data, seed, size, crop, k, span_ns),
                                         batch_size=None, num_workers=workers,
                                         pin_memory=torch.cuda.is_available(),
                                         prefetch_factor=4, persistent_workers=True)
    yield from loader
