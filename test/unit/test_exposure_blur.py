"""The APS blur's ceiling of `evif eval-real`: the motion path from a DVS simulation of a
known motion, and the blur along a path by hand."""

import cv2
import numpy as np
import pytest

from evif_ros.evaluation.exposure_blur import blur_along, exposure_path
from evif_ros.sim.dvs import DvsConfig, DvsSimulator

H, W = 96, 128


def _texture() -> np.ndarray:
    # log intensity of unit spread at a few pixels' scale: edges of several thresholds
    rng = np.random.default_rng(3)
    z = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), 2.0)
    return np.exp(z / z.std())


def _events(speed_px_s: tuple[float, float], exposure_ms: int = 50,
            noise_hz: float = 0.0) -> np.ndarray:
    """Events of the texture moving at ``speed`` (dy, dx; px/s), 1 ms sub-frames."""
    tex = _texture()
    dvs = DvsSimulator(DvsConfig(width=W, height=H, noise_rate_hz=noise_hz,
                                 hot_pixel_fraction=0.0), np.random.default_rng(0))
    out = []
    for ms in range(exposure_ms + 1):
        dy, dx = (v * ms / 1000.0 for v in speed_px_s)
        moved = cv2.warpAffine(tex, np.float32([[1, 0, dx], [0, 1, dy]]), (W, H),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out.append(dvs.step(moved, ms * 1_000_000))
    return np.concatenate(out)


@pytest.mark.parametrize("speed", [(0.0, 300.0), (-200.0, 0.0)])
def test_path_is_the_simulated_motion(speed):
    path = exposure_path(_events(speed), 0, 50_000_000, H, W)
    travel = path[-1] - path[0]  # px over the 50 ms exposure
    truth = np.array(speed) * 0.05  # 15 px right / 10 px up
    assert path.shape == (41, 2)
    assert np.abs(travel - truth).max() < 1.0  # where the content went, to a pixel
    assert np.abs(path[20]).max() < 1.0  # positions are relative to mid-exposure


def test_no_motion_gives_no_path():
    # a resting scene: only the sensor's background activity (100 Hz per pixel, loud)
    path = exposure_path(_events((0.0, 0.0), noise_hz=100.0), 0, 50_000_000, H, W)
    assert not path.any()
    empty = np.zeros(0, dtype=_events((0.0, 0.0)).dtype)
    assert not exposure_path(empty, 0, 50_000_000, H, W).any()
    # a frame known only by one instant (a bag's image_raw stamp): an exposure of no length
    assert not exposure_path(_events((0.0, 300.0)), 25_000_000, 25_000_000, H, W).any()


def test_blur_along_a_path_by_hand():
    img = np.zeros((20, 30), np.float32)
    img[10, 10] = 90.0
    line = blur_along(img, np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]]))
    # three copies at x = 10, 11, 12: each a third of the impulse, nothing else
    assert line[10, 10:13] == pytest.approx([30.0, 30.0, 30.0])
    assert line.sum() == pytest.approx(90.0)
    still = (np.arange(600).reshape(20, 30) % 251).astype(np.uint8)
    assert np.array_equal(blur_along(still, np.zeros((5, 2))), still)
