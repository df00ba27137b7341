"""The event sensor's contrast threshold, measured from its own APS frames.

An event camera pixel fires each time its log intensity moves by the contrast threshold C
(log units) since its last event, so between two APS frames the net event count of a pixel
(ON minus OFF) is the change of its log intensity divided by C. The APS frames measure that
change directly (a DAVIS APS reading is linear in intensity), so C is the slope of the
line fitted to ``log I1 - log I0`` against the net count, over the pixels where both frames
are well exposed (its intercept takes up an exposure time that changed between them).
Both maps are smoothed first (a Gaussian of ``sigma`` px): the APS frames are
motion-blurred and a moving edge's events land a little apart from where its blurred
reading changed; over a few pixels both agree.

Why it matters: the reconstruction moves its kept image by the events (``ReconNet``'s
advection), and how far one event should move it is C. The network learned a step for the
thresholds it was trained on; told the rig's C (``davis_contrast`` in the rig calibration),
the runtime scales the step by ``C / recon_contrast_ref`` (the model file's reference).

Caveats, each lowering or raising the figure by a few per cent: ON and OFF thresholds are
taken as one; a refractory period or a saturated event bus loses events (C comes out
high); a recording that holds only the events inside each exposure (as eSL-Net's ``cups``
does) misses those of the gaps between them (C comes out high by the gap's share).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from evif_ros.errors import InputFileError
from evif_ros.runtime.voxel import voxel_grid

MIN_CORRELATION = 0.5  # a pair whose count and log change agree less says little about C


@dataclass(frozen=True)
class ContrastEstimate:
    contrast: float  # the median of the informative pairs' slopes (log units per event)
    slopes: np.ndarray  # (P,) per pair of consecutive APS frames
    correlations: np.ndarray  # (P,) of the smoothed log change with the smoothed net count
    used: np.ndarray  # (P,) bool: the pairs the median is over

    def summary(self) -> str:
        s = self.slopes[self.used]
        return (f"contrast threshold {self.contrast:.3f} log units (median of {s.size} of "
                f"{self.slopes.size} APS frame pairs; interquartile "
                f"{np.percentile(s, 25):.3f}-{np.percentile(s, 75):.3f})")


def pair_slope(image0: np.ndarray, image1: np.ndarray, counts: np.ndarray,
               sigma: float = 3.0, border: int = 10, lo: int = 8, hi: int = 250
               ) -> tuple[float, float]:
    """``(slope, correlation)`` of the smoothed log change between two 8-bit APS frames
    against the smoothed net event count between them, over pixels exposed within
    ``[lo, hi]`` in both frames and ``border`` px from the edge; NaN without such pixels."""
    i0, i1 = image0.astype(np.float64), image1.astype(np.float64)
    change = np.log(i1 + 1.0) - np.log(i0 + 1.0)
    g = (lambda a: cv2.GaussianBlur(a, (0, 0), sigma)) if sigma > 0 else (lambda a: a)
    d, n = g(change), g(counts)
    ok = (i0 >= lo) & (i0 <= hi) & (i1 >= lo) & (i1 <= hi)
    if border:
        ok[:border], ok[-border:], ok[:, :border], ok[:, -border:] = False, False, False, False
    d, n = d[ok], n[ok]
    if d.size < 2 or d.std() == 0.0 or n.std() == 0.0:
        return float("nan"), float("nan")
    # with an intercept: an exposure time that changed between the frames (auto-exposure)
    # shifts every pixel's log change alike, which no event reports
    dn, nc = d - d.mean(), n - n.mean()
    return float(dn @ nc) / float(nc @ nc), float(np.corrcoef(d, n)[0, 1])


def estimate_contrast(events: np.ndarray, frames: Sequence[tuple[np.ndarray, int]],
                      sigma: float = 3.0, source: str = "recording") -> ContrastEstimate:
    """C from time-sorted ``events`` (``x``, ``y``, ``t``, ``p``) and APS ``frames``
    ``[(image (H, W) uint8, mid-exposure ns), ...]`` in time order: each consecutive pair
    with the events between their mid-exposures. InputFileError naming ``source`` when no
    pair is informative (too little motion, or frames and events that do not match)."""
    if len(frames) < 2:
        raise InputFileError(f"{source}: needs at least 2 APS frames to measure the contrast "
                             f"threshold, has {len(frames)}")
    h, w = frames[0][0].shape
    slopes, corrs = [], []
    for (im0, t0), (im1, t1) in zip(frames[:-1], frames[1:]):
        if t1 <= t0:  # two frames at one instant: no events between them
            s, r = float("nan"), float("nan")
        else:  # the net count, ON minus OFF, per pixel: a one-bin voxel grid
            s, r = pair_slope(im0, im1, voxel_grid(events, 1, t0, t1, h, w)[0], sigma)
        slopes.append(s)
        corrs.append(r)
    slopes_a, corrs_a = np.array(slopes), np.array(corrs)
    used = np.isfinite(slopes_a) & (corrs_a >= MIN_CORRELATION) & (slopes_a > 0)
    if not used.any():
        best = np.nanmax(corrs_a) if np.isfinite(corrs_a).any() else float("nan")
        raise InputFileError(f"{source}: no pair of APS frames whose change the events "
                             f"explain (best correlation {best:.2f}, needs "
                             f"{MIN_CORRELATION}): record with the camera moving")
    return ContrastEstimate(float(np.median(slopes_a[used])), slopes_a, corrs_a, used)
