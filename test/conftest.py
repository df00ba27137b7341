"""Test setup: DDS stays on this machine, and each test session gets its own domain."""

import os

# Must be set before anything imports rclpy (Fast DDS reads them at participant creation).
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def ros():
    """An rclpy context for the module's in-process test nodes."""
    import rclpy
    rclpy.init()
    yield
    rclpy.shutdown()


def tiny_config():
    """A very small EVIF model: real networks, real TorchScript, CPU-cheap."""
    from evif_ros.learning.pipeline import config_for
    return config_for("lite", sub_windows=2, recon_base=4, deblur_base=8, fusion_base=8,
                      fusion_dim=16)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A simulated dataset of 6 training and 2 test samples (`evif dataset`'s writer)."""
    from evif_ros.sim.dataset import write_dataset
    d = tmp_path_factory.mktemp("ds")
    write_dataset(d, "train", 6, seed=3, shard_size=6, workers=1, progress=False)
    write_dataset(d, "test", 2, seed=4, shard_size=2, workers=1, progress=False)
    return d


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained tiny EVIF model exported with `evif export`'s writer."""
    import torch

    from evif_ros.learning.export import save
    from evif_ros.learning.pipeline import EvifPipeline
    torch.manual_seed(0)
    cfg = tiny_config()
    path = tmp_path_factory.mktemp("model") / "tiny.ts"
    save(EvifPipeline(cfg), cfg, path)
    return path
