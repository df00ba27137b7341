"""Lens models, the IR->DAVIS mapping through a working plane, and the calibration file
fields that carry them."""

import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from evif_ros.errors import ConfigError
from evif_ros.runtime.calibration import Calibration, load_calibration, warp_ir_to_davis
from evif_ros.runtime.camera_model import (
    CameraModel,
    RigGeometry,
    mapping_error_px,
)

DAVIS = CameraModel(346, 260, np.array([[250.0, 0, 170], [0, 251.0, 131], [0, 0, 1]]),
                    np.array([-0.33, 0.13, 0.001, -0.0007, 0.0]))
IR = CameraModel(320, 256, np.array([[338.0, 0, 158], [0, 338.5, 129], [0, 0, 1]]),
                 np.array([-0.19, 0.07, 0.0, 0.0, 0.0]))


def geometry(dist_m=10.0, shift=0.05):
    R = Rotation.from_euler("xyz", [0.5, -1.0, 0.8], degrees=True).as_matrix()
    return RigGeometry(DAVIS, IR, R, -R @ np.array([shift, 0.004, -0.01]), dist_m)


def test_pinhole_projection_by_hand():
    cam = CameraModel(100, 80, np.array([[200.0, 0, 50], [0, 210.0, 40], [0, 0, 1]]),
                      np.zeros(5))
    # u = fx X / Z + cx, v = fy Y / Z + cy
    assert np.allclose(cam.project(np.array([[0.1, -0.2, 2.0]])), [[60.0, 19.0]])
    assert np.allclose(cam.rays(np.array([[60.0, 19.0]])), [[0.05, -0.1, 1.0]])


def test_distorted_rays_project_back_to_their_pixels():
    uv = DAVIS.pixel_grid()[::97]
    assert np.abs(DAVIS.project(DAVIS.rays(uv)) - uv).max() < 1e-6


def test_radial_distortion_pulls_the_corners_in():
    # k1 < 0 (barrel): a ray towards the image corner lands nearer the centre than the
    # pinhole puts it
    ray = np.array([[0.6, 0.45, 1.0]])
    pinhole = DAVIS.K[:2, :2] @ ray[0, :2] + DAVIS.K[:2, 2]
    distorted = DAVIS.project(ray)[0]
    assert np.linalg.norm(distorted - DAVIS.K[:2, 2]) < np.linalg.norm(pinhole - DAVIS.K[:2, 2])


def test_remap_tables_invert_the_forward_mapping():
    geo = geometry()
    mx, my = geo.remap_tables()
    davis_px = np.array([[30, 20], [170, 130], [300, 240]])
    ir_px = np.column_stack([mx[davis_px[:, 1], davis_px[:, 0]],
                             my[davis_px[:, 1], davis_px[:, 0]]])
    back = geo.ir_to_davis_points(ir_px.astype(np.float64))
    assert np.abs(back - davis_px).max() < 1e-2  # float32 tables


def test_parallax_between_planes_matches_f_times_baseline_over_depth():
    # the mapping at 2 m against 1e6 m differs by f * b / Z at the image centre
    near, far = geometry(2.0, shift=0.05), geometry(1e6, shift=0.05)
    err = mapping_error_px(near, far)
    assert 250.0 * 0.05 / 2.0 * 0.8 < err < 250.0 * 0.05 / 2.0 * 1.2


def test_calibration_file_round_trip_with_lens_models(tmp_path):
    geo = geometry()
    calib = Calibration(geo.best_homography(), (346, 260), (320, 256), 25_000_000, 1234,
                        (6_000_000, 14_000_000), geometry=geo)
    calib.save(tmp_path / "c.yaml")
    back = load_calibration(tmp_path / "c.yaml")
    assert back.geometry is not None
    assert np.allclose(back.geometry.davis.K, DAVIS.K)
    assert np.allclose(back.geometry.ir.dist, IR.dist)
    assert mapping_error_px(back.geometry, geo) < 1e-9
    # the node's warp goes through the lens models: an IR image of a bright dot lands
    # where the forward mapping says
    img = np.zeros((256, 320), np.float32)
    img[100:103, 200:203] = 1.0
    warped = warp_ir_to_davis(img, back)
    expect = geo.ir_to_davis_points(np.array([[201.0, 101.0]]))[0]
    v, u = np.unravel_index(np.argmax(warped), warped.shape)
    assert abs(u - expect[0]) <= 1.0 and abs(v - expect[1]) <= 1.0


def test_calibration_lens_fields_refused_in_one_line(tmp_path):
    geo = geometry()
    good = Calibration(geo.best_homography(), (346, 260), (320, 256), 25_000_000,
                       geometry=geo).to_dict()
    cases = {
        "ir_camera": {k: v for k, v in good.items() if k != "ir_camera"},
        "ir_from_davis": {**good, "ir_from_davis": {"R": [[2, 0, 0], [0, 1, 0], [0, 0, 1]],
                                                    "t_m": [0, 0, 0]}},
        "davis_camera": {**good, "davis_camera": {**good["davis_camera"], "width": 640}},
    }
    for field, data in cases.items():
        path = tmp_path / f"{field}.yaml"
        path.write_text(yaml.safe_dump(data))
        with pytest.raises(ConfigError) as exc:
            load_calibration(path)
        msg = str(exc.value)
        assert str(path) in msg and field in msg and "\n" not in msg


def test_static_transform_places_the_thermal_camera_in_the_davis_frame(tmp_path):
    from evif_ros.ros.graph import static_transform_arguments

    geo = geometry()
    path = tmp_path / "c.yaml"
    Calibration(geo.best_homography(), (346, 260), (320, 256), 25_000_000,
                geometry=geo).save(path)
    args = static_transform_arguments(path)
    kv = dict(zip(args[::2], args[1::2]))
    assert kv["--frame-id"] == "davis" and kv["--child-frame-id"] == "ir"
    # the IR centre was put at (5 cm, 4 mm, -1 cm) in the DAVIS frame (see geometry())
    assert np.allclose([float(kv[k]) for k in ("--x", "--y", "--z")], [0.05, 0.004, -0.01])
    q = Rotation.from_quat([float(kv[k]) for k in ("--qx", "--qy", "--qz", "--qw")])
    # a point in the IR frame, expressed in the DAVIS frame by the transform, maps back to
    # the same IR point through X_ir = R X_davis + t
    p_ir = np.array([0.3, -0.2, 2.0])
    p_davis = q.apply(p_ir) + [0.05, 0.004, -0.01]
    assert np.allclose(geo.R @ p_davis + geo.t, p_ir)
    # a homography-only calibration has no pose to publish
    Calibration(geo.best_homography(), (346, 260), (320, 256), 25_000_000).save(path)
    assert static_transform_arguments(path) is None
