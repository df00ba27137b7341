"""One exposure window through EVIF (ROS-free): warp, voxel grids, TorchScript model.

The same code path serves the inference node, `evif eval` and the latency benchmark.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evif_ros.errors import EvifError, InputFileError, reason
from evif_ros.runtime.calibration import Calibration, warp_ir_to_davis
from evif_ros.runtime.events import EVENT_DTYPE
from evif_ros.runtime.feeder import WindowFeeder
from evif_ros.runtime.malloc import retain_freed_memory
from evif_ros.runtime.model_file import load_exported, set_contrast
from evif_ros.runtime.sync import ExposureWindow
from evif_ros.runtime.voxel import WindowVoxelizer


def pick_device(name: str) -> str:
    """``auto``: CUDA when present, else CPU; an unavailable CUDA request is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise EvifError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EvifError(f"device {name} requested but CUDA is not available")
    return name


@dataclass
class Result:
    fused: np.ndarray  # (H, W) uint8
    ir_deblurred: np.ndarray  # (H, W) uint16 counts
    visible: np.ndarray  # (H, W) uint8
    timings_ms: dict


PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}


def lag_warnings(meta: dict, exposure_ns: int) -> list[str]:
    """What a model file's thermal lag (``evif export --ir-lag-ms``) says about a rig of
    this IR exposure: the lag is stored over the exposure it was exported for, so on
    another exposure the deconvolution models the wrong blur."""
    lag_ms, exp_ms = meta.get("ir_lag_ms"), meta.get("ir_exposure_ms")
    if not isinstance(lag_ms, (int, float)) or not isinstance(exp_ms, (int, float)) \
            or lag_ms <= 0:  # no lag: the blur model does not depend on the exposure
        return []
    rig_ms = exposure_ns / 1e6
    if abs(rig_ms - exp_ms) <= 0.02 * exp_ms:
        return []
    return [f"the model's thermal lag ({lag_ms:g} ms) was set for {exp_ms:g} ms IR exposures, "
            f"the rig's is {rig_ms:g} ms: export it again with --ir-exposure-ms {rig_ms:g}"]


def recon_steps(span_ns: int, step_ns: int) -> int:
    """Reconstruction steps for sub-windows spanning ``span_ns`` when one step takes at most
    ``step_ns`` (0: one, whatever the span): one per step begun, with 10 % slack (34 ms is
    one step of 33.3 ms)."""
    if step_ns <= 0 or span_ns <= 0:
        return 1
    return max(1, int(np.ceil(span_ns / step_ns - 0.1)))


def step_state(model, sub: torch.Tensor, state: list, channels_last: bool = False) -> list:
    """The state after one reconstruction step over ``sub`` (B, K, C, H, W), nothing else
    run. A model file without ``step`` (written before 2026-12-04) runs whole on an empty
    IR frame and exposure, its images dropped."""
    if hasattr(model, "step"):
        return model.step(sub, state, channels_last)
    b, _, c, h, w = sub.shape
    exp = sub.new_zeros(b, c, h, w)
    if channels_last:  # as the runner hands the forward its exposure grid
        exp = exp.contiguous(memory_format=torch.channels_last)
    return model(sub.new_zeros(b, 1, h, w), exp, sub, state)[3]


def step_through(model, sub: torch.Tensor, state: list, k: int, channels_last: bool = False
                 ) -> tuple[list, torch.Tensor]:
    """``sub`` (B, n K, C, H, W): the first n - 1 groups of K sub-windows run as
    reconstruction steps (:func:`step_state`); returns the state after them and the last K
    sub-windows, which the whole pipeline takes."""
    n_sub = sub.shape[1]
    for i in range(0, n_sub - k, k):
        state = step_state(model, sub[:, i:i + k], state, channels_last)
    return state, sub[:, n_sub - k:]


class EvifRunner:
    """Holds the model, the calibration and the recurrent state.

    ``precision="fp16"`` runs the network in half precision (GPU only; the IR range is
    still computed in fp32, see ``EvifPipeline.normalize_ir``)."""

    def __init__(self, model_path: Path, calib: Calibration, device: str = "auto",
                 precision: str = "fp32", reset_gap_ns: int = 100_000_000,
                 recon_step_ns: int | None = None):
        retain_freed_memory()  # before the model's first buffers: no page faults per frame
        self.device = pick_device(device)
        if precision not in PRECISIONS:
            raise EvifError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        if precision == "fp16" and not self.device.startswith("cuda"):
            raise EvifError("precision fp16 needs a CUDA device")
        self.dtype = PRECISIONS[precision]
        self.model, self.meta = load_exported(model_path, self.device)
        self.model.to(self.dtype)
        # oneDNN's convolutions take channels-last input without reordering it: ~10 % of the
        # model's time on this CPU at 1 thread, ~20 % at 2 (scripts/bench_inference.py)
        self.channels_last = self.device == "cpu"
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.k = int(self.meta["config"]["sub_windows"])
        # span of the K sub-windows the model was trained on (0: the IR exposure); models
        # with image feedback take every event since the previous window
        self.recon_span_ns = int(self.meta.get("recon_span_ns", 0) or 0)
        # the longest span one reconstruction step takes (None: the span it was trained at;
        # 0: one step per window, whatever its span). Its output blurs the motion of a
        # longer span: from a reset state, 100 ms of events in one step scored visible SSIM
        # 0.475 where three steps of 33 ms scored 0.558 (docs/experiments/
        # 2026-12-04-recon-steps.md), so a window spanning more is cut into several steps
        # with the state carried, only the last running the whole pipeline
        self.recon_step_ns = self.recon_span_ns if recon_step_ns is None else int(recon_step_ns)
        self.calib = calib
        self.warnings = lag_warnings(self.meta, calib.ir_exposure_ns)
        # the rig's contrast threshold scales the reconstruction's step per event
        self.contrast_gain = set_contrast(self.model, self.meta, calib.davis_contrast)
        if calib.davis_contrast is not None and self.contrast_gain is None:
            self.warnings.append(f"the rig's davis_contrast ({calib.davis_contrast:g}) is not "
                                 f"used: {Path(model_path).name} has no recon_contrast_ref")
        w, h = calib.davis_size
        # by sub-window count (K per step): its grids live until the next window
        self._voxelizers = {self.k: WindowVoxelizer(h, w, self.k)}
        self.state: list = []
        self.reset_gap_ns = int(reset_gap_ns)
        self.last_start_ns: int | None = None
        self.resets = 0
        self._check_contract(Path(model_path))

    def _check_contract(self, path: Path) -> None:
        """One dummy window at the calibration's size: the model must take it and return
        three (1, 1, H, W) images and a state, or loading fails in one line."""
        w, h = self.calib.davis_size
        try:
            out = self(*self._empty_window())
        except Exception as exc:  # noqa: BLE001 - a foreign model fails in many ways
            raise InputFileError(f"{path}: the model does not run on a {w}x{h} window "
                                 f"with K={self.k} ({reason(exc, 160)})") from exc
        finally:
            self.reset()
        shapes = {k: v.shape for k, v in (("fused", out.fused),
                                          ("ir_deblurred", out.ir_deblurred),
                                          ("visible", out.visible))}
        bad = {k: s for k, s in shapes.items() if s != (h, w)}
        if bad:
            raise InputFileError(f"{path}: the model returns "
                                 + ", ".join(f"{k} {s[1] if len(s) > 1 else '?'}x{s[0]}"
                                             for k, s in bad.items())
                                 + f" images for a {w}x{h} input")

    def _to_device(self, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a)
        if self.device == "cpu":
            t = t.to(self.dtype)
            return t.contiguous(memory_format=torch.channels_last) \
                if self.channels_last and t.dim() == 4 else t
        # page-locked host memory: the copy runs asynchronously (DMA) with the stream
        return t.pin_memory().to(self.device, self.dtype, non_blocking=True)

    def warm_up(self, runs: int) -> None:
        """Run ``runs`` empty windows and reset: TorchScript's profiling executor optimises
        the graph on the first calls (and CUDA picks its kernels), so the first real frame
        is not an outlier."""
        for _ in range(runs):
            self(*self._empty_window())
        self.reset()

    def _empty_window(self) -> tuple:
        """Arguments of :meth:`__call__` for a dark frame and no events at the
        calibration's sizes."""
        return (np.zeros(self.calib.ir_size[::-1], np.uint16), np.zeros(0, dtype=EVENT_DTYPE),
                0, self.calib.ir_exposure_ns,
                np.linspace(0, self.calib.ir_exposure_ns // 2, self.k + 1).astype(np.int64))

    def steps_for(self, span_ns: int) -> int:
        """Reconstruction steps for sub-windows spanning ``span_ns`` (:func:`recon_steps`)."""
        return recon_steps(span_ns, self.recon_step_ns)

    def sub_windows_for(self, span_ns: int) -> int:
        """How many sub-windows a window spanning ``span_ns`` is cut into: K per step
        (the synchronizer's ``sub_windows``, the length of ``recon_edges_ns`` minus one)."""
        return self.k * self.steps_for(span_ns)

    def reset(self) -> None:
        self.state = []
        self.last_start_ns = None

    def run(self, window: ExposureWindow) -> Result:
        """One window, carrying the recurrent state from the previous one only when they
        are consecutive: a gap over ``reset_gap_ns`` (dropped windows, a pause) or a step
        back in time resets it (counted in ``resets``). The gap allowed is at least 1.5
        times the window's reconstruction span: a 10 Hz camera's frames, 100 ms apart give or
        take the trigger's jitter, are consecutive whatever ``reset_gap_ns`` says."""
        last = self.last_start_ns
        edges = window.recon_edges_ns
        gap = max(self.reset_gap_ns, int(edges[-1] - edges[0]) * 3 // 2)
        if last is None or not 0 < window.t_start_ns - last <= gap:
            self.state = []
            self.resets += 1
        res = self(window.image, window.events, window.t_start_ns, window.exposure_ns,
                   window.recon_edges_ns, grids=window.grids)
        self.last_start_ns = window.t_start_ns
        return res

    def _voxelizer(self, n_sub: int) -> WindowVoxelizer:
        if n_sub not in self._voxelizers:
            w, h = self.calib.davis_size
            self._voxelizers[n_sub] = WindowVoxelizer(h, w, n_sub)
        return self._voxelizers[n_sub]

    def window_feeder(self, recon_span_ns: int = 0, **kwargs: Any) -> WindowFeeder:
        """The node's front end for this model: sub-windows over ``recon_span_ns`` (0: the
        model's own span), K per reconstruction step (:meth:`sub_windows_for`);
        ``kwargs`` go to :class:`WindowFeeder` (``prebin``, ``max_grids``)."""
        span = recon_span_ns or self.recon_span_ns  # 0 still: the synchronizer's exposure
        n_sub = self.sub_windows_for(span or self.calib.ir_exposure_ns)
        return WindowFeeder(self.calib, n_sub, recon_span_ns=span, **kwargs)

    def __call__(self, ir_image: np.ndarray, events: np.ndarray, t_start_ns: int,
                 exposure_ns: int, recon_edges_ns: np.ndarray, warp: bool = True,
                 grids: tuple[np.ndarray, np.ndarray] | None = None) -> Result:
        """``recon_edges_ns``: the edges of K sub-windows per reconstruction step (n K + 1,
        :meth:`sub_windows_for`); the first n - 1 steps only move the state. ``grids``: the
        window's voxel grids when binned already (as packets arrived)."""
        t0 = time.perf_counter()
        ir = warp_ir_to_davis(ir_image, self.calib) if warp else ir_image
        ir = np.ascontiguousarray(ir, dtype=np.float32)
        n_sub = grids[1].shape[0] if grids is not None else len(recon_edges_ns) - 1
        if n_sub % self.k:
            raise EvifError(f"window has {n_sub} sub-windows, not a multiple of the model's "
                            f"K={self.k}")
        exp_vox, subs = grids if grids is not None else self._voxelizer(n_sub)(
            events, t_start_ns, exposure_ns, recon_edges_ns)
        t1 = time.perf_counter()
        with torch.no_grad():
            self.state, sub = step_through(self.model, self._to_device(subs[None]),
                                           self.state, self.k, self.channels_last)
            fused, deb, vis, self.state = self.model(
                self._to_device(ir[None, None]), self._to_device(exp_vox[None]), sub,
                self.state)
            fused, vis = fused.float(), vis.float()
            fused = (fused[0, 0].clamp(0, 1) * 255).round().byte().cpu().numpy()
            vis = (vis[0, 0].clamp(0, 1) * 255).round().byte().cpu().numpy()
            deb = deb[0, 0].clamp(0, 65535).round().cpu().numpy().astype(np.uint16)
        t2 = time.perf_counter()
        return Result(fused, deb, vis, {"voxelize": (t1 - t0) * 1e3, "model": (t2 - t1) * 1e3})
