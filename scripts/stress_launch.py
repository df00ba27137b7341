"""Ctrl-C stress test of `ros2 launch evif_ros rig.launch.py source:=synthetic` (on demand).

Builds the package into a temporary colcon workspace, then N times: launch the synthetic
rig at rate 1.0 (the CPU model is busy all the time, so SIGINT lands while it runs), wait
for the first /evif/fused, wait a random 0-3 s more, send SIGINT (alternately to the launch
process and to its whole process group, as a terminal does) and record how every process
ended. Prints a table; exit code 1 if any run was not clean.

    .venv/bin/python scripts/stress_launch.py --runs 10
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test"))
import ros2_tools as rt  # noqa: E402

NODES = ("davis_driver", "ir_driver", "evif_node", "event_renderer")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rate", default="1.0", help="rig rate:= (1.0 keeps the model busy)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", "42")
    if why := rt.tools_missing():
        print(f"stress_launch: {why}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        rt.source_tree(ws / "src" / "evif_ros")
        build = rt.colcon_build(ws)
        if build.returncode:
            print(build.stdout[-2000:], build.stderr[-2000:], file=sys.stderr)
            return 2
        print("| run | SIGINT to | after fused (s) | launch rc | " + " | ".join(NODES)
              + " | traceback | left running |")
        print("|---" * (6 + len(NODES)) + "|")
        bad = 0
        for i in range(args.runs):
            group = bool(i % 2)
            log = Path(tmp) / f"launch{i}.log"
            with rt.Launch(ws, f"evif_ros rig.launch.py source:=synthetic rviz:=false rate:="
                               f"{args.rate} duration:=5 seed:={i}", log) as launch:
                echo = rt.echo_once(ws, "/evif/fused", "sensor_msgs/msg/Image", 150)
                wait = rng.uniform(0.0, 3.0)
                time.sleep(wait)
                rc = launch.interrupt(group=group)
                text = launch.text()
                exits = rt.process_exits(text)
                left = launch.group_alive()
            tb = "Traceback" in text
            ok = (echo.returncode == 0 and rc == 0 and not tb and not left
                  and all(exits.get(n) == "cleanly" for n in NODES))
            bad += not ok
            print(f"| {i + 1} | {'group' if group else 'launch'} | {wait:.1f} | {rc} | "
                  + " | ".join(exits.get(n, "?") for n in NODES)
                  + f" | {'yes' if tb else 'no'} | {len(left)} |", flush=True)
        print(f"\n{args.runs - bad} of {args.runs} runs clean")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
