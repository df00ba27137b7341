"""TorchScript export: one file the inference node loads with only torch imported."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from evif_ros.errors import ConfigError, InputFileError
from evif_ros.learning.pipeline import EvifConfig, EvifPipeline, count_parameters, with_settings
from evif_ros.learning.train import FEEDBACK_SPAN_NS, model_from_checkpoint, model_from_exported

CONTRACT = ("forward(ir (B,1,H,W) raw counts on the event-camera grid, exposure_voxel "
            "(B,10,H,W), sub_voxels (B,K,10,H,W), state List[Tensor]) -> (fused [0,1], "
            "ir_deblurred counts, visible [0,1], state)")


def example_inputs(cfg: EvifConfig, h: int = 52, w: int = 70, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ir = 7000 + 2000 * torch.rand(1, 1, h, w, generator=g)
    ev = torch.poisson(torch.full((1, cfg.in_ch, h, w), 0.3), generator=g)
    sub = torch.poisson(torch.full((1, cfg.sub_windows, cfg.in_ch, h, w), 0.2), generator=g)
    return ir, ev, sub


def script(model: EvifPipeline) -> torch.jit.ScriptModule:
    model.eval()
    model.use_fusion = True
    return torch.jit.script(model)


def max_abs_diff(model: EvifPipeline, scripted, cfg: EvifConfig) -> float:
    """Scripted vs eager on two consecutive windows (the second with carried state)."""
    ir, ev, sub = example_inputs(cfg)
    with torch.no_grad():
        a = model(ir, ev, sub, [])
        b = scripted(ir, ev, sub, [])
        a2 = model(ir, ev, sub, a[3])
        b2 = scripted(ir, ev, sub, b[3])
    diffs = [(x - y).abs().max().item() for x, y in zip(a[:3] + a2[:3], b[:3] + b2[:3])]
    # the deblurred IR is in counts: compare it relative to its range
    diffs[1] /= float(ir.max() - ir.min())
    diffs[4] /= float(ir.max() - ir.min())
    return max(diffs)


def save(model: EvifPipeline, cfg: EvifConfig, out: Path, **meta) -> dict:
    """Script, check against eager, and write with metadata (config, contract)."""
    scripted = script(model)
    diff = max_abs_diff(model, scripted, cfg)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"config": cfg.to_dict(), "contract": CONTRACT, **meta}
    if cfg.recon_feedback:  # trained on every event since the previous 30 Hz window
        meta.setdefault("recon_span_ns", FEEDBACK_SPAN_NS)
    torch.jit.save(scripted, str(out), _extra_files={"evif.json": json.dumps(meta)})
    return {"parameters": count_parameters(model), "bytes": out.stat().st_size,
            "max_diff": diff}


def export(checkpoint: Path, out: Path, meta: dict | None = None, **settings) -> dict:
    """``settings``: EvifConfig fields that own no weights to change on the way (e.g.
    ``motion_curved=True``, ``motion_lag=0.4``; ``pipeline.with_settings``); ``meta``:
    more metadata (a rig's thermal lag in ms, which the runtime checks against the rig)."""
    model, cfg, ck = model_from_checkpoint(checkpoint)
    if settings:
        try:
            model, cfg = with_settings(model, cfg, **settings)
        except ConfigError as exc:
            raise ConfigError(f"{checkpoint}: {exc}") from exc
    return save(model, cfg, out, stage=ck["stage"], iter=ck["iter"], **(meta or {}))


def rescript(model_file: Path, out: Path, meta: dict | None = None, **settings) -> dict:
    """Script an exported file's own weights again with this code, keeping its metadata:
    for files whose scripted code an older torch cannot load (see ``layers.up2x``), or to
    change settings that own no weights (``settings``, as :func:`export`; a rig's thermal
    lag). ``max_diff_old``: this code's eager model, before any change, against the old
    file on the example inputs."""
    model, cfg, old_meta, old = model_from_exported(model_file)
    model.eval()
    diff_old = max_abs_diff(model, old, cfg)
    if diff_old > 1e-5:
        raise InputFileError(f"{model_file}: this code's model computes something else "
                             f"(max |diff| {diff_old:.2e} on the example inputs)")
    if settings:
        try:
            model, cfg = with_settings(model, cfg, **settings)
        except ConfigError as exc:
            raise ConfigError(f"{model_file}: {exc}") from exc
    kept = {k: v for k, v in old_meta.items() if k not in ("config", "contract")}
    info = save(model, cfg, out, **{**kept, **(meta or {})})
    info["max_diff_old"] = diff_old
    return info
