"""Images for people: events as colour frames, IR/visible normalisation, labelled tiles."""

from __future__ import annotations

import cv2
import numpy as np


def events_image(events: np.ndarray, width: int, height: int) -> np.ndarray:
    """BGR uint8: white background, ON events blue, OFF events red (last one wins)."""
    img = np.full((height * width, 3), 255, np.uint8)
    pix = events["y"].astype(np.intp) * width + events["x"]
    on = events["p"].astype(bool)
    img[pix[on]] = (200, 80, 0)
    img[pix[~on]] = (0, 0, 220)
    return img.reshape(height, width, 3)


def normalize(image: np.ndarray, lo_pct: float = 0.5, hi_pct: float = 99.5) -> np.ndarray:
    """Robust min-max stretch to uint8 (thermal counts, radiance, network outputs)."""
    a = image.astype(np.float32)
    lo, hi = np.percentile(a, [lo_pct, hi_pct])
    return (np.clip((a - lo) / max(float(hi - lo), 1e-6), 0, 1) * 255).round().astype(np.uint8)


def to_bgr(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)


def tile(rows: list[list[np.ndarray]], labels: list[str], cell: tuple[int, int] = (346, 260)
         ) -> np.ndarray:
    """Grid of images resized to ``cell`` (w, h), with column labels on the first row."""
    w, h = cell
    out_rows = []
    for r, row in enumerate(rows):
        cells = []
        for c, img in enumerate(row):
            img = cv2.resize(to_bgr(img), (w, h), interpolation=cv2.INTER_AREA)
            if r == 0 and c < len(labels):
                cv2.rectangle(img, (0, 0), (w, 18), (0, 0, 0), -1)
                cv2.putText(img, labels[c], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                            (255, 255, 255), 1, cv2.LINE_AA)
            cells.append(img)
        out_rows.append(np.hstack(cells))
    return np.vstack(out_rows)
