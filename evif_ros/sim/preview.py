"""Preview picture of a simulated rig bag: events | APS | blurry IR | GT IR | GT visible."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from evif_ros.errors import InputFileError
from evif_ros.runtime import topics
from evif_ros.runtime.events import merge_sorted, slice_time
from evif_ros.runtime.msgs import events_from_msg, image_from_msg, stamp_to_ns
from evif_ros.runtime.render import events_image, normalize, tile


def bag_preview(bag_dir: Path, out_png: Path, exposure_ns: int, max_rows: int = 4) -> int:
    """Write a grid for up to ``max_rows`` IR frames of the bag; returns rows written."""
    from rosbags.highlevel import AnyReader

    bag_dir = Path(bag_dir)
    if not bag_dir.exists():
        raise InputFileError(f"{bag_dir}: no such bag")
    chunks, aps, ir, gt_ir, gt_vis = [], [], [], [], []
    with AnyReader([bag_dir]) as reader:
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == topics.EVENTS:
                chunks.append(events_from_msg(msg, conn.topic))
            elif conn.topic == topics.APS:
                aps.append((stamp_to_ns(msg.header.stamp), image_from_msg(msg, conn.topic)))
            elif conn.topic == topics.IR_IMAGE:
                ir.append(image_from_msg(msg, conn.topic))
            elif conn.topic == topics.GT_IR:
                gt_ir.append((stamp_to_ns(msg.header.stamp), image_from_msg(msg, conn.topic)))
            elif conn.topic == topics.GT_VISIBLE:
                gt_vis.append(image_from_msg(msg, conn.topic))
    events = merge_sorted(*chunks)
    rows = []
    pick = np.linspace(0, len(gt_ir) - 1, min(max_rows, len(gt_ir))).round().astype(int)
    for i in pick:
        t0, sharp = gt_ir[i]
        ev = slice_time(events, t0, t0 + exposure_ns)
        aps_img = min(aps, key=lambda a: abs(a[0] - t0 - exposure_ns // 2))[1] if aps else None
        w, h = 346, 260
        rows.append([events_image(ev, w, h),
                     aps_img if aps_img is not None else np.zeros((h, w), np.uint8),
                     normalize(ir[i]), normalize(sharp), gt_vis[i]])
    if not rows:
        raise InputFileError(f"{bag_dir}: no IR frames to preview")
    grid = tile(rows, ["events (exposure)", "APS frame", "blurry IR", "sharp IR (GT)",
                       "visible (GT)"])
    cv2.imwrite(str(out_png), grid)
    return len(rows)
