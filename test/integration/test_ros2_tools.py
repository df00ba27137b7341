"""The package through the real ROS 2 tools, as a user runs it: `pip install .`, `colcon
build` (plain and --symlink-install), `ros2 run`, `ros2 launch` of both launch files,
`ros2 topic echo`, `ros2 param describe`, and Ctrl-C to the launch process and to its whole
process group. The tools come from ../shared/ros2-cli (launch, ros2cli) and PyPI (colcon);
where the wheels are absent these tests skip with that reason.
"""

from __future__ import annotations

import ast
import re
import signal
import subprocess
import sys
import sysconfig
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
import ros2_tools as rt

ROOT = rt.ROOT
NODES = {"davis_driver", "ir_driver", "event_renderer", "evif_node"}
EXECUTABLES = NODES | {"evif"}
IMAGE = "sensor_msgs/msg/Image"



@pytest.fixture(scope="module")
def tools():
    """Skip where the wheels are absent; where they exist `make test` installed them, so
    a missing tool is a failure."""
    why = rt.tools_missing()
    if why.startswith(str(rt.WHEELS)):
        pytest.skip(why)
    if why:
        pytest.fail(why)


# --- package.xml against what the code uses (no tools needed) ---------------------------
def _imports(paths) -> set[str]:
    mods = set()
    for path in paths:
        for n in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(n, ast.Import):
                mods |= {a.name.split(".")[0] for a in n.names}
            elif isinstance(n, ast.ImportFrom) and n.level == 0:
                mods.add(n.module.split(".")[0])
    return mods - set(sys.stdlib_module_names) - {"evif_ros", "__future__"}


def _ros_packages() -> set[str]:
    """ROS packages as the ament index of this environment knows them (every ROS wheel
    registers itself there, as a ROS distribution's packages do)."""
    index = Path(sys.prefix) / "share" / "ament_index" / "resource_index" / "packages"
    return {p.name for p in index.iterdir()}


def _declared() -> dict[str, set[str]]:
    root = ET.parse(ROOT / "package.xml").getroot()
    out: dict[str, set[str]] = {}
    for tag in ("depend", "exec_depend", "build_depend", "test_depend"):
        out[tag] = {e.text.strip() for e in root.findall(tag)}
    return out


def test_package_xml_declares_what_the_code_imports_and_launches():
    code = list((ROOT / "evif_ros").rglob("*.py"))
    launch = list((ROOT / "launch").glob("*.launch.py"))
    ros = _ros_packages()
    assert {"rclpy", "sensor_msgs", "ament_index_python"} <= ros  # the index is real
    imported = _imports(code + launch)
    launched = {m for p in launch for m in re.findall(r'package="(\w+)"', p.read_text())}
    # rviz2 and tf2_ros are optional: the launch file checks for them
    launched -= {"evif_ros", "rviz2", "tf2_ros"}
    used_ros = {m for m in imported if m in ros} | launched
    exec_deps = _declared()["exec_depend"] | _declared()["depend"]
    declared_ros = {d for d in exec_deps if not d.startswith("python3-")}
    assert used_ros - declared_ros == set(), "imported/launched but not in package.xml"
    assert declared_ros - used_ros == set(), \
        "declared in package.xml but used nowhere"
    # rosdep keys of the Python libraries: each one imported, and every non-ROS import
    # either has a key or is one of the pip-only packages the comment names
    keys = {"python3-numpy": "numpy", "python3-opencv": "cv2", "python3-yaml": "yaml",
            "python3-tqdm": "tqdm", "python3-matplotlib": "matplotlib",
            "python3-scipy": "scipy"}
    py_deps = {d for d in exec_deps if d.startswith("python3-")}
    assert py_deps <= set(keys), py_deps - set(keys)
    assert {keys[d] for d in py_deps} <= imported
    pip_only = {"torch", "dv_processing", "rosbags", "mcap"}
    assert imported - ros - {keys[d] for d in py_deps} - pip_only == set()
    assert "rviz2" in (ROOT / "launch" / "rig.launch.py").read_text()


def test_requirements_hold_only_what_is_imported():
    """No pinned dependency that nothing imports (scipy was one)."""
    names = {"opencv-python-headless": "cv2", "PyYAML": "yaml", "dv-processing":
             "dv_processing", "ros-rmw-fastrtps-cpp": None}
    imported = _imports(list((ROOT / "evif_ros").rglob("*.py"))
                        + list((ROOT / "launch").glob("*.launch.py")))
    for req in ("requirements-nonros.txt", "requirements.txt"):
        for line in (ROOT / req).read_text().splitlines():
            if not line or line.startswith(("#", "-r")):
                continue
            dist = line.split("==")[0]
            module = names.get(dist, dist.removeprefix("ros-").replace("-", "_"))
            if module is not None:  # the RMW is loaded by rclpy, never imported
                assert module in imported, f"{req}: {dist} is not imported anywhere"


# --- installs -------------------------------------------------------------------------
def test_pip_install_into_a_new_venv_ships_the_data(tmp_path):
    """`pip install .` (not editable) into a fresh venv: shipped files land in
    <venv>/share/evif_ros and the package finds them there."""
    src = rt.source_tree(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    # the dependencies come from the test venv; the package itself from the new install
    (purelib / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                        "install", "--quiet", "--no-deps", str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    share = venv / "share" / "evif_ros"
    for rel in ("models/evif_rt.ts", "models/evif_hq.ts", "models/evif_gpu.ts",
                "models/frame_deblur.ts", "models/cards/evif_hq.md",
                "launch/rig.launch.py", "config/rig.yaml", "calibration/synthetic_rig.yaml",
                "package.xml"):
        assert (share / rel).is_file(), rel
    assert not (share / "models" / "eval").exists()
    assert {p.name for p in (venv / "bin").iterdir()} >= EXECUTABLES
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import evif_ros.paths as p; print(p.__file__); "
                            "print(p.share_file('models', 'evif_gpu.ts'))"],
                           cwd=tmp_path, capture_output=True, text=True, env=rt.env())
    module, model = probe.stdout.split()
    assert module.startswith(str(venv)) and model == str(share / "models" / "evif_gpu.ts")


@pytest.fixture(scope="module")
def workspace(tools, tmp_path_factory):
    """A colcon workspace with the package built as `colcon build` does by default."""
    ws = tmp_path_factory.mktemp("ws")
    rt.source_tree(ws / "src" / "evif_ros")
    r = rt.colcon_build(ws)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return ws


def _executables(ws: Path) -> set[str]:
    r = rt.run_in(ws, "ros2 pkg executables evif_ros")
    assert r.returncode == 0, r.stderr
    return {line.split()[1] for line in r.stdout.splitlines() if line.strip()}


def test_colcon_build_and_ros2_run(workspace):
    assert _executables(workspace) == EXECUTABLES
    r = rt.run_in(workspace, "ros2 run evif_ros evif --help")
    assert r.returncode == 0 and "simulate" in r.stdout and "demo" in r.stdout, r.stderr
    probe = rt.run_in(workspace, "python -c \"import evif_ros.paths as p; "
                                 "print(p.share_file('models', 'evif_gpu.ts'))\"")
    assert probe.stdout.strip() == str(workspace / "install" / "evif_ros" / "share"
                                       / "evif_ros" / "models" / "evif_gpu.ts"), probe.stderr


def test_colcon_symlink_install(tools, tmp_path):
    ws = tmp_path / "ws"
    rt.source_tree(ws / "src" / "evif_ros")
    r = rt.colcon_build(ws, symlink=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert _executables(ws) == EXECUTABLES
    model = ws / "install" / "evif_ros" / "share" / "evif_ros" / "models" / "evif_gpu.ts"
    assert model.is_symlink() and model.resolve() == (ws / "src" / "evif_ros" / "models"
                                                      / "evif_gpu.ts").resolve()
    assert rt.run_in(ws, "ros2 run evif_ros evif --help").returncode == 0


# --- ros2 launch and Ctrl-C -----------------------------------------------------------
def _assert_clean_exit(launch: rt.Launch, rc: int, expected: set[str]) -> None:
    log = launch.text()
    assert rc == 0, log[-4000:]
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-4000:]
    exits = rt.process_exits(log)
    assert exits == {name: "cleanly" for name in expected}, (exits, log[-4000:])
    assert launch.group_alive() == [], "processes left running"


def _fused_then_interrupt(ws: Path, args: str, log: Path, expected: set[str], group: bool):
    with rt.Launch(ws, args, log) as launch:
        echo = rt.echo_once(ws, "/evif/fused", IMAGE, timeout=150)
        assert echo.returncode == 0 and "frame_id: davis" in echo.stdout, \
            echo.stdout[-1000:] + echo.stderr[-1000:] + launch.text()[-3000:]
        param = rt.run_in(ws, "ros2 param describe --no-daemon --spin-time 3 --timeout 30 "
                              "/evif_node max_pending")
        assert "Type: integer" in param.stdout and "Read only: true" in param.stdout, \
            param.stdout + param.stderr
        rc = launch.interrupt(group=group)
        _assert_clean_exit(launch, rc, expected)


def test_rig_launch_sim_fused_then_ctrl_c_to_launch(workspace, tmp_path):
    """With the quality tier's file by name (model:=evif_hq.ts); the next test runs the
    default one."""
    _fused_then_interrupt(workspace, "evif_ros rig.launch.py source:=synthetic rviz:=false "
                          "duration:=2 model:=evif_hq.ts", tmp_path / "launch.log", NODES,
                          group=False)
    assert "models/evif_hq.ts (K=6) on cpu" in (tmp_path / "launch.log").read_text()


def test_rig_launch_ctrl_c_in_a_terminal_while_the_model_runs(workspace, tmp_path):
    """rate:=1.0 keeps the CPU model busy all the time; SIGINT goes to the process group,
    so every node gets it twice (from the terminal and from launch)."""
    _fused_then_interrupt(workspace, "evif_ros rig.launch.py source:=synthetic rviz:=false "
                          "rate:=1.0 duration:=3 seed:=4", tmp_path / "launch.log", NODES,
                          group=True)


def test_replay_launch_of_a_simulated_bag(workspace, tmp_path):
    # playback waits for evif_node, not for the echo: 1 s of rig at a quarter speed keeps
    # outputs coming for 4 s, longer than `ros2 topic echo` takes to join on a loaded
    # machine (a 0.4 s bag at full speed was over before it had, in a fresh-clone CI run)
    sim = rt.run_in(workspace, f"ros2 run evif_ros evif simulate --out {tmp_path}/sim "
                               "--duration 1.0 --seed 3", timeout=300)
    assert sim.returncode == 0, sim.stderr[-2000:]
    _fused_then_interrupt(workspace, f"evif_ros replay.launch.py bag:={tmp_path}/sim/rig "
                          "rate:=0.25",
                          tmp_path / "launch.log", {"evif_replay", "evif_node",
                                                    "event_renderer"}, group=True)


def test_rviz_requested_but_not_installed_starts_nothing(workspace, tmp_path):
    assert rt.run_in(workspace, "ros2 pkg prefix rviz2").returncode != 0  # precondition
    with rt.Launch(workspace, "evif_ros rig.launch.py source:=synthetic rviz:=true",
                   tmp_path / "launch.log") as launch:
        rc = launch.proc.wait(120)
        log = launch.text()
        assert rc != 0 and "rviz:=true but the rviz2 package is not installed" in log, log
        assert "process started" not in log and "Traceback" not in log, log
        assert launch.group_alive() == []


def test_rig_launch_with_a_calibration_offers_the_transform_or_says_why_not(workspace,
                                                                           tmp_path):
    from evif_ros.paths import share_file
    from evif_ros.runtime.model_file import load_exported
    from evif_ros.sim.calibration import CalibrationRigConfig, ground_truth_calibration

    calib = tmp_path / "rig_calibration.yaml"
    # with the event sensor's contrast threshold, 1.5x the shipped file's reference, and a
    # latency of its events
    ref = load_exported(share_file("models", "evif_rt.ts"))[1]["recon_contrast_ref"]
    replace(ground_truth_calibration(CalibrationRigConfig()),
            davis_contrast=round(1.5 * ref, 4), davis_latency_ns=5_000_000).save(calib)
    assert rt.run_in(workspace, "ros2 pkg prefix tf2_ros").returncode != 0  # precondition
    with rt.Launch(workspace, f"evif_ros rig.launch.py source:=synthetic calibration:={calib} "
                   "duration:=1", tmp_path / "launch.log") as launch:
        _wait_for(launch, "no davis -> ir transform")
        _wait_for(launch, "on cpu", timeout=120)  # the model is loaded with the calibration
        _wait_for(launch, "event step x1.50 for the rig's contrast threshold")
        _wait_for(launch, "events taken +5.0 ms late (the rig's davis_latency_ns)")
        rc = launch.interrupt(group=False)
        _assert_clean_exit(launch, rc, NODES)


def test_launch_errors_name_launch_arguments(workspace):
    for args, message in (("source:=aedat4", "source:=aedat4 needs file:="),
                          ("source:=synthetic seed:=abc", "seed:=abc is not a valid int"),
                          ("source:=nope", "source:=nope is not one of")):
        r = rt.run_in(workspace, f"ros2 launch evif_ros rig.launch.py {args}", timeout=60)
        assert r.returncode != 0 and message in r.stdout + r.stderr, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stdout + r.stderr


def _node_process(ws: Path, name: str, log: Path) -> rt.Launch:
    """One node started as launch starts it: the installed executable, own session."""
    exe = ws / "install" / "evif_ros" / "lib" / "evif_ros" / name
    return rt.Launch(ws, "", log, command=str(exe))


def _wait_for(launch: rt.Launch, text: str, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while text not in launch.text():
        assert launch.proc.poll() is None, launch.text()
        assert time.monotonic() - t0 < timeout, launch.text()
        time.sleep(0.1)


def test_node_signals_sigterm_double_ctrl_c_and_ctrl_c_while_importing(workspace, tmp_path):
    # Ctrl-C twice in quick succession, once the model is loaded
    with _node_process(workspace, "evif_node", tmp_path / "a.log") as node:
        _wait_for(node, "on cpu")
        node.proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        node.proc.send_signal(signal.SIGINT)
        assert node.proc.wait(30) == 0, node.text()
        assert "Traceback" not in node.text()
    # SIGTERM (systemd, docker stop, launch's escalation) is a clean stop too
    with _node_process(workspace, "davis_driver", tmp_path / "b.log") as node:
        time.sleep(4.0)
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(30) == 0, node.text()
        assert "Traceback" not in node.text()
    # Ctrl-C while torch and rclpy are still being imported (they take seconds)
    with _node_process(workspace, "evif_node", tmp_path / "c.log") as node:
        cmdline = Path(f"/proc/{node.proc.pid}/cmdline")
        while b"lib/evif_ros/evif_node" not in cmdline.read_bytes():  # bash has exec'd
            time.sleep(0.01)
        time.sleep(0.8)
        node.proc.send_signal(signal.SIGINT)
        assert node.proc.wait(30) == 0, node.text()
        assert "Traceback" not in node.text() and "KeyboardInterrupt" not in node.text()
