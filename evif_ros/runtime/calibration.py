"""Rig calibration: IR-to-event-camera homography, IR exposure and timing, image sizes.

File format (YAML)::

    davis: {width: 346, height: 260}
    ir: {width: 320, height: 256}
    ir_to_davis_homography: [[h11, h12, h13], [h21, h22, h23], [h31, h32, h33]]
    ir_exposure_ns: 25000000
    time_offset_ns: 0               # event clock = IR host stamp + offset
    ir_latency_ns: [6000000, 14000000]   # IR frame arrival after its exposure end
    # written by `evif calibrate --bag` (optional; without them the homography maps):
    davis_camera: {width, height, K: 3x3, dist: [k1, k2, p1, p2, k3]}
    ir_camera: {width, height, K, dist}
    ir_from_davis: {R: 3x3, t_m: [x, y, z]}   # X_ir = R X_davis + t (metres)
    working_distance_m: 10.0        # the plane the IR image is mapped on
    # the event sensor's contrast threshold (log units; optional, `evif contrast` measures
    # it): the reconstruction's event step is scaled to it (runtime.model_file.set_contrast)
    davis_contrast: 0.4
    # how late the event pixels report the scene (ns; optional, `evif contrast` measures it
    # against the sensor's own APS frames): the synchronizer takes each exposure's events
    # this much later (a DVS pixel slows down in dim light)
    davis_latency_ns: 0

The homography maps IR pixel coordinates ``(u, v, 1)`` to DAVIS346 pixel coordinates.
With the lens models and the extrinsics, the IR image is instead undistorted and mapped
through the plane at the working distance (``RigGeometry.remap_tables``), and the
homography is that mapping's closest fit, kept for older readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import yaml

from evif_ros.errors import ConfigError, EvifError, InputFileError
from evif_ros.runtime.camera_model import CameraModel, RigGeometry


@dataclass(frozen=True, eq=False)
class Calibration:
    ir_to_davis: np.ndarray  # (3, 3)
    davis_size: tuple[int, int]  # (width, height)
    ir_size: tuple[int, int]
    ir_exposure_ns: int
    time_offset_ns: int = 0
    ir_latency_ns: tuple[int, int] = (0, 30_000_000)
    geometry: RigGeometry | None = None  # lens models and extrinsics (evif calibrate --bag)
    davis_contrast: float | None = None  # the event sensor's contrast threshold, log units
    davis_latency_ns: int = 0  # how late the event pixels report the scene

    @cached_property
    def remap_tables(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.geometry is None else self.geometry.remap_tables()

    def to_dict(self) -> dict:
        extra = {} if self.geometry is None else self.geometry.to_dict()
        return {
            "davis": {"width": self.davis_size[0], "height": self.davis_size[1]},
            "ir": {"width": self.ir_size[0], "height": self.ir_size[1]},
            "ir_to_davis_homography": [[float(v) for v in row] for row in self.ir_to_davis],
            "ir_exposure_ns": int(self.ir_exposure_ns),
            "time_offset_ns": int(self.time_offset_ns),
            "ir_latency_ns": [int(v) for v in self.ir_latency_ns],
            **extra,
            **({} if self.davis_contrast is None
               else {"davis_contrast": float(self.davis_contrast)}),
            **({"davis_latency_ns": int(self.davis_latency_ns)} if self.davis_latency_ns
               else {}),
        }

    def save(self, path: Path) -> None:
        """Write the YAML, validated as :func:`load_calibration` reads it: an invalid
        calibration (NaN, h33 = 0, bad sizes) is never written."""
        path = Path(path)
        if not path.parent.is_dir():
            raise InputFileError(f"{path}: folder {path.parent} does not exist")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("# evif_ros rig calibration (see evif_ros/runtime/calibration.py)\n"
                       + yaml.safe_dump(self.to_dict(), sort_keys=False))
        try:
            load_calibration(tmp)
        except EvifError as exc:
            tmp.unlink()
            reason = str(exc).split(": ", 1)[-1]
            raise ConfigError(f"{path}: not written, the calibration is invalid ({reason})"
                              ) from None
        tmp.replace(path)


MAX_SIDE_PX = 8192  # larger than any event or thermal camera made


def load_calibration(path: Path) -> Calibration:
    """Read and validate a calibration file; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: calibration file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: not a text file (calibration YAML expected)") from None
    except yaml.YAMLError as exc:
        raise InputFileError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a mapping of calibration fields")

    def need(key):
        if key not in data:
            raise ConfigError(f"{path}: missing field '{key}'")
        return data[key]

    def size(key):
        v = need(key)
        try:
            w, h = int(v["width"]), int(v["height"])
        except (TypeError, KeyError, ValueError, OverflowError):
            raise ConfigError(f"{path}: field '{key}' needs integer width and height") from None
        if w <= 0 or h <= 0:
            raise ConfigError(f"{path}: field '{key}' has a non-positive size {w}x{h}")
        if w > MAX_SIDE_PX or h > MAX_SIDE_PX:
            # the runtime allocates grids of this size per window: refuse before it does
            raise ConfigError(f"{path}: field '{key}' size {w}x{h} exceeds {MAX_SIDE_PX} px "
                              "per side")
        return w, h

    davis_size, ir_size = size("davis"), size("ir")
    raw = need("ir_to_davis_homography")
    try:
        hom = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: field 'ir_to_davis_homography' is not numeric") from None
    if hom.shape != (3, 3) or not np.all(np.isfinite(hom)) or abs(np.linalg.det(hom)) < 1e-12:
        raise ConfigError(f"{path}: field 'ir_to_davis_homography' must be an invertible 3x3 "
                          "matrix")
    if abs(hom[2, 2]) < 1e-12:  # h33 = 0 maps points to infinity after normalisation
        raise ConfigError(f"{path}: field 'ir_to_davis_homography' has h33 = 0")
    try:
        exposure = int(need("ir_exposure_ns"))
        offset = int(data.get("time_offset_ns", 0))
        lat = tuple(int(v) for v in data.get("ir_latency_ns", (0, 30_000_000)))
        event_lat = int(data.get("davis_latency_ns", 0))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{path}: timing fields must be finite integers ns ({exc})") from None
    if exposure <= 0:
        raise ConfigError(f"{path}: field 'ir_exposure_ns' must be positive")
    if len(lat) != 2 or not 0 <= lat[0] <= lat[1]:
        raise ConfigError(f"{path}: field 'ir_latency_ns' must be [min, max] with 0 <= min <= max")
    if abs(event_lat) > MAX_EVENT_LATENCY_NS:
        raise ConfigError(f"{path}: field 'davis_latency_ns' must be within "
                          f"±{MAX_EVENT_LATENCY_NS // 1_000_000} ms, got {event_lat}")
    geometry = _geometry(path, data, davis_size, ir_size)
    return Calibration(hom / hom[2, 2], davis_size, ir_size, exposure, offset, lat, geometry,
                       _contrast(path, data.get("davis_contrast")), event_lat)


# a DVS pixel's latency reaches tens of ms in dim light; beyond this it is a wrong clock
MAX_EVENT_LATENCY_NS = 500_000_000
MAX_CONTRAST = 2.0  # log units; real DVS pixels are set between ~0.1 and ~1


def _contrast(path: Path, value) -> float | None:
    if value is None:
        return None
    try:
        c = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: field 'davis_contrast' must be a number (log units), "
                          f"got {value!r}") from None
    if not 0.0 < c <= MAX_CONTRAST:  # also refuses NaN
        raise ConfigError(f"{path}: field 'davis_contrast' must be in (0, {MAX_CONTRAST:g}] "
                          f"log units, got {value!r}")
    return c


def _geometry(path: Path, data: dict, davis_size: tuple[int, int], ir_size: tuple[int, int]
              ) -> RigGeometry | None:
    keys = ("davis_camera", "ir_camera", "ir_from_davis")
    present = [k for k in keys if k in data]
    if not present:
        return None
    if len(present) < len(keys):
        missing = sorted(set(keys) - set(present))
        raise ConfigError(f"{path}: field(s) {', '.join(missing)} missing beside "
                          f"{', '.join(present)} (the lens models and extrinsics go together)")
    davis = CameraModel.from_dict(data["davis_camera"], f"{path}: field 'davis_camera'")
    ir = CameraModel.from_dict(data["ir_camera"], f"{path}: field 'ir_camera'")
    for name, cam, size in (("davis_camera", davis, davis_size), ("ir_camera", ir, ir_size)):
        if (cam.width, cam.height) != size:
            raise ConfigError(f"{path}: field '{name}' is {cam.width}x{cam.height}, the "
                              f"image size fields say {size[0]}x{size[1]}")
    ext = data["ir_from_davis"]
    try:
        R = np.asarray(ext["R"], np.float64)
        t = np.asarray(ext["t_m"], np.float64).ravel()
        dist = float(data.get("working_distance_m", 10.0))
    except (TypeError, KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: field 'ir_from_davis' needs R (3x3) and t_m (3) "
                          f"({exc})") from None
    if R.shape != (3, 3) or t.shape != (3,) or not np.all(np.isfinite(R)) \
            or not np.all(np.isfinite(t)) or not np.allclose(R @ R.T, np.eye(3), atol=1e-6) \
            or np.linalg.det(R) < 0:
        raise ConfigError(f"{path}: field 'ir_from_davis' needs a rotation R (3x3) and a "
                          "finite t_m (3)")
    if not (np.isfinite(dist) and dist > 0):
        raise ConfigError(f"{path}: field 'working_distance_m' must be a positive distance")
    return RigGeometry(davis, ir, R, t, dist)


def warp_ir_to_davis(image: np.ndarray, calib: Calibration) -> np.ndarray:
    """Resample an IR image onto the event camera's pixel grid (bilinear, edges
    replicated)."""
    if image.shape[1::-1] != calib.ir_size:
        raise ConfigError(f"IR image is {image.shape[1]}x{image.shape[0]}, calibration expects "
                          f"{calib.ir_size[0]}x{calib.ir_size[1]}")
    src = image if image.dtype in (np.uint8, np.float32) else image.astype(np.float32)
    if calib.remap_tables is not None:  # lens models: undistort and map in one lookup
        mx, my = calib.remap_tables
        return cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpPerspective(src, calib.ir_to_davis, calib.davis_size,
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def load_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Matched keypoints, one per line: ``u_ir v_ir u_davis v_davis`` (commas or spaces;
    ``#`` comments)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: pairs file not found")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: not a text file (pairs: u_ir v_ir u_davis v_davis "
                             "per line)") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        try:
            vals = [float(v) for v in line.split()]
        except ValueError:
            raise InputFileError(f"{path}:{n}: not four numbers: {line!r}") from None
        if len(vals) != 4:
            raise InputFileError(f"{path}:{n}: expected 4 columns (u_ir v_ir u_davis v_davis), "
                                 f"got {len(vals)}")
        if not all(np.isfinite(vals)):
            raise InputFileError(f"{path}:{n}: not a finite coordinate: {line!r}")
        rows.append(vals)
    if len(rows) < 4:
        raise InputFileError(f"{path}: {len(rows)} pairs; a homography needs at least 4")
    arr = np.asarray(rows)
    return arr[:, :2], arr[:, 2:]


def fit_homography(ir_pts: np.ndarray, davis_pts: np.ndarray, threshold_px: float = 3.0
                   ) -> tuple[np.ndarray, float, np.ndarray]:
    """RANSAC homography IR -> DAVIS; returns ``(H, rms reprojection error of inliers px,
    inlier mask)``."""
    hom, mask = cv2.findHomography(ir_pts.astype(np.float64), davis_pts.astype(np.float64),
                                   cv2.RANSAC, threshold_px)
    if hom is None:
        raise ConfigError("no homography fits these pairs (degenerate or too few inliers)")
    inl = mask.ravel().astype(bool)
    proj = cv2.perspectiveTransform(ir_pts[inl].reshape(-1, 1, 2), hom).reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((proj - davis_pts[inl]) ** 2, axis=1))))
    return hom / hom[2, 2], rms, inl
