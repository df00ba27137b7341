"""The layer contracts (.importlinter) hold, and they catch what they are for: a node that
imports the simulator inside a function, as davis_driver did before the regroup."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / ".importlinter"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_contracts_hold_on_this_tree():
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout[-2000:]
    contracts = (ROOT / ".importlinter").read_text().count("[importlinter:contract:")
    assert contracts >= 6
    assert "BROKEN" not in res.stdout and res.stdout.count("KEPT") == contracts


def test_a_function_level_simulator_import_in_a_node_breaks_them(tmp_path):
    shutil.copytree(ROOT / "evif_ros", tmp_path / "evif_ros",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    node = tmp_path / "evif_ros" / "ros" / "nodes" / "davis_driver.py"
    # the import main had at 444caa9 (nodes/davis_driver.py:107), inside a method
    node.write_text(node.read_text() + "\n\ndef _open_synthetic(p):\n"
                    "    from evif_ros.sim.rig import synthetic_rig_config\n"
                    "    return synthetic_rig_config(p)\n")
    res = _lint(tmp_path)
    assert res.returncode != 0
    assert "evif_ros.ros.nodes.davis_driver -> evif_ros.sim.rig" in res.stdout
