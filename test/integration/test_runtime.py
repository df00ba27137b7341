"""The CPU runtime's tuning: channels-last tensors, glibc's allocator, the inference
thread's cores. Each tuning must leave the outputs as they were and do what it says."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from evif_ros.errors import ConfigError
from evif_ros.paths import share_file
from evif_ros.ros.nodes.common import parse_cores
from evif_ros.runtime.calibration import load_calibration
from evif_ros.runtime.events import EVENT_DTYPE
from evif_ros.runtime.inference import EvifRunner
from evif_ros.runtime.model_file import load_exported


def _random_window(rng, calib, k, n=20_000):
    w, h = calib.davis_size
    exposure = calib.ir_exposure_ns
    ev = np.zeros(n, EVENT_DTYPE)
    ev["x"] = rng.integers(0, w, n)
    ev["y"] = rng.integers(0, h, n)
    ev["t"] = np.sort(rng.integers(-exposure // 2, exposure, n))
    ev["p"] = rng.integers(0, 2, n)
    ir = rng.integers(3000, 9000, calib.ir_size[::-1]).astype(np.uint16)
    edges = np.linspace(-exposure // 2, exposure // 2, k + 1).astype(np.int64)
    return ir, ev, 0, exposure, edges


def test_channels_last_runner_matches_the_plain_layout_within_one_level():
    calib = load_calibration(share_file("calibration", "synthetic_rig.yaml"))
    path = share_file("models", "evif_rt.ts")
    fast = EvifRunner(path, calib, "cpu")
    assert fast.channels_last
    plain = EvifRunner(path, calib, "cpu")
    plain.model, _ = load_exported(path)  # a fresh module in torch's default layout
    plain.channels_last = False
    assert next(fast.model.parameters()).is_contiguous(memory_format=torch.channels_last)
    assert next(plain.model.parameters()).is_contiguous()
    rng = np.random.default_rng(4)
    for _ in range(3):  # the recurrent state carried, as in the node
        window = _random_window(rng, calib, fast.k)
        a, b = fast(*window), plain(*window)
        for name in ("fused", "visible", "ir_deblurred"):
            diff = np.abs(getattr(a, name).astype(np.int32) - getattr(b, name))
            assert diff.max() <= 1, name


FAULTS = """
import resource, sys
import numpy as np
if sys.argv[1] == "retain":
    from evif_ros.runtime.malloc import retain_freed_memory
    assert retain_freed_memory()
def frame():  # a forward pass's pattern: many multi-MiB buffers alive at once, then freed
    bufs = [np.ones(3 * 2**20 // 8) for _ in range(24)]
    del bufs
frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    frame()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_retained_memory_is_not_faulted_in_again_every_frame():
    def faults(mode):
        res = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return int(res.stdout)
    pages = 10 * 24 * 3 * 2**20 // 4096  # what re-faulting every buffer of every frame costs
    assert faults("default") > pages // 2
    assert faults("retain") < pages // 50


def test_parse_cores_by_hand():
    assert parse_cores("", "c") == set()
    assert parse_cores("0", "c") == {0}
    assert parse_cores(" 0 , 0-0 ", "c") == {0}
    n = torch.multiprocessing.cpu_count()
    if n >= 2:
        assert parse_cores(f"0-{n - 1}", "c") == set(range(n))
    with pytest.raises(ConfigError, match="parameter 'inference_cores': 'a' is not"):
        parse_cores("a", "inference_cores")
    with pytest.raises(ConfigError, match=f"core {n + 3} does not exist"):
        parse_cores(f"{n + 3}", "inference_cores")
