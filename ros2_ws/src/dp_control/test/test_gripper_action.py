"""control_node's GripperCommand action backend in a real rclpy graph (gripper_action_graph.py).

control_msgs has no PyPI wheel: where it does not import, the test builds the stand-in interface
package in ``fakes/control_msgs`` (GripperCommand msg + action with control_msgs' documented fields)
with colcon into ``ros2_ws/build/test_fakes`` (cached by content) and runs the graph in a subprocess
whose environment has it. Where the real control_msgs imports (a robot, the Docker image), the graph
runs against the real interface.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from rclpy.parameter import Parameter

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[3]
FAKE = HERE / "fakes" / "control_msgs"
HAVE_CONTROL_MSGS = importlib.util.find_spec("control_msgs") is not None


def _fake_prefix() -> pathlib.Path:
    """Builds (once per content) the stand-in control_msgs; returns its install prefix."""
    digest = hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(FAKE.rglob("*")) if p.is_file())
    ).hexdigest()[:12]
    base = ROOT / "ros2_ws" / "build" / "test_fakes" / f"control_msgs-{digest}"
    prefix = base / "install" / "control_msgs"
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (prefix / "share" / "control_msgs" / "package.xml").exists():
            shutil.rmtree(base / "src", ignore_errors=True)
            shutil.copytree(FAKE, base / "src" / "control_msgs")
            cmd = [sys.executable, "-m", "colcon", "--log-base", "log", "build", "--base-paths", "src",
                   "--build-base", "build", "--install-base", "install", "--cmake-args",
                   f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"]  # fmt: skip
            out = subprocess.run(cmd, cwd=base, capture_output=True, text=True, timeout=900)
            assert out.returncode == 0, (
                f"building the control_msgs stand-in failed:\n{out.stdout}\n{out.stderr}"
            )
    return prefix


def _prepend(env: dict, key: str, value: pathlib.Path) -> None:
    env[key] = f"{value}{os.pathsep}{env[key]}" if env.get(key) else str(value)


def test_gripper_action_backend_against_fake_server():
    env = dict(os.environ)
    if not HAVE_CONTROL_MSGS:
        prefix = _fake_prefix()
        _prepend(env, "AMENT_PREFIX_PATH", prefix)
        _prepend(env, "LD_LIBRARY_PATH", prefix / "lib")
        pyver = f"python{sys.version_info.major}.{sys.version_info.minor}"
        _prepend(env, "PYTHONPATH", prefix / "lib" / pyver / "site-packages")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         str(HERE / "gripper_action_graph.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    assert "1 passed" in out.stdout


@pytest.mark.skipif(HAVE_CONTROL_MSGS, reason="control_msgs is installed here")
def test_action_backend_refuses_to_start_without_control_msgs(rclpy_context):
    from dp_control.backends import BackendError
    from dp_control.control_node import ControlNode

    with pytest.raises(BackendError, match="needs control_msgs"):
        ControlNode(context=rclpy_context, parameter_overrides=[Parameter("gripper_backend", value="action")])
