"""The runtime path loads the exported model with torch alone (DESIGN.md): importing the
inference node, the runner or the drivers pulls in neither the model's Python code, the
trainer nor the simulator."""

import subprocess
import sys

import pytest

HEAVY = ("evif_ros.sim", "evif_ros.model", "evif_ros.evaluation", "evif_ros.cli")


@pytest.mark.parametrize("module", ["evif_ros.nodes.evif_node", "evif_ros.inference",
                                    "evif_ros.nodes.davis_driver", "evif_ros.nodes.ir_driver",
                                    "evif_ros.drivers.davis_sources"])
def test_runtime_modules_do_not_import_training_or_simulation(module):
    code = (f"import sys, {module}\n"
            "print('\\n'.join(m for m in sys.modules if m.startswith('evif_ros')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    loaded = res.stdout.split()
    assert module in loaded  # the probe really imported it
    assert [m for m in loaded if m.startswith(HEAVY)] == []


def test_inference_imports_only_the_core():
    code = ("import sys, evif_ros.inference\n"
            "print('\\n'.join(m for m in sys.modules if m.startswith('evif_ros')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    loaded = set(res.stdout.split())
    assert loaded - {"evif_ros", "evif_ros.errors", "evif_ros.inference"} <= {
        m for m in loaded if m.startswith("evif_ros.core")}
