"""Helpers for tests over real rclpy/DDS (localhost only, see conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


def ros_args(params: dict) -> list[str]:
    args = ["--ros-args"]
    for k, v in params.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        args += ["-p", f"{k}:={v}"]
    return args


@contextmanager
def nodes(*specs: tuple[str, dict]):
    """Start node executables as processes; SIGINT them at the end, return their output."""
    procs = []
    try:
        for exe, params in specs:
            procs.append(subprocess.Popen([str(BIN / exe)] + ros_args(params),
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, env=os.environ.copy()))
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def spin_until(node, done, timeout_s: float) -> bool:
    import rclpy
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        rclpy.spin_once(node, timeout_sec=0.02)
        if done():
            return True
    return False
