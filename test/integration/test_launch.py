"""Launch files name only executables, parameters and files the package installs (the
launch files run for real in test_ros2_tools.py)."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from evif_ros.errors import ConfigError
from evif_ros.ros.graph import NODES, load_params, node_class, source_overrides

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = sorted((ROOT / "launch").glob("*.launch.py"))


def declared_parameters(executable: str) -> set[str]:
    src = Path(__import__(node_class(executable).__module__, fromlist=["x"]).__file__)
    return set(re.findall(r'declare\(\s*self,\s*"([a-z_]+)"', src.read_text()))


def console_scripts() -> set[str]:
    setup = (ROOT / "setup.py").read_text()
    nodes = ast.literal_eval(re.search(r"NODES = (\(.*?\))", setup, re.S).group(1))
    return set(nodes) | {"evif"}


def test_launch_files_parse_and_declare_described_arguments():
    assert {p.name for p in LAUNCH} == {"rig.launch.py", "replay.launch.py"}
    for path in LAUNCH:
        tree = ast.parse(path.read_text(), str(path))
        assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
                   for n in tree.body)
        for call in [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                     and getattr(n.func, "id", "") == "DeclareLaunchArgument"]:
            kws = {k.arg for k in call.keywords}
            assert "description" in kws, (path.name, ast.unparse(call))


def test_launch_files_name_installed_executables_and_files():
    scripts = console_scripts()
    for path in LAUNCH:
        text = path.read_text()
        for exe in re.findall(r'executable="([a-z_0-9]+)"', text):
            # others' executables: rviz2 and tf2_ros's (the launch file checks they exist)
            assert exe in ("rviz2", "static_transform_publisher") or exe in scripts, exe
        for folder, name in re.findall(r'os\.path\.join\(SHARE, "(\w+)", "([\w.]+)"\)', text):
            assert (ROOT / folder / name).is_file(), (folder, name)
    assert set(NODES) <= scripts


def test_config_parameters_are_declared_by_their_nodes():
    params = load_params(ROOT / "config" / "rig.yaml")
    assert set(params) == set(NODES)
    for node, values in params.items():
        unknown = set(values) - declared_parameters(node)
        assert not unknown, (node, unknown)


@pytest.mark.parametrize("source", ["live", "synthetic", "aedat4", "bag"])
def test_source_overrides_only_set_declared_parameters(source):
    names, over = source_overrides(source, file="x")
    for node in names:
        unknown = set(over.get(node, {})) - declared_parameters(node) - {"use_sim_time"}
        assert not unknown, (source, node, unknown)


def test_bad_config_is_a_clear_error(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"/no_such_node": {"ros__parameters": {}}}))
    with pytest.raises(ConfigError, match="unknown node"):
        load_params(p)


def test_rviz_config_shows_the_outputs():
    rviz = yaml.safe_load((ROOT / "config" / "evif.rviz").read_text())
    shown = {d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"]}
    assert {"/evif/fused", "/evif/ir_deblurred", "/evif/visible", "/davis/image_raw",
            "/evif/events_image"} <= shown
