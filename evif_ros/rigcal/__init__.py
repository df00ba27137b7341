"""Rig calibration from a recording of a heated checkerboard (``evif calibrate --bag``):
target detection, intrinsics, the thermal camera's pose and clock offset, the report."""
