"""ros2 launch evif_ros rig.launch.py [source:=live|sim|aedat4] [config:=...] [model:=...]

Starts the rig graph defined in evif_ros.graph (the same graph `evif rig` runs without
ros2 launch) with the parameters of config/rig.yaml.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from evif_ros.graph import load_params, source_overrides

SHARE = get_package_share_directory("evif_ros")


def _nodes(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    config = get("config")
    use_sim_time = get("use_sim_time").lower() == "true"
    nodes, over = source_overrides(get("source"), get("scenario"), get("file"))
    params = load_params(config)
    if get("model"):
        over["evif_node"]["model_path"] = get("model")
    over["evif_node"]["device"] = get("device")
    actions = []
    for name in nodes:
        p = {**params.get(name, {}), **over.get(name, {})}
        p.setdefault("use_sim_time", use_sim_time)
        actions.append(Node(package="evif_ros", executable=name, name=name, output="screen",
                            parameters=[p]))
    if get("rviz").lower() == "true":
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2",
                            arguments=["-d", os.path.join(SHARE, "config", "evif.rviz")]))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("source", default_value="live",
                              description="live (DAVIS + thermal camera), sim (synthetic rig) "
                                          "or aedat4 (a recording, events only)"),
        DeclareLaunchArgument("config", default_value=os.path.join(SHARE, "config", "rig.yaml"),
                              description="Node parameters (/node: ros__parameters: YAML)"),
        DeclareLaunchArgument("model", default_value="",
                              description="TorchScript model: a path or a shipped name "
                                          "(evif_lite.ts, evif_gpu.ts); empty = evif_lite.ts"),
        DeclareLaunchArgument("device", default_value="auto",
                              description="auto (CUDA when present), cpu or cuda"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="Follow /clock (replays)"),
        DeclareLaunchArgument("scenario", default_value="day",
                              description="Synthetic rig scenario (source:=sim)"),
        DeclareLaunchArgument("file", default_value="",
                              description="AEDAT4 file (source:=aedat4)"),
        DeclareLaunchArgument("rviz", default_value="true",
                              description="Start RViz with config/evif.rviz"),
        OpaqueFunction(function=_nodes),
    ])
