"""control_node's ``servo`` backend (MoveIt Servo's joint interface) in a real rclpy graph (servo_graph.py).

control_msgs and moveit_msgs have no PyPI wheel: where they do not import, the stand-ins of ``fakes/`` are
built (fake_interfaces.py) and the graph runs in a subprocess whose environment has them; where the real
packages import (a robot, the Docker image), the graph runs against them.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from rclpy.parameter import Parameter

from dp_control.core import Command, ControlConfig, ControlState, JointJogStream
from dp_control.core.servo import CATCH_UP_S, RESYNC_RAD

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fake_interfaces import ROOT, fake_interfaces_env  # noqa: E402


def _cmd(q, preview_q, t=10.0, period=0.02, v=None):
    q = np.asarray(q, float)
    preview_q = np.atleast_2d(preview_q)
    return Command(
        t=t, positions=q, velocities=np.zeros_like(q) if v is None else np.asarray(v, float), gripper=None,
        preview_times=t + period * np.arange(1, len(preview_q) + 1), preview_positions=preview_q,
        preview_velocities=np.zeros_like(preview_q), state=ControlState.RUNNING, reason="",
    )  # fmt: skip


def test_joint_jog_stream_finite_differences_and_catch_up():
    stream = JointJogStream(timeout_s=0.1)
    # Steady ticks: the plain forward difference towards the next interpolated command.
    np.testing.assert_allclose(stream.velocities(_cmd([0.0, 1.0], [[0.002, 1.0]], t=10.0)), [0.1, 0.0])
    np.testing.assert_allclose(stream.velocities(_cmd([0.002, 1.0], [[0.004, 1.0]], t=10.02)), [0.1, 0.0])
    # A late tick (0.2 s): Servo applied the last command for its timeout only (0.1 s -> 0.012); the
    # 0.008 lost is made up over CATCH_UP_S on top of the finite difference.
    v = stream.velocities(_cmd([0.02, 1.0], [[0.022, 1.0]], t=10.22))
    np.testing.assert_allclose(stream.q_sent, [0.012, 1.0])
    np.testing.assert_allclose(v, [0.1 + 0.008 / CATCH_UP_S, 0.0])
    # A hold: zero velocity sent, the stream stays put; a larger gap restarts the stream (no lunge).
    stream.stop(10.24)
    q_held = stream.q_sent.copy()
    v = stream.velocities(_cmd(q_held + [RESYNC_RAD * 2, 0.0], q_held + [RESYNC_RAD * 2, 0.0], t=10.5))
    np.testing.assert_allclose(v, [0.0, 0.0])
    assert stream.resyncs == 1
    # Optional correction on the measured state; never NaN.
    stream = JointJogStream(gain=2.0)
    v = stream.velocities(_cmd([0.0, 1.0], [[0.002, 1.0]]), np.array([-0.01, 1.02]))
    np.testing.assert_allclose(v, [0.12, -0.04])
    stream = JointJogStream()
    no_preview = _cmd([0.0, 1.0], np.empty((0, 2)), v=[0.3, np.nan])
    np.testing.assert_allclose(stream.velocities(no_preview), [0.3, 0.0])


def test_servo_config_checks():
    with pytest.raises(ValueError, match="servo_interface must be one of"):
        ControlConfig(backend="servo", servo_interface="iron")
    with pytest.raises(ValueError, match="leave controller_preset and command_topic empty"):
        ControlConfig(backend="servo", controller_preset="ur")
    ControlConfig(backend="servo", servo_interface="humble")


@pytest.mark.skipif(importlib.util.find_spec("control_msgs") is not None, reason="control_msgs installed")
def test_servo_backend_refuses_without_control_msgs(rclpy_context):
    from dp_control.backends import BackendError
    from dp_control.control_node import ControlNode

    with pytest.raises(BackendError, match="needs control_msgs"):
        ControlNode(context=rclpy_context, parameter_overrides=[Parameter("backend", value="servo")])


def test_servo_backend_against_fake_servo():
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(HERE / "servo_graph.py")],
        cwd=ROOT, env=fake_interfaces_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-3000:]
    assert "3 passed" in out.stdout
