"""The rig's node graph, defined once: used by launch/rig.launch.py (ros2 launch) and by
``evif rig`` (plain rclpy, one executor).

``config/rig.yaml`` holds every node's parameters in ``/node: ros__parameters:`` form;
the source switches (live rig, synthetic rig, AEDAT4 file, bag) are overrides on top.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from evif_ros.errors import ConfigError, InputFileError
from evif_ros.runtime import topics

# executable (console script) -> node class
NODES = {
    "davis_driver": "evif_ros.ros.nodes.davis_driver:DavisDriver",
    "ir_driver": "evif_ros.ros.nodes.ir_driver:IrDriver",
    "evif_node": "evif_ros.ros.nodes.evif_node:EvifNode",
    "event_renderer": "evif_ros.ros.nodes.event_renderer:EventRenderer",
}
DRIVERS = ("davis_driver", "ir_driver")
SOURCES = ("live", "synthetic", "aedat4", "bag")  # one name each, as the drivers call them
# which nodes each host of a two-host setup runs (DDS carries the topics between them):
# the rig computer runs the drivers, the GPU computer the inference and the renderer
ROLES = {"all": tuple(NODES), "drivers": DRIVERS,
         "inference": ("evif_node", "event_renderer")}


def node_class(executable: str):
    module, cls = NODES[executable].split(":")
    return getattr(importlib.import_module(module), cls)


def load_params(path: Path) -> dict[str, dict]:
    """``{node: {param: value}}`` from a ros__parameters YAML; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except UnicodeDecodeError:
        raise InputFileError(f"{path}: not a text file (parameters YAML expected)") from None
    except yaml.YAMLError as exc:
        raise InputFileError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of node names to ros__parameters, got "
                          f"a {type(data).__name__}")
    out = {}
    for key, body in data.items():
        name = key.strip("/")
        if name not in NODES:
            raise ConfigError(f"{path}: unknown node '{key}' (nodes: {', '.join(NODES)})")
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise ConfigError(f"{path}: '{key}' needs a ros__parameters mapping")
        out[name] = dict(body["ros__parameters"] or {})
    return out


def source_overrides(source: str, scenario: str = "day", file: str = "", seed: int = 0,
                     duration: float = 10.0, rate: float = 1.0, role: str = "all"
                     ) -> tuple[list[str], dict]:
    """Nodes to run and parameter overrides for a source; the bag source replaces the
    drivers with a replay (see ``evif replay``); ``role`` keeps only one host's nodes
    (:data:`ROLES`)."""
    if source not in SOURCES:
        raise ConfigError(f"source:={source} is not one of {', '.join(SOURCES)}")
    if role not in ROLES:
        raise ConfigError(f"role:={role} is not one of {', '.join(ROLES)}")
    nodes = list(NODES)
    over: dict[str, dict] = {n: {} for n in NODES}
    if source == "synthetic":
        common = {"scenario": scenario, "seed": seed, "duration": duration}
        over["davis_driver"] = {"source": "synthetic", "publish_clock": True, "rate": rate,
                                **common}
        over["ir_driver"] = {"source": "synthetic", "use_sim_time": True, **common}
    elif source == "aedat4":
        if not file:
            raise ConfigError("source:=aedat4 needs file:=<recording.aedat4>")
        over["davis_driver"] = {"source": "aedat4", "file": file, "publish_clock": True,
                                "rate": rate}
        nodes.remove("ir_driver")  # an AEDAT4 file holds no IR frames
    elif source == "bag":
        if not file:
            raise ConfigError("source bag needs a rosbag2 folder or .mcap file (replay.launch.py "
                              "bag:=, evif rig --bag)")
        nodes = [n for n in nodes if n not in DRIVERS]
    return [n for n in nodes if n in ROLES[role]], over


def node_parameters(config: Path, source: str, extra: dict | None = None, **kw
                    ) -> dict[str, dict]:
    """``{node: parameters}`` of the graph for a source: the YAML, the source's overrides,
    then ``extra``."""
    names, over = source_overrides(source, **kw)
    params = load_params(config)
    extra = extra or {}
    return {name: {**params.get(name, {}), **over.get(name, {}), **extra.get(name, {})}
            for name in names}


def static_transform_arguments(calibration: str | Path) -> list[str] | None:
    """``tf2_ros static_transform_publisher`` arguments for the thermal camera's pose in
    the event camera's frame (``davis`` -> ``ir``), from a calibration with extrinsics
    (`evif calibrate --bag`); None for one without (a homography alone has no pose)."""
    from evif_ros.runtime.calibration import load_calibration

    geo = load_calibration(Path(calibration)).geometry
    if geo is None:
        return None
    c, q = geo.ir_pose_in_davis()
    values = {"x": c[0], "y": c[1], "z": c[2], "qx": q[0], "qy": q[1], "qz": q[2], "qw": q[3]}
    args = [x for k, v in values.items() for x in (f"--{k}", f"{v:.9f}")]
    return args + ["--frame-id", topics.DAVIS_FRAME, "--child-frame-id", topics.IR_FRAME]
