"""ros2 launch evif_ros replay.launch.py bag:=DIR [rate:=1.0] [model:=...]

Replays a rosbag2 (our recordings or libcaer_driver bags) with /clock through the same
graph as rig.launch.py minus the drivers (evif_ros.ros.graph, source "bag").
"""

import os

from ament_index_python.packages import get_package_prefix, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from evif_ros.ros.graph import node_parameters

SHARE = get_package_share_directory("evif_ros")


def _nodes(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    evif = {"device": get("device"), **({"model_path": get("model")} if get("model") else {})}
    params = node_parameters(get("config"), "bag", {"evif_node": evif}, file=get("bag"))
    # colcon installs console scripts in lib/evif_ros, not on PATH
    evif = os.path.join(get_package_prefix("evif_ros"), "lib", "evif_ros", "evif")
    # playback starts once evif_node has loaded its model and subscribed, so the first
    # IR frames are not published to nobody
    actions = [ExecuteProcess(cmd=[evif, "replay", get("bag"), "--rate", get("rate"),
                                   "--wait-for", "evif_node"],
                              name="evif_replay", output="screen")]
    for name, p in params.items():
        p["use_sim_time"] = True
        actions.append(Node(package="evif_ros", executable=name, name=name, output="screen",
                            parameters=[p]))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 directory or .mcap file to replay"),
        DeclareLaunchArgument("rate", default_value="1.0", description="Replay speed"),
        DeclareLaunchArgument("config", default_value=os.path.join(SHARE, "config", "rig.yaml"),
                              description="Node parameters (/node: ros__parameters: YAML)"),
        DeclareLaunchArgument("model", default_value="",
                              description="TorchScript model; empty = the shipped evif_rt.ts"),
        DeclareLaunchArgument("device", default_value="auto",
                              description="auto (CUDA when present), cpu or cuda"),
        OpaqueFunction(function=_nodes),
    ])
