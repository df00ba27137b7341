"""The thermal camera's pose in the event camera's frame and the delay of its frames.

The two cameras do not expose together (APS frames run free, thermal frames on their
trigger, stamped on arrival by another clock), so no pair of frames shows the board at one
instant. Instead the board's path is followed through the APS frames (a spline through
its poses, event clock) and each thermal frame is compared with where the board was at
``host stamp + delay``: for a given delay the thermal camera's pose is the PnP solution of
all thermal corners against the board's interpolated 3-D corners in the DAVIS frame, and
the delay is the one whose pose reprojects best (kalibr estimates its time offset the same
way, with a continuous-time trajectory). The search starts from the cross-correlation of
the board's speeds, which do not depend on the unknown pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import CubicSpline
from scipy.optimize import minimize_scalar
from scipy.spatial.transform import Rotation, RotationSpline

from evif_ros.errors import ConfigError
from evif_ros.rigcal.intrinsics import Views
from evif_ros.runtime.camera_model import CameraModel
from evif_ros.runtime.target import Checkerboard

MAX_GAP_NS = 80_000_000  # interpolate the board's path only between detections this close


@dataclass
class BoardPath:
    """Board poses seen by one camera: ``R(t) P + t(t)`` in that camera's frame."""

    times_ns: np.ndarray
    rotations: Rotation
    translations: np.ndarray  # (N, 3)

    @staticmethod
    def from_views(views: Views, cam: CameraModel, board: Checkerboard) -> "BoardPath":
        obj = board.object_points()
        rv, tv = [], []
        for c in views.corners:
            ok, r, t = cv2.solvePnP(obj, c, cam.K, cam.dist, flags=cv2.SOLVEPNP_ITERATIVE)
            if not ok:
                raise ConfigError(f"{views.camera}: a view of the board has no pose")
            rv.append(r.ravel())
            tv.append(t.ravel())
        return BoardPath(views.times_ns, Rotation.from_rotvec(np.array(rv)), np.array(tv))

    def speeds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, linear speed m/s, angular speed rad/s) between consecutive poses less than
        ``MAX_GAP_NS`` apart; both speeds are the same in either camera's frame."""
        dt = np.diff(self.times_ns) * 1e-9
        ok = np.diff(self.times_ns) < MAX_GAP_NS
        lin = np.linalg.norm(np.diff(self.translations, axis=0), axis=1) / dt
        rel = self.rotations[1:] * self.rotations[:-1].inv()
        ang = rel.magnitude() / dt
        mid = (self.times_ns[1:] + self.times_ns[:-1]) // 2
        return mid[ok], lin[ok], ang[ok]


class PathSpline:
    """The board's pose at any time inside the segments of close detections."""

    def __init__(self, path: BoardPath):
        t = path.times_ns
        self.t0 = int(t[0])
        self.ts = (t - self.t0) * 1e-9
        self.pos = CubicSpline(self.ts, path.translations)
        self.rot = RotationSpline(self.ts, path.rotations)
        self.gap_ok = np.diff(t) < MAX_GAP_NS

    def covered(self, t_ns: np.ndarray) -> np.ndarray:
        s = (np.asarray(t_ns) - self.t0) * 1e-9
        i = np.searchsorted(self.ts, s) - 1
        inside = (i >= 0) & (i < len(self.ts) - 1)
        ok = np.zeros(len(s), bool)
        ok[inside] = self.gap_ok[i[inside]]
        return ok

    def corners_3d(self, t_ns: np.ndarray, obj: np.ndarray) -> np.ndarray:
        """(N, M, 3) board corners in the camera frame at the times ``t_ns``."""
        s = (np.asarray(t_ns) - self.t0) * 1e-9
        R = self.rot(s).as_matrix()
        return np.einsum("nij,mj->nmi", R, obj) + self.pos(s)[:, None, :]


def coarse_delay(davis: BoardPath, ir: BoardPath, max_delay_ns: int = 500_000_000,
                 step_ns: int = 1_000_000) -> float:
    """Delay (ns) that best lines up the board's speeds: event-clock time of a thermal
    frame's view = host stamp + delay. Normalised cross-correlation over a grid."""
    td, ld, ad = davis.speeds()
    ti, li, ai = ir.speeds()
    if len(td) < 5 or len(ti) < 5:
        raise ConfigError("too few consecutive views of the board to follow its motion "
                          "(hold it in view of both cameras while moving it)")
    sig_d = ld / max(ld.std(), 1e-9) + ad / max(ad.std(), 1e-9)
    sig_i = li / max(li.std(), 1e-9) + ai / max(ai.std(), 1e-9)
    best, best_score = 0.0, -np.inf
    for d in np.arange(-max_delay_ns, max_delay_ns + 1, step_ns):
        tq = ti + d
        inside = (tq > td[0]) & (tq < td[-1])
        if inside.sum() < max(5, len(ti) // 3):
            continue
        a = np.interp(tq[inside], td, sig_d)
        b = sig_i[inside]
        if a.std() < 1e-9 or b.std() < 1e-9:
            continue
        score = float(np.corrcoef(a, b)[0, 1])
        if score > best_score:
            best, best_score = float(d), score
    if not np.isfinite(best_score):
        raise ConfigError("the APS and thermal views of the board never overlap in time "
                          f"within +-{max_delay_ns / 1e9:.1f} s")
    return best


@dataclass
class ThermalPose:
    R: np.ndarray  # X_ir = R X_davis + t
    t: np.ndarray
    delay_ns: float  # event-clock time of a thermal frame's view = host stamp + delay
    rms_px: float  # thermal corners against the DAVIS-tracked board through (R, t)
    residuals: np.ndarray  # (N, M, 2) thermal px, of the frames used
    used: np.ndarray  # indices into the thermal views
    delay_curve: tuple[np.ndarray, np.ndarray]  # delays searched (ns) and their RMS


def _pnp(points: np.ndarray, uv: np.ndarray, cam: CameraModel, guess=None
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if guess is None:
        ok, r, t = cv2.solvePnP(points, uv, cam.K, cam.dist, flags=cv2.SOLVEPNP_EPNP)
        ok, r, t = cv2.solvePnP(points, uv, cam.K, cam.dist, r, t, True,
                                flags=cv2.SOLVEPNP_ITERATIVE)
    else:
        ok, r, t = cv2.solvePnP(points, uv, cam.K, cam.dist, guess[0].copy(), guess[1].copy(),
                                True, flags=cv2.SOLVEPNP_ITERATIVE)
    proj = cv2.projectPoints(points, r, t, cam.K, cam.dist)[0].reshape(-1, 2)
    return r, t, proj - uv


def thermal_pose(davis_path: BoardPath, ir_views: Views, ir_cam: CameraModel,
                 board: Checkerboard, delay0_ns: float, search_ns: float = 15_000_000
                 ) -> ThermalPose:
    """The thermal camera's pose and its frames' delay, refined around ``delay0_ns``."""
    spline = PathSpline(davis_path)
    obj = board.object_points()
    m = obj.shape[0]

    def fit(delay: float, guess=None):
        tq = ir_views.times_ns + delay
        use = np.flatnonzero(spline.covered(tq))
        if len(use) < 5:
            return None
        pts = spline.corners_3d(tq[use], obj).reshape(-1, 3)
        uv = ir_views.corners[use].reshape(-1, 2)
        r, t, res = _pnp(pts, uv, ir_cam, guess)
        return r, t, res.reshape(len(use), m, 2), use

    first = fit(delay0_ns)
    if first is None:
        raise ConfigError("too few thermal views fall inside the APS views' path")
    guess = (first[0], first[1])

    def cost(delay: float) -> float:
        out = fit(delay, guess)
        return float("inf") if out is None else float(np.sqrt(np.mean(out[2] ** 2) * 2))

    grid = delay0_ns + np.linspace(-search_ns, search_ns, 31)
    costs = np.array([cost(d) for d in grid])
    i = int(np.argmin(costs))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best = minimize_scalar(cost, bounds=(lo, hi), method="bounded",
                           options={"xatol": 20_000.0})  # 20 us
    delay = float(best.x)
    r, t, res, use = fit(delay, guess)
    # once more without the frames whose corners stand out (a bad detection, a frame
    # blurred beyond the spline's reach)
    per = np.sqrt(np.mean(np.sum(res ** 2, 2), 1))
    keep = per <= max(3.0 * np.median(per), 0.5)
    if not keep.all() and keep.sum() >= 5:
        tq = ir_views.times_ns[use[keep]] + delay
        pts = spline.corners_3d(tq, obj).reshape(-1, 3)
        r, t, res2 = _pnp(pts, ir_views.corners[use[keep]].reshape(-1, 2), ir_cam, (r, t))
        res, use = res2.reshape(-1, m, 2), use[keep]
    R, _ = cv2.Rodrigues(r)
    rms = float(np.sqrt(np.mean(np.sum(res ** 2, 2))))
    return ThermalPose(R, t.ravel(), delay, rms, res, use, (grid, costs))
