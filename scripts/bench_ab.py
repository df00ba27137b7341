"""Two model files timed against each other, call by call in one process (A B, B A, A B,
...), on the same random 346x260 window with each one's state carried: on a shared machine
whose speed drifts by 10-30 % from minute to minute, the ratio of their p50s is what a code
change did, where separate `bench_inference.py` runs mostly show the drift.

Usage: python scripts/bench_ab.py A.ts B.ts [--threads 2] [--calls 80] [--rig]

--rig: the synthetic rig's windows (`day`, moving) through the node's runner, each file with
its own runner and state, instead of one random window: a random window shows no motion, so
the event-guided deconvolution, which only runs on frames that moved, is not timed without it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from evif_ros.errors import EvifError
from evif_ros.learning.export import example_inputs
from evif_ros.learning.pipeline import EvifConfig
from evif_ros.runtime.model_file import load_exported

WARMUP = 10  # TorchScript's profiling executor optimises the graph on the first calls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=80, help="calls of each file")
    ap.add_argument("--rig", action="store_true",
                    help="time the synthetic rig's windows through the runner")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.rig:
        return rig_ab(args)
    try:
        loaded = [load_exported(p) for p in (args.a, args.b)]
    except EvifError as exc:
        print(f"bench_ab: {exc}", file=sys.stderr)
        return 2
    ks = {int(meta["config"]["sub_windows"]) for _, meta in loaded}
    if len(ks) != 1:
        print(f"bench_ab: the files take different K ({sorted(ks)})", file=sys.stderr)
        return 2
    models = [m.to(memory_format=torch.channels_last) for m, _ in loaded]  # as the runner
    ir, ev, sub = example_inputs(EvifConfig(**loaded[0][1]["config"]), h=260, w=346)
    ev = ev.contiguous(memory_format=torch.channels_last)
    states: list[list] = [[], []]

    def call(j: int, _: int) -> None:
        states[j] = models[j](ir, ev, sub, states[j])[3]

    return report(args, alternate(args.calls, call))


def alternate(calls: int, call: Callable[[int, int], None]) -> list[list[float]]:
    """``call(j, i)`` for file j = 0, 1 on call i, A B then B A, ...: the ms of each file's
    calls after the first WARMUP."""
    times: list[list[float]] = [[], []]
    with torch.no_grad():
        for i in range(calls + WARMUP):
            for j in (0, 1) if i % 2 == 0 else (1, 0):
                t0 = time.perf_counter()
                call(j, i)
                if i >= WARMUP:
                    times[j].append((time.perf_counter() - t0) * 1e3)
    return times


def rig_ab(args: argparse.Namespace) -> int:
    """The rig's windows, each run by both files' runners in alternating order."""
    from bench_inference import windows  # this folder's: the node's front end on the rig

    from evif_ros.paths import share_file
    from evif_ros.runtime.calibration import load_calibration
    from evif_ros.runtime.inference import EvifRunner
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    try:
        runners = [EvifRunner(p, calib, "cpu") for p in (args.a, args.b)]
    except EvifError as exc:
        print(f"bench_ab: {exc}", file=sys.stderr)
        return 2
    if runners[0].k != runners[1].k:
        print(f"bench_ab: the files take different K ({runners[0].k}, {runners[1].k})",
              file=sys.stderr)
        return 2
    wins = windows((args.calls + WARMUP) / 30 + 0.1, runners[0].k, calib)
    calls = min(args.calls, len(wins) - WARMUP)
    return report(args, alternate(calls, lambda j, i: runners[j].run(wins[i])))


def report(args: argparse.Namespace, times: list[list[float]]) -> int:
    for path, t in zip((args.a, args.b), times):
        print(f"{path}: p50 {np.median(t):.1f} ms, p95 {np.percentile(t, 95):.1f} ms")
    print(f"A / B (p50): {np.median(times[0]) / np.median(times[1]):.3f} "
          f"({args.threads} threads, {len(times[0])} calls each"
          f"{', the rig' if args.rig else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
