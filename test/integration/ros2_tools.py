"""Drive the package the way ROS users do: a colcon workspace, `ros2 run`, `ros2 launch`,
`ros2 topic echo`, `ros2 param`, Ctrl-C. Used by test_ros2_tools.py and
scripts/stress_launch.py.

Every command runs in ``bash`` after ``source install/setup.bash`` of the workspace, as a
user's terminal would; ``ros2`` commands never use the ros2 daemon (``--no-daemon``), which
would outlive the test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT.parent / "shared" / "ros2-cli" / "wheels"
BIN = Path(sys.executable).parent


def tools_missing() -> str:
    """Why the real ROS tools cannot run here ('' when they can)."""
    if not WHEELS.is_dir():
        return f"{WHEELS} not found: launch/ros2cli wheels absent"
    missing = [t for t in ("ros2", "colcon") if not (BIN / t).exists()]
    if missing:
        # the wheels exist, so `make test` should have installed them: a real failure
        return "installed wheels missing from the venv: " + ", ".join(missing)
    return ""


def source_tree(dest: Path) -> Path:
    """Copy the package's tracked files (a clean checkout, not the working caches)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def env(extra: dict | None = None) -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}:{e.get('PATH', '')}"
    e.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    e["PYTHONUNBUFFERED"] = "1"
    e["RCUTILS_COLORIZED_OUTPUT"] = "0"
    e.update(extra or {})
    return e


def colcon_build(ws: Path, symlink: bool = False) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "colcon"), "build", "--packages-select", "evif_ros"]
    if symlink:
        cmd.append("--symlink-install")
    return subprocess.run(cmd, cwd=ws, env=env(), capture_output=True, text=True, timeout=300)


def in_workspace(ws: Path, command: str) -> list[str]:
    """``bash -c`` that sources the workspace and then ``exec``s the command (so that
    signals reach it directly)."""
    return ["bash", "-c", f"source {ws}/install/setup.bash && exec {command}"]


def run_in(ws: Path, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(in_workspace(ws, command), env=env(), capture_output=True,
                          text=True, timeout=timeout)


@dataclass
class Launch:
    """A ``ros2 launch ARGS`` (or another ``command``) in its own session (process group),
    output to a log file."""

    ws: Path
    args: str
    log: Path
    command: str = ""
    proc: subprocess.Popen | None = None
    started: float = field(default_factory=time.monotonic)

    def __enter__(self) -> Launch:
        self.log_file = open(self.log, "w")  # noqa: SIM115 - closed in __exit__
        command = self.command or f"ros2 launch {self.args}"
        self.proc = subprocess.Popen(in_workspace(self.ws, command),
                                     env=env(), stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_default_sigint)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:  # a failed test: leave nothing behind
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log_file.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self, group: bool, timeout: float = 40.0) -> int | None:
        """Ctrl-C: SIGINT to the launch process, or to its whole process group as a
        terminal does; returns the launch's exit code (None: still running after
        ``timeout`` seconds)."""
        if group:
            os.killpg(self.proc.pid, signal.SIGINT)
        else:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def group_alive(self) -> list[int]:
        """PIDs still in the launch's process group."""
        out = subprocess.run(["ps", "-o", "pid=", "-g", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


def _default_sigint() -> None:
    """A runner started in the background (``nohup ... &``) passes SIGINT on as *ignored*,
    and Python then installs no Ctrl-C handler at all: give the child a terminal's
    default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def echo_once(ws: Path, topic: str, msgtype: str, timeout: float) -> subprocess.CompletedProcess:
    """``ros2 topic echo --once`` of a sensor-data topic's header."""
    return run_in(ws, f"ros2 topic echo --no-daemon --once --timeout {int(timeout)} "
                      f"--qos-reliability best_effort --field header {topic} {msgtype}",
                  timeout=timeout + 30)


def process_exits(log: str) -> dict[str, str]:
    """``{process: 'cleanly' | 'exit code N'}`` from launch's own log lines."""
    out = {}
    for name in re.findall(r"\[INFO\] \[(\S+?)-\d+\]: process has finished cleanly", log):
        out[name] = "cleanly"
    for name, code in re.findall(r"\[ERROR\] \[(\S+?)-\d+\]: process has died \[pid \d+, "
                                 r"exit code (-?\d+)", log):
        out[name] = f"exit code {code}"
    return out
