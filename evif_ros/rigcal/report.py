"""The calibration's report: a text summary and a picture (detections, coverage, the
thermal image mapped onto the APS frame, cross-camera residuals, the delay search)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from evif_ros.rigcal.detect import to_gray8
from evif_ros.rigcal.intrinsics import COVERAGE_GOALS
from evif_ros.rigcal.recording import CalibrationRecording
from evif_ros.rigcal.rig import RigCalibration
from evif_ros.runtime.calibration import warp_ir_to_davis

OFFSET_AGREEMENT_NS = 1_000_000  # content and triggers should agree this well


def summary(r: RigCalibration) -> list[str]:
    lines = []
    for name, views, fit in (("APS", r.davis_views, r.davis), ("thermal", r.ir_views, r.ir)):
        K = fit.model.K
        cov = ", ".join(f"{k} {v:.2f}/{COVERAGE_GOALS[k]:.2f}" for k, v in r.coverage[name].items())
        lines.append(f"{name}: board in {len(views)} of {views.frames} frames, {len(fit.used)} "
                     f"used; reprojection {fit.rms_px:.3f} px RMS; fx {K[0, 0]:.2f} fy "
                     f"{K[1, 1]:.2f} cx {K[0, 2]:.2f} cy {K[1, 2]:.2f} px; k1 "
                     f"{fit.model.dist[0]:.4f} k2 {fit.model.dist[1]:.4f}; coverage "
                     f"(range/goal) {cov}")
    angles = np.rad2deg(cv2.Rodrigues(r.pose.R)[0].ravel())
    centre, _ = r.geometry.ir_pose_in_davis()
    lines.append(f"thermal camera centre in the DAVIS frame: ({centre[0] * 100:.2f}, "
                 f"{centre[1] * 100:.2f}, {centre[2] * 100:.2f}) cm, turned by "
                 f"({angles[0]:.2f}, {angles[1]:.2f}, {angles[2]:.2f}) deg; cross-camera "
                 f"reprojection {r.pose.rms_px:.3f} thermal px RMS over {len(r.pose.used)} frames")
    lines.append(f"time offset {r.time_offset_ns / 1e6:.3f} ms (event clock = thermal host "
                 "stamp + offset), from the board's motion")
    t = r.triggers
    if t is None:
        lines.append("triggers: none recorded, the offset is not cross-checked")
    elif t.paired == 0:
        lines.append(f"warning: no thermal frame pairs with a trigger through this offset "
                     f"({t.frames} frames): check ir_latency_ns and the exposure")
    else:
        diff = r.time_offset_ns - t.offset_ns
        flag = "agree" if abs(diff) <= OFFSET_AGREEMENT_NS else "warning: DISAGREE"
        lines.append(f"triggers: {t.paired} of {t.frames} thermal frames pair with one pulse; "
                     f"the pairs imply {t.offset_ns / 1e6:.3f} ms ({flag}: {diff / 1e6:+.3f} ms), "
                     f"latency jitter {t.residual_std_ns / 1e6:.2f} ms RMS")
    return lines


def static_transform(r: RigCalibration) -> dict:
    """The ``davis`` -> ``ir`` transform (the thermal camera's pose in the DAVIS frame) as
    ``static_transform_publisher`` takes it."""
    c, q = r.geometry.ir_pose_in_davis()
    return {"x": c[0], "y": c[1], "z": c[2], "qx": q[0], "qy": q[1], "qz": q[2], "qw": q[3]}


def _draw(img: np.ndarray, corners: np.ndarray | None, pattern) -> np.ndarray:
    rgb = cv2.cvtColor(to_gray8(img), cv2.COLOR_GRAY2RGB)
    if corners is not None:
        cv2.drawChessboardCorners(rgb, pattern, corners.astype(np.float32).reshape(-1, 1, 2),
                                  True)
    return rgb


def picture(r: RigCalibration, rec: CalibrationRecording, pattern, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(15, 8.5))
    # a thermal view used in the cross-camera fit, and the APS frame nearest to it
    k = int(r.pose.used[len(r.pose.used) // 2])
    t_ir = int(r.ir_views.times_ns[k])
    ir_img = dict(rec.ir)[t_ir]
    t_view = t_ir + r.pose.delay_ns
    j = int(np.argmin(np.abs(r.davis_views.times_ns - t_view)))
    aps_img = dict(rec.aps)[int(r.davis_views.times_ns[j])]
    ax[0, 0].imshow(_draw(aps_img, r.davis_views.corners[j], pattern))
    ax[0, 0].set_title("APS frame, board found")
    ax[0, 1].imshow(_draw(ir_img, r.ir_views.corners[k], pattern))
    ax[0, 1].set_title("thermal frame, board found")
    warped = to_gray8(warp_ir_to_davis(ir_img, r.calibration)).astype(np.float32)
    blend = np.dstack([warped, to_gray8(aps_img).astype(np.float32), warped]) / 255.0
    ax[0, 2].imshow(blend)
    ax[0, 2].set_title(f"thermal mapped onto the APS (magenta/green)\n"
                       f"{abs(t_view - r.davis_views.times_ns[j]) / 1e6:.1f} ms apart; the "
                       f"board is nearer than {r.geometry.working_distance_m:g} m", fontsize=9)
    for col, (name, views) in enumerate((("APS", r.davis_views), ("thermal", r.ir_views))):
        pts = views.corners.reshape(-1, 2)
        a = ax[1, col]
        a.scatter(pts[:, 0], pts[:, 1], s=0.3, alpha=0.3)
        a.set_xlim(0, views.size[0])
        a.set_ylim(views.size[1], 0)
        a.set_aspect("equal")
        cov = r.coverage[name]
        a.set_title(f"{name}: corners of {len(views)} views\n" + ", ".join(
            f"{m} {min(1.0, v / COVERAGE_GOALS[m]):.0%}" for m, v in cov.items()), fontsize=9)
    res = r.pose.residuals.reshape(-1, 2)
    a = ax[1, 2]
    grid, costs = r.pose.delay_curve
    a.plot((grid - r.pose.delay_ns) / 1e6, costs, ".-")
    a.axvline(0, color="k", lw=0.5)
    a.set_xlabel("delay - estimate (ms)")
    a.set_ylabel("cross-camera reprojection (thermal px RMS)")
    a.set_title(f"delay search; residuals {np.sqrt(np.mean(np.sum(res ** 2, 1))):.3f} px RMS, "
                f"95 % < {np.quantile(np.linalg.norm(res, axis=1), 0.95):.2f} px", fontsize=9)
    for a in ax[0]:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
