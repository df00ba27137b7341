"""ros2 launch evif_ros rig.launch.py [source:=live|synthetic|aedat4] [rviz:=true] [model:=...]
    [calibration:=rig.yaml]

Starts the rig graph defined in evif_ros.ros.graph (the same graph `evif rig` runs without
ros2 launch) with the parameters of config/rig.yaml. The synthetic rig (source:=synthetic)
takes rate:=, duration:= and seed:=; its default rate is slow enough for CPU inference to keep
up with every IR frame (raise it on a GPU).
"""

import os

from ament_index_python.packages import (
    PackageNotFoundError,
    get_package_prefix,
    get_package_share_directory,
)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from evif_ros.ros.graph import node_parameters, static_transform_arguments

SHARE = get_package_share_directory("evif_ros")
# 30 Hz IR frames at 0.02x real time: one window every 1.7 s, which the shipped CPU model
# (0.7-1.1 s per window on 2 cores) serves without dropping any
SIM_RATE = 0.02


def _number(get, name: str, kind: type):
    try:
        return kind(get(name))
    except ValueError:
        raise ValueError(f"{name}:={get(name)} is not a valid {kind.__name__}") from None


def _rviz(get) -> list:
    if get("rviz").lower() != "true":
        return []
    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        # checked before any node starts, so nothing is left running
        raise RuntimeError("rviz:=true but the rviz2 package is not installed: install it "
                           "(apt install ros-$ROS_DISTRO-rviz2) or pass rviz:=false") from None
    return [Node(package="rviz2", executable="rviz2", name="rviz2",
                 arguments=["-d", os.path.join(SHARE, "config", "evif.rviz")])]


def _static_tf(calibration: str) -> list:
    """davis -> ir from a calibration with extrinsics, so RViz's fixed frame `davis` exists
    (tf2_ros comes with every ROS 2 install that has rviz2)."""
    args = static_transform_arguments(calibration) if calibration else None
    if args is None:
        return []
    try:
        get_package_prefix("tf2_ros")
    except PackageNotFoundError:
        return [LogInfo(msg="calibration:= has the thermal camera's pose, but tf2_ros is not "
                            "installed: no davis -> ir transform (apt install "
                            "ros-$ROS_DISTRO-tf2-ros)")]
    return [Node(package="tf2_ros", executable="static_transform_publisher",
                 name="davis_to_ir", arguments=args, output="screen")]


def _nodes(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    use_sim_time = get("use_sim_time").lower() == "true"
    evif = {"device": get("device"), **({"model_path": get("model")} if get("model") else {})}
    calib = get("calibration")
    extra = {"evif_node": evif}
    if calib:  # one file for all: the node's mapping, both drivers' CameraInfo
        calib = os.path.abspath(calib)
        for name in ("evif_node", "davis_driver", "ir_driver"):
            extra.setdefault(name, {})["calibration"] = calib
    params = node_parameters(get("config"), get("source"), extra,
                             scenario=get("scenario"), file=get("file"),
                             seed=_number(get, "seed", int),
                             duration=_number(get, "duration", float),
                             rate=_number(get, "rate", float) if get("rate") else
                             SIM_RATE if get("source") == "synthetic" else 1.0, role=get("role"))
    rviz = _rviz(get) if get("role") != "drivers" else []
    tf = _static_tf(calib) if get("role") != "inference" else []
    actions = []
    for name, p in params.items():
        p.setdefault("use_sim_time", use_sim_time)
        actions.append(Node(package="evif_ros", executable=name, name=name, output="screen",
                            parameters=[p]))
    return actions + tf + rviz


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("source", default_value="live",
                              description="live (DAVIS + thermal camera), synthetic (the "
                                          "synthetic rig) or aedat4 (a recording, events only)"),
        DeclareLaunchArgument("role", default_value="all",
                              description="all, drivers (the rig computer of a two-host "
                                          "setup) or inference (evif_node + event_renderer, "
                                          "the GPU computer); same ROS_DOMAIN_ID on both"),
        DeclareLaunchArgument("config", default_value=os.path.join(SHARE, "config", "rig.yaml"),
                              description="Node parameters (/node: ros__parameters: YAML)"),
        DeclareLaunchArgument("model", default_value="",
                              description="TorchScript model: a path or a shipped name "
                                          "(evif_rt.ts, evif_hq.ts, evif_gpu.ts, ...); empty = "
                                          "evif_rt.ts"),
        DeclareLaunchArgument("device", default_value="auto",
                              description="auto (CUDA when present), cpu or cuda"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="Follow /clock (replays)"),
        DeclareLaunchArgument("scenario", default_value="day",
                              description="Synthetic rig scenario (source:=synthetic)"),
        DeclareLaunchArgument("rate", default_value="",
                              description="Playback speed vs real time; empty = 0.02 for "
                                          "source:=synthetic (CPU inference keeps up; use 1.0 on a "
                                          "GPU), 1.0 for source:=aedat4"),
        DeclareLaunchArgument("duration", default_value="10.0",
                              description="Seconds of synthetic rig time (source:=synthetic)"),
        DeclareLaunchArgument("seed", default_value="0",
                              description="Synthetic rig seed (source:=synthetic)"),
        DeclareLaunchArgument("file", default_value="",
                              description="AEDAT4 file (source:=aedat4)"),
        DeclareLaunchArgument("calibration", default_value="",
                              description="Rig calibration YAML (evif calibrate): the IR "
                                          "mapping, both cameras' CameraInfo and the davis -> "
                                          "ir transform; empty = config's / the synthetic "
                                          "rig's"),
        DeclareLaunchArgument("rviz", default_value="false",
                              description="Start RViz with config/evif.rviz (needs rviz2)"),
        OpaqueFunction(function=_nodes),
    ])
