"""How late the event sensor reports what its own APS frames show, measured without a model.

A moving edge fires events where it is; the APS frame shows it where it was during the
exposure. For each candidate offset ``d`` the event count map of a window centred on each
frame's mid-exposure plus ``d`` (``±window_ns``, symmetric, so an estimate has no lag of its
own) is correlated with the frame's gradient magnitude (the structure score's,
:func:`evif_ros.evaluation.structure.gradient_magnitude`); the mean over frames peaks where
the events and the frame show the same instant. A peak at ``d > 0`` means the events come
that much late: the pixels' latency (a DVS photoreceptor slows down in dim light, to
milliseconds and more) or a frame-timestamp convention, which cannot be told apart from one
recording and need the same correction: a reconstruction for an instant ``t`` takes the
events up to ``t + d``.

On the simulated rig (ideal pixels) the peak lies at 0 within a few ms; with a 10 ms
photoreceptor time constant it moves to about +10 ms (``test_latency.py``). On ``cups``
(real DAVIS346) it lies at about +22 ms, where EVIF and event integration score best too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from evif_ros.errors import InputFileError
from evif_ros.evaluation.structure import BORDER_PX, gradient_magnitude
from evif_ros.runtime.voxel import polarity_voxel_grid

WINDOW_NS = 20_000_000  # half-width of the event window: a few px of motion at hand speeds
OFFSETS_NS = np.arange(-50, 51, 2.5) * 1e6  # the range searched
SIGMA_PX = 2.0  # the count map's smoothing (events land beside the blurred edge)
MIN_FRAMES = 3
MAX_FRAMES = 200  # spread over a long recording: enough for a peak, seconds of work
# a peak says something only where the events do show the frames' edges and the curve
# rises to it (a static or nearly empty recording gives a flat curve)
MIN_PEAK_CORRELATION = 0.2
MIN_PROMINENCE = 0.01


@dataclass(frozen=True)
class LatencyEstimate:
    latency_ns: int  # the peak, refined by a parabola through its neighbours
    offsets_ns: np.ndarray  # (D,) searched
    correlations: np.ndarray  # (D,) mean over frames
    frames: int  # frames used

    @property
    def reliable(self) -> bool:
        """A peak inside the searched range, high and prominent enough to be one."""
        c = self.correlations
        i = int(np.argmax(c))
        return (0 < i < c.size - 1 and c[i] >= MIN_PEAK_CORRELATION
                and c[i] - c.min() >= MIN_PROMINENCE)

    def summary(self) -> str:
        i = int(np.argmax(self.correlations))
        return (f"events {self.latency_ns * 1e-6:+.1f} ms behind the APS frames (correlation "
                f"{self.correlations[i]:.3f} at the peak, {self.correlations[self._zero]:.3f} "
                f"at 0; {self.frames} frames)"
                + ("" if self.reliable else "; no clear peak: the events do not show the "
                   "frames' edges well enough (a static camera, too few events)"))

    @property
    def _zero(self) -> int:
        return int(np.argmin(np.abs(self.offsets_ns)))


def edge_correlations(events: np.ndarray, frames: Sequence[tuple[np.ndarray, int]],
                      height: int, width: int, offsets_ns: np.ndarray = OFFSETS_NS,
                      window_ns: int = WINDOW_NS) -> np.ndarray:
    """(F, D): per frame ``(image, mid_ns)`` and offset, the Pearson correlation of the
    smoothed event count map around ``mid + offset`` with the frame's gradient magnitude
    (NaN where no event fell in the window)."""
    b = BORDER_PX
    out = np.full((len(frames), len(offsets_ns)), np.nan)
    for i, (image, mid) in enumerate(frames):
        g = gradient_magnitude(image)[b:-b, b:-b].ravel().astype(np.float64)
        g -= g.mean()
        for j, d in enumerate(offsets_ns):
            c = int(mid + d)
            # events per pixel, both polarities
            m = polarity_voxel_grid(events, 1, c - window_ns, c + window_ns, height,
                                    width).sum(0)
            if not m.any():
                continue
            m = cv2.GaussianBlur(m, (0, 0), SIGMA_PX)[b:-b, b:-b].ravel().astype(np.float64)
            m -= m.mean()
            den = np.sqrt((m * m).sum() * (g * g).sum())
            out[i, j] = (m * g).sum() / den if den > 0 else np.nan
    return out


def estimate_latency(events: np.ndarray, frames: Sequence[tuple[np.ndarray, int]],
                     height: int, width: int, source: str = "recording",
                     offsets_ns: np.ndarray = OFFSETS_NS,
                     window_ns: int = WINDOW_NS) -> LatencyEstimate:
    """The events' delay behind the APS frames ``(image, mid_ns)``. Frames whose windows
    reach past the recording's events at some offset (its ends) are left out, and so are
    windows without events; too few frames left: :class:`InputFileError`. Of a long
    recording, ``MAX_FRAMES`` spread over it are used."""
    t = events["t"]
    if t.size:
        reach = (offsets_ns[0] - window_ns, offsets_ns[-1] + window_ns)
        frames = [(im, mid) for im, mid in frames
                  if mid + reach[0] >= t[0] and mid + reach[1] <= t[-1]]
    if len(frames) > MAX_FRAMES:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, MAX_FRAMES).round()
                  .astype(int)]
    corr = edge_correlations(events, frames, height, width, offsets_ns, window_ns)
    full = np.isfinite(corr).all(1) if len(frames) else np.zeros(0, bool)
    if full.sum() < MIN_FRAMES:
        raise InputFileError(f"{source}: {int(full.sum())} APS frames with events "
                             f"{(abs(offsets_ns[0]) + window_ns) * 1e-6:g} ms either side; "
                             f"the event latency needs at least {MIN_FRAMES}")
    mean = corr[full].mean(0)
    i = int(np.argmax(mean))
    peak = float(offsets_ns[i])
    if 0 < i < len(mean) - 1:  # a parabola through the peak and its neighbours
        y0, y1, y2 = mean[i - 1:i + 2]
        den = y0 - 2 * y1 + y2
        if den < 0:
            step = float(offsets_ns[i + 1] - offsets_ns[i])
            peak += 0.5 * (y0 - y2) / den * step
    return LatencyEstimate(int(round(peak)), np.asarray(offsets_ns, float), mean,
                           int(full.sum()))
