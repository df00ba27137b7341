"""What an APS frame's own motion blur leaves of a perfect structure score.

An APS frame integrates its whole exposure (104 ms in ``cups``), a reconstruction is an
instant at mid-exposure; on fast motion the two differ even when the reconstruction is
perfect. The blur-only ceiling of a frame is the reconstruction scored against itself
blurred along the camera's path during that exposure, which the exposure's own events give
(the event-guided deconvolution's estimate, ``learning.motion``: each time bin's shift from
the middle one, a quadratic path through them). A frame scoring far below its ceiling lost
structure the APS still shows; near its ceiling, the reference's blur is what is missing.
The same blur applied to the reconstruction and scored against the APS says how well the
content matches once the blur is taken out of the comparison.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from evif_ros.learning.motion import (
    MotionDeconv,
    bin_shifts,
    centred_spectrum,
    path_at,
    quadratic_coefficients,
)
from evif_ros.runtime.voxel import WINDOW_BINS, polarity_voxel_grid

PATH_TAPS = 41  # copies along the path: below a pixel apart for paths up to 40 px


def exposure_path(events: np.ndarray, start_ns: int, end_ns: int, height: int, width: int,
                  taps: int = PATH_TAPS) -> np.ndarray:
    """(taps, 2) positions (dy, dx; px) of the scene's motion at ``taps`` equally spaced
    instants from the exposure's start to its end, relative to mid-exposure, from the
    time-sorted ``events`` inside it; zeros where they show no motion (too few events, or a
    path that does not make them sharper than none: the deconvolution's own test) or the
    exposure has no length."""
    if end_ns <= start_ns:  # a frame stamped at one instant (a bag's image_raw): no motion
        return np.zeros((taps, 2))
    vox = polarity_voxel_grid(events, WINDOW_BINS, start_ns, end_ns, height, width)
    if not vox.any():
        return np.zeros((taps, 2))
    md = MotionDeconv(curved=True)  # the shipped estimate's pooling and reach
    with torch.no_grad():
        v = torch.log1p(torch.from_numpy(vox)).unsqueeze(0)
        if not bool(md.estimate(v)[2][0]):
            return np.zeros((taps, 2))
        act = md.activity(v)
        shifts = bin_shifts(centred_spectrum(act), act.shape[2], act.shape[3], md.bin_reach)
        times = torch.linspace(-0.5, 0.5, taps)
        return path_at(quadratic_coefficients(shifts * md.pool), times)[0].double().numpy()


def blur_along(image: np.ndarray, path: np.ndarray) -> np.ndarray:
    """The mean of copies of ``image`` (H, W) shifted to each of ``path``'s (T, 2) positions
    (bilinear, the border reflected), in the image's dtype (8-bit rounded)."""
    img = image.astype(np.float32)
    acc = np.zeros_like(img)
    h, w = img.shape
    for dy, dx in path:
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        acc += cv2.warpAffine(img, shift, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
    acc /= len(path)
    if image.dtype == np.uint8:
        return np.clip(np.round(acc), 0, 255).astype(np.uint8)
    return acc.astype(image.dtype)
