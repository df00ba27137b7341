"""Console-script entry points of the nodes (``ros2 run evif_ros <node>``).

The stop-signal handlers go in before the node module is imported: importing torch and
rclpy takes seconds, and a Ctrl-C in that time must end the process quietly with exit
code 0 rather than print a ``KeyboardInterrupt`` traceback from an import.
"""

from __future__ import annotations

import importlib

from evif_ros.ros.nodes.stop import handle_stop_signals


def _main(module: str) -> int:
    handle_stop_signals()
    return importlib.import_module(f"evif_ros.ros.nodes.{module}").main()


def davis_driver() -> int:
    return _main("davis_driver")


def ir_driver() -> int:
    return _main("ir_driver")


def event_renderer() -> int:
    return _main("event_renderer")


def evif_node() -> int:
    return _main("evif_node")
