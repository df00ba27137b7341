"""The exported model file (DESIGN.md's TorchScript contract), loaded with torch alone: the
inference path never imports the model's Python code, the trainer or the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from evif_ros.errors import InputFileError, reason


def load_exported(path: Path, device: str = "cpu"):
    """Load an exported model and its metadata; InputFileError if missing or corrupt, or
    if the metadata lacks what the runtime needs (``config.sub_windows``)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: model file not found")
    extra = {"evif.json": ""}
    try:
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        meta = json.loads(extra["evif.json"] or "{}")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and others
        raise InputFileError(f"{path}: not a loadable TorchScript model "
                             f"({reason(exc, 120)})") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise InputFileError(f"{path}: no evif.json metadata (not exported by `evif export`)")
    k = meta["config"].get("sub_windows")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputFileError(f"{path}: evif.json config.sub_windows must be a positive "
                             f"integer, got {k!r}")
    module.eval()
    return module, meta


def contrast_gain(meta: dict, contrast: float | None) -> float | None:
    """The factor on the reconstruction's event step for a sensor of contrast threshold
    ``contrast`` (log units): ``contrast / recon_contrast_ref``, the file's reference, the
    threshold its learned step is right for (``scripts/contrast_ref.py`` fits it). None when
    either is unknown: the step stays as trained."""
    ref = meta.get("recon_contrast_ref")
    if contrast is None or not isinstance(ref, (int, float)) or ref <= 0:
        return None
    return float(contrast) / float(ref)


def set_contrast(module, meta: dict, contrast: float | None) -> float | None:
    """Scale a loaded file's advection step to a sensor of ``contrast`` (one event moves the
    kept image by the sensor's threshold, so the step is proportional to it; see
    ``evif_ros/rigcal/contrast.py``); returns the gain, None when nothing changed (no
    contrast given, a file without a reference or without advection). Call once per
    loaded module: the gain multiplies the file's own step."""
    gain = contrast_gain(meta, contrast)
    recon = getattr(module, "recon", None)
    if gain is None or recon is None or not getattr(recon, "advect", False):
        return None
    recon.step_max = float(recon.step_max) * gain  # a TorchScript attribute, not a constant
    return gain
