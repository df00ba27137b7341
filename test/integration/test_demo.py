"""`evif demo` (what `make demo` runs), shortened: the whole graph with the shipped model."""

import os

import pytest

from evif_ros.apps.cli import main
from evif_ros.apps.rig_runner import demo_threads
from evif_ros.ros.bags import open_bag
from evif_ros.runtime import topics


@pytest.mark.timeout(400)
def test_demo_runs_the_graph_and_writes_outputs(tmp_path, capsys):
    cores = os.sched_getaffinity(0)
    assert main(["demo", "--out", str(tmp_path), "--duration", "0.3", "--rate", "0.05"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "| model |" in printed and "fused outputs" in printed
    assert "real-time factor: 0.05x" in printed and "| end_to_end |" in printed
    # the inference node ran in its own process and stopped cleanly on SIGINT
    log = (tmp_path / "logs" / "evif_node.log").read_text()
    assert "model " in log and "Traceback" not in log
    threads = demo_threads(len(cores))
    if len(cores) > threads:  # the model's threads had cores of their own; ours came back
        assert f"{threads} threads, cores {sorted(cores)[-threads:]}" in log, log
    assert os.sched_getaffinity(0) == cores
    assert "evif_node exited" not in captured.err
    with open_bag(tmp_path / "outputs") as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts.get(topics.FUSED, 0) >= 1
    assert counts.get(topics.IR_DEBLURRED) == counts[topics.FUSED]
    assert list(tmp_path.glob("frames_*.png"))
