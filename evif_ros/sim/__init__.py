"""Synthetic rig: procedural visible + thermal scenes, DAVIS346 and thermal camera models.

Everything is deterministic given a seed; nothing is downloaded.
"""
