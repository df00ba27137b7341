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

TASK_NETWORKS = ("recon.", "deblur.")


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    tasks, fusion, out = (Path(a) for a in sys.argv[1:])
    t = torch.load(tasks, map_location="cpu", weights_only=False)
    f = torch.load(fusion, map_location="cpu", weights_only=False)
    if t["config"] != f["config"]:
        sys.exit(f"{tasks} and {fusion} hold different model configurations")
    model = {k: (t["model"][k] if k.startswith(TASK_NETWORKS) else v)
             for k, v in f["model"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "iter": f["iter"], "config": f["config"], "stage": 3}, out)
    print(f"wrote {out}: task networks of {tasks}, the rest of {fusion}")


if __name__ == "__main__":
    main()
