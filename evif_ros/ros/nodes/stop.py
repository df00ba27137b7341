"""Ctrl-C and SIGTERM as a flag, for every long-running process of the package.

rclpy's own handlers turn SIGINT into a ``KeyboardInterrupt`` raised wherever the main
thread happens to be and shut the context down at once, while worker threads may still be
publishing or running torch: that is how nodes crashed on Ctrl-C (tracebacks from
``destroy_node``, ``RCLError: context is not valid``, segfaults at exit). Here a signal only
sets :data:`STOP`; the spin loop sees it, the nodes join their threads, and then rclpy is
shut down. Further Ctrl-Cs during shutdown (a terminal sends one to the whole process group,
``ros2 launch`` sends another) are ignored.

Standard library only, so console scripts can install the handlers before importing
rclpy and torch (which takes seconds).
"""

from __future__ import annotations

import signal
import threading

STOP = threading.Event()
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _on_signal(signum: int, frame) -> None:  # noqa: ARG001 - signal handler signature
    STOP.set()
    # Later signals are ignored: Python puts the default handlers back while it shuts down,
    # and a second Ctrl-C landing then would kill the process (exit -2) after a clean stop.
    # A stop that hangs is bounded elsewhere (nodes.common.join_worker).
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def handle_stop_signals() -> threading.Event:
    """Route SIGINT and SIGTERM to :data:`STOP` (main thread only; idempotent)."""
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            signal.signal(sig, _on_signal)
    return STOP
