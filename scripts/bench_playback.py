"""AEDAT4 playback as fast as possible through davis_driver into a subscriber in another
process: sustained MEv/s and loss.

Run: .venv/bin/python scripts/bench_playback.py [--events 24000000] [--packet-us 1000]
     [--udp]   (no shared memory: UDP over loopback, as between two hosts)
(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a ROS_DOMAIN_ID are set here if missing.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", "61")

import numpy as np  # noqa: E402


def make_file(path: Path, n: int, seconds: float) -> None:
    import dv_processing as dv
    from tqdm import tqdm

    rng = np.random.default_rng(0)
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig(
        "BENCH", (346, 260)))
    chunk = 1_000_000
    t0 = 1_000_000
    for start in tqdm(range(0, n, chunk), desc="writing bench file", unit="Mev"):
        m = min(chunk, n - start)
        ts = (t0 + (start + np.arange(m)) * (seconds * 1e6 / n)).astype(np.int64)
        xs, ys, ps = rng.integers(0, 346, m), rng.integers(0, 260, m), rng.integers(0, 2, m)
        store = dv.EventStore()
        for e in zip(ts.tolist(), xs.tolist(), ys.tolist(), ps.astype(bool).tolist()):
            store.push_back(*e)
        writer.writeEvents(store)
    del writer


def subscriber(expected: int, timeout: float) -> None:
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import PointCloud2

    from evif_ros.ros.nodes.common import EVENTS_RELIABLE

    rclpy.init()
    node = Node("bench_sub")
    state = {"n": 0, "packets": 0, "first": None, "last": None}

    def on_events(msg):
        now = time.perf_counter()
        if state["first"] is None:
            state["first"] = now
        state["n"] += msg.width
        state["packets"] += 1
        state["last"] = now

    node.create_subscription(PointCloud2, "/davis/events", on_events, EVENTS_RELIABLE)
    t0 = time.monotonic()
    while state["n"] < expected and time.monotonic() - t0 < timeout:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(state))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=24_000_000)
    ap.add_argument("--seconds", type=float, default=2.0, help="event time span of the file")
    ap.add_argument("--packet-us", type=int, default=5000)
    ap.add_argument("--packet-max", type=int, default=10_000)
    ap.add_argument("--file", default="/tmp/evif_bench/bench.aedat4")
    ap.add_argument("--subscriber", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--udp", action="store_true", help="Fast DDS without shared memory (UDP "
                    "over loopback, as between two hosts)")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.udp:
        env["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4"
    if args.subscriber:
        subscriber(args.subscriber, 120)
        return
    path = Path(args.file)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        make_file(path, args.events, args.seconds)
    bin_dir = Path(sys.executable).parent
    sub = subprocess.Popen([sys.executable, __file__, "--subscriber", str(args.events)],
                           stdout=subprocess.PIPE, text=True, env=env)
    drv = subprocess.Popen([str(bin_dir / "davis_driver"), "--ros-args", "-p", "source:=aedat4",
                            "-p", f"file:={path}", "-p", "rate:=0.0", "-p", "aps:=false",
                            "-p", "imu:=false", "-p", "reliable_events:=true", "-p",
                            "wait_for_subscribers:=1", "-p", f"packet_time_us:={args.packet_us}",
                            "-p", f"packet_max_events:={args.packet_max}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    out, _ = sub.communicate(timeout=400)
    drv.terminate()
    try:
        drv.wait(10)
    except subprocess.TimeoutExpired:
        drv.kill()
    res = json.loads(out.strip().splitlines()[-1])
    span = (res["last"] or 0) - (res["first"] or 0)
    rate = res["n"] / span / 1e6 if span > 0 else float("nan")
    print("| events sent | events received | packets | wall (s) | sustained MEv/s | loss |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.events} | {res['n']} | {res['packets']} | {span:.2f} | {rate:.1f} | "
          f"{1 - res['n'] / args.events:.2%} |")


if __name__ == "__main__":
    main()
