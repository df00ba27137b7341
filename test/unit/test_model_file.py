"""Exported model files load under other torch versions: a GPU machine's CUDA torch is
rarely this project's pinned CPU build (torch 2.11 on the GPU machine here could not load
files scripted with ``F.interpolate`` by torch 2.13)."""

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from evif_ros.learning.export import example_inputs, rescript, save
from evif_ros.learning.pipeline import EvifConfig, EvifPipeline, config_for
from evif_ros.paths import share_file
from evif_ros.runtime.model_file import load_exported

NEW_OPS_FILE = Path(__file__).parents[1] / "fixtures" / "aten_ops_new_in_torch_2_13.txt"
NEW_OPS = {line.strip() for line in NEW_OPS_FILE.read_text().splitlines()
           if line.strip() and not line.startswith("#")}
SHIPPED = ("evif_rt.ts", "evif_rt_no_enhance.ts", "evif_hq.ts",
           "evif_gpu.ts", "frame_deblur.ts")


def called_ops(path: Path) -> set[str]:
    """ATen ops the file's serialized code calls, in branches never taken too: a loading
    torch compiles all of it."""
    with zipfile.ZipFile(path) as z:
        code = "".join(z.read(n).decode() for n in z.namelist()
                       if "/code/" in n and n.endswith(".py"))
    return {f"aten::{name}" for name in re.findall(r"\btorch\.(\w+)\(", code)}


def test_op_list_was_read_from_two_torch_versions():
    assert "aten::_upsample_lanczos2d_aa" in NEW_OPS
    assert "aten::conv2d" not in NEW_OPS and len(NEW_OPS) >= 5


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_files_call_no_op_that_torch_2_11_lacks(name):
    ops = called_ops(share_file("models", name))
    assert "aten::conv2d" in ops  # the parser sees the networks' code
    assert not ops & NEW_OPS


@pytest.mark.parametrize("size", ["rt2", "rt", "lite"])
def test_freshly_exported_sizes_call_no_op_that_torch_2_11_lacks(size, tmp_path):
    cfg = config_for(size, sub_windows=2)
    save(EvifPipeline(cfg), cfg, tmp_path / "m.ts")
    ops = called_ops(tmp_path / "m.ts")
    assert "aten::upsample_bilinear2d" in ops and not ops & NEW_OPS


# an "old" file: the networks' 2x upsampling scripted through F.interpolate, as shipped
# before; in a fresh interpreter, so no TorchScript type cache of this process is reused
OLD_STYLE = """
import sys, torch, torch.nn.functional as F
from evif_ros.learning import deblur, recon
from evif_ros.learning.export import save
from evif_ros.learning.pipeline import EvifPipeline, config_for
def up2x(x):
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
recon.up2x = deblur.up2x = up2x
torch.manual_seed(0)
cfg = config_for("rt2", sub_windows=2)
save(EvifPipeline(cfg), cfg, sys.argv[1], stage=3, iter=7)
"""


@pytest.mark.slow  # trains or runs a whole CLI flow: make test, not test-fast
def test_rescript_makes_an_old_file_loadable_with_the_same_outputs(tmp_path):
    old_path, new_path = tmp_path / "old.ts", tmp_path / "new.ts"
    script = tmp_path / "old_style.py"  # TorchScript reads the function's source file
    script.write_text(OLD_STYLE)
    subprocess.run([sys.executable, str(script), str(old_path)], check=True)
    assert "aten::_upsample_lanczos2d_aa" in called_ops(old_path)
    info = rescript(old_path, new_path)
    assert not called_ops(new_path) & NEW_OPS
    assert info["max_diff_old"] == 0.0
    old, old_meta = load_exported(old_path)
    new, new_meta = load_exported(new_path)
    assert new_meta == old_meta and new_meta["iter"] == 7
    ir, ev, sub = example_inputs(EvifConfig(**new_meta["config"]), h=40, w=60, seed=3)
    with torch.no_grad():
        a, b = old(ir, ev, sub, []), new(ir, ev, sub, [])
    for x, y in zip(a[:3], b[:3]):
        assert torch.equal(x, y)


def test_rescript_refuses_a_file_whose_weights_do_not_fit(tmp_path):
    cfg = config_for("rt2", sub_windows=2)
    save(EvifPipeline(cfg), cfg, tmp_path / "m.ts")
    with zipfile.ZipFile(tmp_path / "m.ts") as z:  # same weights, metadata of another size
        files = {n: z.read(n) for n in z.namelist()}
    meta_name = next(n for n in files if n.endswith("extra/evif.json"))
    meta = json.loads(files[meta_name])
    meta["config"] = config_for("lite", sub_windows=2).to_dict()
    files[meta_name] = json.dumps(meta).encode()
    with zipfile.ZipFile(tmp_path / "bad.ts", "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    from evif_ros.errors import InputFileError
    with pytest.raises(InputFileError, match="bad.ts: its weights do not fit"):
        rescript(tmp_path / "bad.ts", tmp_path / "out.ts")
