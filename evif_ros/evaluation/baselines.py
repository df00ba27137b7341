"""Non-learned baselines (numpy only).

:func:`event_integration`: direct integration of events with a leak (Scheerlinck et al.'s
high-pass filter without frames): ``L(x) = sum_i s_i C exp(-(t_ref - t_i) / tau)``, a
log-intensity *change* image, stretched to [0, 1] for comparison.
"""

from __future__ import annotations

import numpy as np


def event_integration(events: np.ndarray, t_ref_ns: int, height: int, width: int,
                      contrast: float = 0.25, tau_ns: float = 30e6) -> np.ndarray:
    """Leaky integration of the events before ``t_ref_ns``; returns (H, W) in [0, 1]."""
    ev = events[events["t"] < t_ref_ns]
    pix = ev["y"].astype(np.intp) * width + ev["x"]
    w = (ev["p"] * 2.0 - 1.0) * contrast * np.exp(-(t_ref_ns - ev["t"]) / tau_ns)
    log_img = np.bincount(pix, weights=w, minlength=height * width).reshape(height, width)
    lo, hi = np.percentile(log_img, [1, 99])
    return np.clip((log_img - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)
