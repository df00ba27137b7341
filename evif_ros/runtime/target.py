"""The calibration target both cameras see: a heated checkerboard.

Its dark squares absorb (printed black on aluminium, warmed by a lamp or the sun), so they
are dark in the visible and warm in the thermal image; either camera sees a checkerboard.
Inner corners ``cols x rows``. One count even and the other odd makes the board's colours
differ under a half turn, which is the safer choice; the corners are put in one order from
the image itself either way (the board held within +-90 deg of upright, rigcal.detect).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evif_ros.errors import ConfigError


@dataclass(frozen=True)
class Checkerboard:
    cols: int = 9  # inner corners along the board's x axis
    rows: int = 6
    square_m: float = 0.04

    def __post_init__(self) -> None:
        if self.cols < 3 or self.rows < 3 or self.cols == self.rows:
            raise ConfigError(f"checkerboard {self.cols}x{self.rows}: needs at least 3x3 inner "
                              "corners, more along one side than the other")
        if not self.square_m > 0:
            raise ConfigError(f"checkerboard square {self.square_m} m must be positive")

    @property
    def pattern(self) -> tuple[int, int]:
        return self.cols, self.rows

    def object_points(self) -> np.ndarray:
        """(cols*rows, 3) corners on the board plane z = 0, row by row, metres; origin at
        the first inner corner, x along a row, y down the columns."""
        j, i = np.mgrid[0:self.rows, 0:self.cols]
        return np.column_stack([i.ravel() * self.square_m, j.ravel() * self.square_m,
                                np.zeros(i.size)]).astype(np.float64)

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.cols - 1) * self.square_m / 2,
                         (self.rows - 1) * self.square_m / 2, 0.0])

    def to_dict(self) -> dict:
        return {"cols": self.cols, "rows": self.rows, "square_m": self.square_m}
