"""control_node's GripperCommand action backend in a real rclpy graph (gripper_action_graph.py).

control_msgs has no PyPI wheel: where it does not import, the test builds the stand-in interface
package in ``fakes/control_msgs`` (GripperCommand msg + action with control_msgs' documented fields)
with colcon (fake_interfaces.py, cached by content) and runs the graph in a subprocess
whose environment has it. Where the real control_msgs imports (a robot, the Docker image), the graph
runs against the real interface.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest
from rclpy.parameter import Parameter

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fake_interfaces import ROOT, fake_interfaces_env  # noqa: E402

HAVE_CONTROL_MSGS = importlib.util.find_spec("control_msgs") is not None


def test_gripper_action_backend_against_fake_server():
    env = fake_interfaces_env()
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
