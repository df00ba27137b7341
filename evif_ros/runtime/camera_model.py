"""Lens models and the geometry between the two cameras (ROS-free).

A :class:`CameraModel` is OpenCV's pinhole camera with the ``plumb_bob`` distortion
(k1, k2, p1, p2, k3), the model ROS ``sensor_msgs/CameraInfo`` and ``camera_calibration``
use. :class:`RigGeometry` adds the thermal camera's pose in the event camera's frame
(``X_ir = R X_davis + t``, metres) and the working distance at which the thermal image is
mapped onto the event camera's pixels: two cameras a few centimetres apart see a scene
at one depth without parallax only, so the mapping is exact on the plane ``z =
working_distance_m`` of the event camera and off by ``f * baseline * |1/Z - 1/Z_w|``
pixels elsewhere (5 cm baseline, f = 250 px: 0.6 px between 5 m and infinity at Z_w = 10 m).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from evif_ros.errors import ConfigError


@dataclass(frozen=True)
class CameraModel:
    width: int
    height: int
    K: np.ndarray  # (3, 3)
    dist: np.ndarray  # (5,) k1 k2 p1 p2 k3

    @staticmethod
    def from_dict(d: dict, where: str) -> "CameraModel":
        try:
            K = np.asarray(d["K"], np.float64)
            dist = np.asarray(d.get("dist", [0.0] * 5), np.float64).ravel()
            w, h = int(d["width"]), int(d["height"])
        except (TypeError, KeyError, ValueError) as exc:
            raise ConfigError(f"{where}: needs width, height, K (3x3) and dist "
                              f"[k1, k2, p1, p2, k3] ({exc})") from None
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ConfigError(f"{where}: K must be a finite 3x3 matrix with positive focal "
                              "lengths")
        if dist.size not in (4, 5, 8) or not np.all(np.isfinite(dist)):
            raise ConfigError(f"{where}: dist must hold 4, 5 or 8 finite coefficients")
        return CameraModel(w, h, K, dist)

    def to_dict(self) -> dict:
        return {"width": self.width, "height": self.height,
                "K": [[float(v) for v in row] for row in self.K],
                "dist": [float(v) for v in self.dist]}

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) points in this camera's frame -> (N, 2) distorted pixel coordinates."""
        pts = np.ascontiguousarray(points, np.float64).reshape(-1, 1, 3)
        uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), self.K, self.dist)
        return uv.reshape(-1, 2)

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """(N, 2) distorted pixels -> (N, 3) rays ``(x, y, 1)`` in the camera frame."""
        pts = np.ascontiguousarray(uv, np.float64).reshape(-1, 1, 2)
        # iterate well past OpenCV's default 5 steps: strong barrel distortion at the
        # corners of a wide lens needs ~20 to reach 1e-3 px
        xy = cv2.undistortPoints(pts, self.K, self.dist, None, None, None,
                                 (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10))
        xy = xy.reshape(-1, 2)
        return np.column_stack([xy, np.ones(len(xy))])

    def pixel_grid(self) -> np.ndarray:
        """(H*W, 2) pixel centres, row-major."""
        v, u = np.mgrid[0:self.height, 0:self.width]
        return np.column_stack([u.ravel(), v.ravel()]).astype(np.float64)


@dataclass(frozen=True)
class RigGeometry:
    davis: CameraModel
    ir: CameraModel
    R: np.ndarray  # (3, 3) davis -> ir rotation
    t: np.ndarray  # (3,) metres
    working_distance_m: float

    def ir_to_davis_points(self, uv_ir: np.ndarray) -> np.ndarray:
        """IR pixels -> DAVIS pixels through the plane ``z = working_distance_m``."""
        d_ir = self.ir.rays(uv_ir)  # in the IR frame
        c = -self.R.T @ self.t  # IR centre in the DAVIS frame
        d = d_ir @ self.R  # directions in the DAVIS frame (R^T d per row)
        s = (self.working_distance_m - c[2]) / d[:, 2]
        return self.davis.project(c[None, :] + s[:, None] * d)

    def remap_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """For every DAVIS pixel, the IR pixel it sees on the working plane: the
        ``(map_x, map_y)`` float32 tables of ``cv2.remap`` (undistorts and maps at once)."""
        rays = self.davis.rays(self.davis.pixel_grid())
        pts = rays * self.working_distance_m
        uv = self.ir.project(pts @ self.R.T + self.t[None, :])
        shape = (self.davis.height, self.davis.width)
        return (uv[:, 0].reshape(shape).astype(np.float32),
                uv[:, 1].reshape(shape).astype(np.float32))

    def to_dict(self) -> dict:
        """The calibration file's lens and extrinsics fields."""
        return {"davis_camera": self.davis.to_dict(), "ir_camera": self.ir.to_dict(),
                "ir_from_davis": {"R": [[float(v) for v in row] for row in self.R],
                                  "t_m": [float(v) for v in self.t]},
                "working_distance_m": float(self.working_distance_m)}

    def ir_pose_in_davis(self) -> tuple[np.ndarray, np.ndarray]:
        """``(centre, quaternion x y z w)``: the thermal camera's centre (m) and axes in the
        DAVIS frame, i.e. the ``davis -> ir`` transform of TF."""
        from scipy.spatial.transform import Rotation

        R_c = self.R.T  # X_davis = R^T X_ir - R^T t
        return -R_c @ self.t, Rotation.from_matrix(R_c).as_quat()

    def best_homography(self) -> np.ndarray:
        """The homography closest to the mapping over the IR frame (for readers that know
        only ``ir_to_davis_homography``)."""
        v, u = np.mgrid[0:self.ir.height:8, 0:self.ir.width:8]
        uv = np.column_stack([u.ravel(), v.ravel()]).astype(np.float64)
        hom, _ = cv2.findHomography(uv, self.ir_to_davis_points(uv), 0)
        if hom is None:
            raise ConfigError("the camera geometry maps the IR frame onto no plane")
        return hom / hom[2, 2]


def mapping_error_px(a: RigGeometry, b: RigGeometry, step: int = 4) -> float:
    """RMS distance (DAVIS px) between two geometries' IR->DAVIS mappings over the IR pixels
    that land inside the DAVIS frame under ``b``."""
    v, u = np.mgrid[0:b.ir.height:step, 0:b.ir.width:step]
    uv = np.column_stack([u.ravel(), v.ravel()]).astype(np.float64)
    pa, pb = a.ir_to_davis_points(uv), b.ir_to_davis_points(uv)
    inside = (pb[:, 0] >= 0) & (pb[:, 0] < b.davis.width) & (pb[:, 1] >= 0) \
        & (pb[:, 1] < b.davis.height)
    if not inside.any():
        raise ConfigError("the IR frame does not overlap the DAVIS frame")
    return float(np.sqrt(np.mean(np.sum((pa[inside] - pb[inside]) ** 2, axis=1))))


def camera_info_fields(cam: CameraModel) -> dict:
    """The ``sensor_msgs/CameraInfo`` fields of a calibrated monocular camera (``P`` =
    ``[K | 0]``, ``R`` = identity)."""
    P = np.zeros((3, 4))
    P[:, :3] = cam.K
    return {"width": cam.width, "height": cam.height, "distortion_model": "plumb_bob",
            "d": [float(v) for v in cam.dist], "k": [float(v) for v in cam.K.ravel()],
            "r": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], "p": [float(v) for v in P.ravel()]}
