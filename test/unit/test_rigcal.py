"""Calibration algorithms without a ROS graph: target detection against drawn boards and
real DAVIS frames, view coverage refusals, the clock offset arithmetic and the trigger
check."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from evif_ros.errors import ConfigError
from evif_ros.rigcal.detect import detect
from evif_ros.rigcal.intrinsics import Views, check_views
from evif_ros.rigcal.rig import check_triggers, offset_from_delay
from evif_ros.runtime.target import Checkerboard

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dv_sample_davis346.aedat4"
BOARD = Checkerboard(9, 6, 0.04)


def drawn_board(h: np.ndarray, size=(346, 260), px=20, blur=0.0, thermal=False):
    """A checkerboard image drawn square by square (10 x 7 squares of ``px`` board units,
    a white margin), seen through the homography ``h`` (board units -> pixel centres),
    rendered at 4x and box-filtered down; returns the image and where ``h`` puts the inner
    corners (the truth, from the drawing, not from the detector)."""
    cols, rows = BOARD.cols + 1, BOARD.rows + 1
    margin, sf, ss = px, 4, 4  # flat raster and destination supersampling
    flat = np.full(((rows * px + 2 * margin) * sf, (cols * px + 2 * margin) * sf), 230, np.uint8)
    for j in range(rows):
        for i in range(cols):
            if (i + j) % 2 == 0:
                flat[(margin + j * px) * sf:(margin + (j + 1) * px) * sf,
                     (margin + i * px) * sf:(margin + (i + 1) * px) * sf] = 20

    def T(d):
        return np.array([[1, 0, d], [0, 1, d], [0, 0, 1.0]])
    # flat pixel centre X -> board units (X + 0.5) / sf -> pixel centre p = h(b) -> the
    # supersampled destination's pixel centre ss * (p + 0.5) - 0.5
    M = T(0.5 * ss - 0.5) @ np.diag([ss, ss, 1.0]) @ h @ np.diag([1 / sf, 1 / sf, 1.0]) @ T(0.5)
    big = cv2.warpPerspective(flat, M, (size[0] * ss, size[1] * ss), flags=cv2.INTER_LINEAR,
                              borderValue=90)
    img = cv2.resize(big, size, interpolation=cv2.INTER_AREA)
    jj, ii = np.mgrid[1:rows, 1:cols]
    corners = np.column_stack([margin + ii.ravel() * px, margin + jj.ravel() * px]) * 1.0
    pts = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), h).reshape(-1, 2)
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    if thermal:  # warm dark squares, 16-bit counts
        img = (9000 - 3 * img.astype(np.uint16)).astype(np.uint16)
    return img, pts


def homography(angle_deg=8.0, tilt=0.0006, shift=(60, 40)):
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a), shift[0]], [np.sin(a), np.cos(a), shift[1]],
                     [tilt, 0.0, 1.0]])


@pytest.mark.parametrize("thermal", [False, True])
def test_detects_a_drawn_board_to_a_tenth_of_a_pixel(thermal):
    img, truth = drawn_board(homography(), blur=0.8, thermal=thermal)
    found = detect(img, BOARD)
    assert found is not None
    assert np.sqrt(np.mean(np.sum((found - truth) ** 2, 1))) < 0.1


def test_corner_order_survives_a_half_turn_of_the_detector():
    # the board rolled by 170 deg: the detector may report it either way round; the
    # first corner is always the top-left one of the image
    img, _ = drawn_board(homography(angle_deg=175, shift=(280, 220)))
    found = detect(img, BOARD)
    assert found is not None
    assert found[0, 0] < found[BOARD.cols - 1, 0]  # the first row runs left to right
    assert found[0, 1] < found[-1, 1]  # and is the top one


def test_no_board_in_real_davis_frames():
    import dv_processing as dv

    rec = dv.io.MonoCameraRecording(str(FIXTURE))
    frames = 0
    while (fr := rec.getNextFrame()) is not None:
        img = fr.image if fr.image.ndim == 2 else cv2.cvtColor(fr.image, cv2.COLOR_BGR2GRAY)
        assert detect(img, BOARD) is None
        frames += 1
    assert frames >= 3


def test_views_too_few_or_too_alike_are_refused_in_one_line():
    img, truth = drawn_board(homography())
    same = Views("APS", (346, 260), np.arange(30) * 33_000_000,
                 np.repeat(truth[None], 30, 0), 30)
    with pytest.raises(ConfigError) as exc:
        check_views(same, BOARD, "rec.bag")
    assert "rec.bag" in str(exc.value) and "too alike" in str(exc.value)
    few = Views("thermal", (320, 256), np.arange(4), np.repeat(truth[None], 4, 0), 200)
    with pytest.raises(ConfigError, match="found in 4 of 200 thermal frames"):
        check_views(few, BOARD, "rec.bag")


def test_offset_from_delay_by_hand():
    # view at mid-exposure = host + delay; the frame arrives exposure/2 + latency after
    # its view: offset = delay + 12.5 ms + mean latency 10 ms
    assert offset_from_delay(-5_000_000, 25_000_000, (6_000_000, 14_000_000)) == 17_500_000


def test_trigger_check_pairs_each_frame_and_measures_the_offset():
    rng = np.random.default_rng(0)
    trig = 1_000_000_000 + np.arange(50) * 33_333_000
    lat = rng.integers(6_000_000, 14_000_001, 50)
    offset = 17_300_000
    host = trig + 25_000_000 + lat - offset
    chk = check_triggers(list(trig), host, offset, 25_000_000, (6_000_000, 14_000_000))
    assert chk.paired == 50
    assert abs(chk.offset_ns - (offset + 10_000_000 - lat.mean())) < 1
    assert 1.5e6 < chk.residual_std_ns < 3.0e6  # uniform 8 ms: 2.3 ms
    # an offset half a period off pairs nothing inside a third of the period
    off = check_triggers(list(trig), host, offset + 16_000_000, 25_000_000,
                         (6_000_000, 14_000_000))
    assert off.paired == 0
