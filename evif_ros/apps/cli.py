"""The ``evif`` command line: one tool, one subcommand per job.

Each group of subcommands lives in its own module under :mod:`evif_ros.apps.commands`, with
a ``register(sub)``.

Errors of evif_ros (bad files, bad parameters) print one line and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from evif_ros.apps.commands import (
    bags,
    calibrate,
    eval_real,
    evaluate,
    rig,
    simulate,
    train,
    visible,
)
from evif_ros.errors import EvifError

GROUPS = (simulate, calibrate, bags, train, evaluate, rig, visible, eval_real)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (``evif train: error: argument --crop: ...``), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="evif", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors and --help: a return code, as for the rest
        return int(exc.code or 0)
    try:
        args.func(args)
    except EvifError as exc:
        print(f"evif {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"evif {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
