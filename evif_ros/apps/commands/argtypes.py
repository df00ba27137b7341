"""argparse value types shared by the subcommands: finite numbers within a range."""

from __future__ import annotations

import argparse
import math


def number(kind: type, lo: float | None = None, hi: float | None = None,
            above: bool = False, multiple: int = 1):
    """argparse type: a finite ``kind`` in ``[lo, hi]`` (``(lo, hi]`` with ``above``)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if lo is not None and (value <= lo if above else value < lo):
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if above else '>='} {lo:g}")
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"{text} must be <= {hi:g}")
        if multiple != 1 and value % multiple:
            raise argparse.ArgumentTypeError(f"{text} must be a multiple of {multiple}")
        return value
    return parse


COUNT = number(int, 1)  # at least one
NATURAL = number(int, 0)
SEED = number(int, 0, 2**31 - 1)
POSITIVE = number(float, 0.0, above=True)
NONNEGATIVE = number(float, 0.0)
FRACTION = number(float, 0.0, 1.0)
# crops are cut from the 346x260 sensor and must survive three 2x downsamplings
CROP = number(int, 16, 256, multiple=8)
