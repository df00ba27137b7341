"""One checkpoint from two: the reconstruction and deblurring networks of TASKS (a stage-2
checkpoint) with everything else (the fusion network) from FUSION (a stage-3 checkpoint of
the same size). Used by scripts/finetune_rt.sh: task networks fine-tuned on new data keep
the fusion trained on the larger base set.

Run: .venv/bin/python scripts/merge_checkpoints.py TASKS FUSION OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from evif_ros.errors import EvifError, InputFileError
from evif_ros.learning.train import load_checkpoint

TASK_NETWORKS = ("recon.", "deblur.")
# settings of the task networks without weights of their own: TASKS' value is kept
TASK_SETTINGS = ("motion_taps", "motion_curved", "deblur_act")


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    try:
        merge(*(Path(a) for a in sys.argv[1:]))
    except EvifError as exc:
        sys.exit(f"error: {exc}")


def merge(tasks: Path, fusion: Path, out: Path) -> None:
    t, f = load_checkpoint(tasks), load_checkpoint(fusion)  # tensors and plain data only
    def weighted(cfg: dict) -> dict:
        return {k: v for k, v in cfg.items() if k not in TASK_SETTINGS}
    if weighted(t["config"]) != weighted(f["config"]):
        raise InputFileError(f"{tasks}: another model configuration than {fusion}'s")
    model = {k: (t["model"][k] if k.startswith(TASK_NETWORKS) else v)
             for k, v in f["model"].items()}
    config = {**f["config"], **{k: t["config"][k] for k in TASK_SETTINGS if k in t["config"]}}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "iter": f["iter"], "config": config, "stage": 3}, out)
    print(f"wrote {out}: task networks of {tasks}, the rest of {fusion}")


if __name__ == "__main__":
    main()
