"""``evif record`` and ``evif replay``: rosbag2 files in and out of the graph."""

from __future__ import annotations

import argparse
from pathlib import Path

from evif_ros.apps.commands.argtypes import (
    NONNEGATIVE,
    number,
)


def _record(args: argparse.Namespace) -> None:
    from evif_ros.ros.nodes.recorder import record

    counts = record(Path(args.out), args.topics, args.duration)
    total = sum(counts.values())
    print(f"wrote {args.out}: {total} messages on {len(counts)} topics "
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def _replay(args: argparse.Namespace) -> None:
    from evif_ros.ros.nodes.replayer import replay

    n = replay(Path(args.bag), args.rate, args.loop, args.delay, args.wait_for)
    print(f"replayed {n} messages from {args.bag}")


def register(sub) -> None:
    p = sub.add_parser("record", help="record topics to a rosbag2 (mcap) until Ctrl-C")
    p.add_argument("--out", required=True, help="bag directory to create")
    p.add_argument("topics", nargs="*", help="topics (default: every DESIGN.md topic)")
    p.add_argument("--duration", type=NONNEGATIVE, default=0.0, help="stop after S seconds")
    p.set_defaults(func=_record)

    p = sub.add_parser("replay", help="publish a bag with its timing and /clock")
    p.add_argument("bag", help="bag directory or .mcap file (libcaer_driver bags too)")
    p.add_argument("--rate", type=number(float, 0.0, 100.0, above=True), default=1.0)
    p.add_argument("--loop", action="store_true")
    p.add_argument("--delay", type=NONNEGATIVE, default=1.0,
                   help="seconds between creating publishers and the first message")
    p.add_argument("--wait-for", action="append", default=[], metavar="NODE",
                   help="hold playback until this node has subscribed to something "
                        "(e.g. evif_node, which subscribes once its model is loaded); "
                        "repeatable")
    p.set_defaults(func=_replay)
