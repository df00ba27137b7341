"""One camera's lens from its views of the board: detection over a recording, coverage as
image_pipeline's ``camera_calibration`` measures it (X, Y, size, skew), view selection and
OpenCV's ``calibrateCamera`` (plumb_bob)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

from evif_ros.errors import ConfigError
from evif_ros.rigcal.detect import detect
from evif_ros.runtime.camera_model import CameraModel
from evif_ros.runtime.target import Checkerboard

# the spread of views a good calibration needs (camera_calibration asks about the same):
# the board over 50 % of the width and height, its apparent size varied by 20 % of the
# image, and tilted by 30 % of the measure's range; a calibration is refused below half
COVERAGE_GOALS = {"X": 0.5, "Y": 0.5, "size": 0.2, "skew": 0.3}
MIN_VIEWS = 10


@dataclass
class Views:
    """The frames of one camera in which the board was found."""

    camera: str
    size: tuple[int, int]  # (width, height)
    times_ns: np.ndarray  # (N,)
    corners: np.ndarray  # (N, M, 2)
    frames: int  # frames searched

    def motion_px(self) -> np.ndarray:
        """(N,) how far the corners move per frame around each view (RMS px, the larger of
        the two neighbours' distances; inf without a detected neighbour frame): a measure
        of its motion blur."""
        n = len(self.times_ns)
        out = np.full(n, np.inf)
        if n < 2:
            return out
        period = np.median(np.diff(self.times_ns))
        step = np.sqrt(np.mean(np.sum(np.diff(self.corners, axis=0) ** 2, 2), 1))
        close = np.diff(self.times_ns) < 1.5 * period
        step = np.where(close, step, np.inf)
        prev = np.concatenate([[np.inf], step])
        nxt = np.concatenate([step, [np.inf]])
        both = np.maximum(np.where(np.isfinite(prev), prev, nxt),
                          np.where(np.isfinite(nxt), nxt, prev))
        return both

    def __len__(self) -> int:
        return len(self.times_ns)


def find_views(frames: list[tuple[int, np.ndarray]], board: Checkerboard, camera: str,
               progress: bool = True) -> Views:
    times, corners = [], []
    for t, img in tqdm(frames, desc=f"find the board ({camera})", unit="frame",
                       disable=not progress):
        c = detect(img, board)
        if c is not None:
            times.append(t)
            corners.append(c)
    h, w = frames[0][1].shape[:2]
    m = board.cols * board.rows
    return Views(camera, (w, h), np.asarray(times, np.int64),
                 np.asarray(corners, np.float64).reshape(-1, m, 2), len(frames))


def view_measures(corners: np.ndarray, size: tuple[int, int], board: Checkerboard
                  ) -> np.ndarray:
    """(N, 4) per view: X, Y (the board's centre over the image, 0-1), size (the square
    root of its area over the image's) and skew (how far its outline's corner angle is
    from 90 degrees, 0-1), as camera_calibration defines them."""
    w, h = size
    grid = corners.reshape(len(corners), board.rows, board.cols, 2)
    outline = np.stack([grid[:, 0, 0], grid[:, 0, -1], grid[:, -1, -1], grid[:, -1, 0]], 1)
    x, y = outline[..., 0], outline[..., 1]
    area = 0.5 * np.abs(np.sum(x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y, axis=1))
    a, b = outline[:, 1] - outline[:, 0], outline[:, 3] - outline[:, 0]
    cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    skew = np.minimum(1.0, 2.0 * np.abs(np.pi / 2 - np.arccos(np.clip(cos, -1, 1))))
    centre = corners.mean(1)
    return np.column_stack([centre[:, 0] / w, centre[:, 1] / h, np.sqrt(area / (w * h)), skew])


def coverage(views: Views, board: Checkerboard) -> dict[str, float]:
    """Range of each measure over the views (0-1), for the progress bars of the report."""
    if len(views) == 0:
        return dict.fromkeys(COVERAGE_GOALS, 0.0)
    m = view_measures(views.corners, views.size, board)
    return {k: float(np.ptp(m[:, i])) for i, k in enumerate(COVERAGE_GOALS)}


def check_views(views: Views, board: Checkerboard, where: str) -> None:
    """ConfigError in one line when the views are too few or too alike to calibrate."""
    if len(views) < MIN_VIEWS:
        raise ConfigError(f"{where}: the board was found in {len(views)} of {views.frames} "
                          f"{views.camera} frames; a calibration needs at least {MIN_VIEWS} "
                          "(move the board through the whole view, slowly)")
    cov = coverage(views, board)
    short = [f"{k} {v:.2f} of {COVERAGE_GOALS[k]:.2f}" for k, v in cov.items()
             if v < 0.5 * COVERAGE_GOALS[k]]
    if short:
        raise ConfigError(f"{where}: the {views.camera} views are too alike ({', '.join(short)}"
                          "): show the board in every part of the image, near and far, "
                          "tilted")


def select(views: Views, board: Checkerboard, n: int) -> np.ndarray:
    """Indices of at most ``n`` views spread over the measures (farthest-point sampling)
    among the sharper ones: hundreds of near-identical frames of a slow hand add time, not
    information, and a blurred view pulls the lens towards its blur (the thermal camera's
    long exposure makes most of its views blurred)."""
    motion = views.motion_px()
    sharp = np.flatnonzero(motion <= max(float(np.quantile(motion, 0.5)), 1.0))
    pool = sharp if len(sharp) >= 2 * MIN_VIEWS else np.argsort(motion)[:2 * MIN_VIEWS]
    m = view_measures(views.corners[pool], views.size, board)
    if len(m) <= n:
        return np.sort(pool)
    chosen = [int(np.argmin(np.abs(m[:, 0] - 0.5) + np.abs(m[:, 1] - 0.5)))]
    dist = np.linalg.norm(m - m[chosen[0]], axis=1)
    while len(chosen) < n:
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(m - m[i], axis=1))
    return np.sort(pool[np.asarray(chosen)])


@dataclass
class LensFit:
    model: CameraModel
    rms_px: float  # reprojection error over the views used
    used: np.ndarray  # indices into the views
    per_view_px: np.ndarray  # RMS per used view


def calibrate_lens(views: Views, board: Checkerboard, max_views: int = 150) -> LensFit:
    """Intrinsics and plumb_bob distortion (k1, k2, p1, p2; k3 held at 0, as
    camera_calibration does by default: with the board rarely in the image corners k3 trades
    off against the focal length); views whose error stands out (blur, a bad detection)
    are dropped and the fit repeated once."""
    used = select(views, board, max_views)
    obj = board.object_points().astype(np.float32)
    for _ in range(2):
        rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(
            [obj] * len(used), [views.corners[i].astype(np.float32) for i in used],
            views.size, None, None, flags=cv2.CALIB_FIX_K3)
        per_view = np.array([
            np.sqrt(np.mean(np.sum((cv2.projectPoints(obj, r, t, K, dist)[0].reshape(-1, 2)
                                    - views.corners[i]) ** 2, 1)))
            for i, r, t in zip(used, rvecs, tvecs)])
        keep = per_view <= max(3.0 * np.median(per_view), 0.3)
        if keep.all() or keep.sum() < MIN_VIEWS:
            break
        used = used[keep]
    model = CameraModel(views.size[0], views.size[1], K, dist.ravel()[:5])
    return LensFit(model, float(rms), used, per_view)
