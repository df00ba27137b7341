"""``evif rig`` and ``evif demo``: the rig graph with plain rclpy, and the main job."""

from __future__ import annotations

import argparse
from pathlib import Path

from evif_ros.apps.commands.argtypes import (
    NONNEGATIVE,
    POSITIVE,
    SEED,
    number,
)
from evif_ros.errors import EvifError


def _rig(args: argparse.Namespace) -> None:
    from evif_ros.apps.rig_runner import run_rig
    from evif_ros.paths import share_file

    config = Path(args.config) if args.config else share_file("config", "rig.yaml")
    source = "synthetic" if args.sim else "aedat4" if args.aedat4 else "bag" if args.bag else "live"
    from evif_ros.errors import InputFileError
    if args.aedat4 and not Path(args.aedat4).is_file():
        # checked here: the driver node would only log it and the graph run on, empty
        raise InputFileError(f"{args.aedat4}: no such AEDAT4 file")
    if args.bag and not Path(args.bag).exists():
        raise InputFileError(f"{args.bag}: no such bag")
    run_rig(config, source, file=args.aedat4 or args.bag or "", scenario=args.sim or "day",
            duration_s=args.duration, seed=args.seed, role=args.role)


def _demo(args: argparse.Namespace) -> None:
    from evif_ros.apps.rig_runner import run_demo

    rate = None if args.rate == "auto" else float(args.rate)
    print(f"demo: {args.duration} s of the synthetic '{args.scenario}' rig at "
          f"{'the highest sustainable rate' if rate is None else f'{rate}x real time'} "
          "through davis_driver, ir_driver, event_renderer and evif_node (own process)",
          flush=True)
    r = run_demo(Path(args.out), args.scenario, args.duration, rate, args.seed,
                 model=args.model)
    if r.probe:
        print(f"probe: model {r.probe.model_ms:.0f} ms per window (worst of 4), "
              f"simulator {r.probe.sim_s_per_rig_s:.2f} s per rig second -> rate "
              f"{r.rate}x real time")
    lat = r.latency_ms
    print(f"events {r.events}, IR frames {r.ir_frames}, windows {r.windows}, "
          f"fused outputs {r.outputs}, dropped {r.dropped} (device {r.device}, "
          f"wall {r.wall_s:.1f} s, {r.outputs / max(r.wall_s, 1e-9):.2f} outputs/s)")
    print(f"real-time factor: {r.rate}x (rig time / wall time) with "
          f"{r.dropped} dropped windows")
    print("| stage | p50 (ms) | p95 (ms) |\n|---|---|---|")
    for stage, (p50, p95) in lat.items():
        print(f"| {stage} | {p50:.1f} | {p95:.1f} |")
    if r.sync:
        print("synchronizer:", ", ".join(f"{k}={v}" for k, v in r.sync.items()))
    print(f"outputs: {r.bag} (mcap); pictures: {', '.join(r.pictures) or 'none'}")
    if r.outputs == 0:
        raise EvifError("demo produced no fused image")


def _rate_or_auto(text: str):
    return text if text == "auto" else number(float, 0.0, 100.0, above=True)(text)


def register(sub) -> None:
    from evif_ros.sim.scenarios import SCENARIOS

    p = sub.add_parser("rig", help="start the rig graph with plain rclpy (no ros2 launch)")
    p.add_argument("--config", default="", help="parameters YAML (default: config/rig.yaml)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--sim", metavar="SCENARIO", help="synthetic rig")
    src.add_argument("--aedat4", metavar="FILE", help="an AEDAT4 recording (events only)")
    src.add_argument("--bag", metavar="FILE", help="replay a rosbag2 through the graph")
    p.add_argument("--duration", type=NONNEGATIVE, default=0.0, help="stop after S seconds")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--role", default="all", choices=["all", "drivers", "inference"],
                   help="one host's nodes of a two-host setup (see README)")
    p.set_defaults(func=_rig)

    p = sub.add_parser("demo", help="the main job: the synthetic rig through the whole "
                       "graph with the shipped model")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--scenario", default="day", choices=list(SCENARIOS))
    p.add_argument("--duration", type=POSITIVE, default=1.0, help="seconds of rig time")
    p.add_argument("--rate", type=_rate_or_auto, default="auto",
                   help="rig speed vs real time, or 'auto': the highest this machine "
                        "sustains without dropping a window (measured first)")
    p.add_argument("--model", default="", help="TorchScript model (default: shipped)")
    p.add_argument("--seed", type=SEED, default=7)
    p.set_defaults(func=_demo)
