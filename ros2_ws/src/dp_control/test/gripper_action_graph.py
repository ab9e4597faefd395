"""Run by test_gripper_action.py in a subprocess whose environment has control_msgs (the real package
or the test fake): control_node's GripperCommand backend against a fake gripper action server.

The server (an rclpy ActionServer, as franka_gripper's and ros2_controllers' gripper servers are
action servers) records every goal; it rejects openings >= 0.035 m (beyond its range in this test),
aborts closings <= 0.005 m as a stalled grasp, and succeeds otherwise.
"""

from __future__ import annotations

import numpy as np
from rclpy.action import ActionServer, GoalResponse
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from dp_common.msgs import now_ns, s_to_ns
from dp_common.msgs.chunk import build_chunk
from dp_common.msgs.joint_state import build_joint_state
from dp_common.testing import spin_for, spin_until

JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
Q0 = np.array([0.0, -0.4, 0.0, -2.0, 0.0, 1.6, 0.8])
ACTION = "fr3_gripper/gripper_action"
INTERVAL_S = 0.2


class FakeGripper:
    """GripperCommand action server that records goals; also feeds control_node states and chunks."""

    def __init__(self, context, control):
        from control_msgs.action import GripperCommand
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState

        from dp_common.qos import chunk_qos, reliable_qos
        from dp_msgs.msg import ActionChunk

        self.Action = GripperCommand
        self.node = n = Node("fake_gripper", context=context)
        self.control = control
        self.goals: list[tuple[float, float]] = []  # (position, max_effort) in arrival order
        self.diag_text: list[str] = []
        ActionServer(n, GripperCommand, ACTION, self._execute, goal_callback=self._on_goal)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.js_pub = n.create_publisher(JointState, "joint_states", reliable_qos(50))
        self.chunk_pub = n.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
        self.column = lambda k: 0.02  # gripper value of chunk k
        self.chunk_id = 0
        n.create_timer(0.01, self._state)
        n.create_timer(0.1, self._chunk)

    def _on_goal(self, goal):
        self.goals.append((goal.command.position, goal.command.max_effort))
        return GoalResponse.REJECT if goal.command.position >= 0.035 else GoalResponse.ACCEPT

    def _execute(self, handle):
        result = self.Action.Result()
        if handle.request.command.position <= 0.005:
            result.position, result.stalled, result.reached_goal = 0.012, True, False
            handle.abort()
        else:
            result.position, result.reached_goal = handle.request.command.position, True
            handle.succeed()
        return result

    def _on_diag(self, msg):
        for status in msg.status:
            self.diag_text.append(
                status.message + " " + " ".join(f"{v.key}={v.value}" for v in status.values)
            )

    def _state(self):
        q = self.control.command_positions()
        self.js_pub.publish(build_joint_state(now_ns(self.node), JOINTS, Q0 if q is None else q))

    def _chunk(self):
        self.chunk_id += 1
        rows = np.hstack([np.tile(Q0, (15, 1)), np.full((15, 1), self.column(self.chunk_id))])
        stamp = now_ns(self.node) - s_to_ns(0.05)
        names = [*JOINTS, "panda_finger_joint1"]
        self.chunk_pub.publish(build_chunk(stamp, rows, names, 0.1, chunk_id=self.chunk_id, policy_id="t"))

    def goals_since(self, n0: int) -> list[float]:
        """Goal positions from the n0-th on, rounded to µm (chunks carry float32)."""
        return [round(p, 6) for p, _ in self.goals[n0:]]


def test_gripper_action_backend(rclpy_context):
    from control_msgs.action import GripperCommand  # noqa: F401 - the environment must provide it

    from dp_control.control_node import ControlNode

    params = {
        "autostart": True,
        "gripper_backend": "action",
        "gripper_action_name": ACTION,
        "gripper_max_effort": 30.0,
        "gripper_goal_tolerance_m": 0.001,
        "gripper_goal_interval_s": INTERVAL_S,
    }
    control = ControlNode(
        context=rclpy_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
    )
    fake = FakeGripper(rclpy_context, control)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(control)
    ex.add_node(fake.node)
    client = control._commands.gripper_action
    rng = np.random.default_rng(0)
    try:
        # 1. A steady opening with noise inside the tolerance: one goal, with the configured effort.
        fake.column = lambda k: 0.02 + rng.uniform(-0.0004, 0.0004)
        assert spin_until(ex, lambda: client.outcomes.get("succeeded", 0) >= 1, 10.0), fake.goals
        spin_for(ex, 1.0)
        assert len(fake.goals) == 1, fake.goals
        assert abs(fake.goals[0][0] - 0.02) <= 0.0004 and fake.goals[0][1] == 30.0

        # 2. A column that changes every chunk (10 Hz): goals follow, but never faster than the rate limit.
        n0 = len(fake.goals)
        fake.column = lambda k: 0.01 if k % 2 else 0.03
        spin_for(ex, 2.0)
        flips = fake.goals_since(n0)
        assert 3 <= len(flips) <= 2.0 / INTERVAL_S + 2, flips
        assert set(flips) <= {0.01, 0.03}

        # 3. A rejected goal: reported on /diagnostics; resent, rate-limited, in case the server recovers.
        n0 = len(fake.goals)
        fake.column = lambda k: 0.04
        assert spin_until(ex, lambda: any("rejected by" in t for t in fake.diag_text), 10.0)
        spin_for(ex, 1.0)
        rejected = fake.goals_since(n0)
        assert 2 <= len(rejected) <= 1.0 / INTERVAL_S + 4 and set(rejected) == {0.04}, rejected
        assert control.diag.counter("gripper goals rejected") >= 2

        # 4. An aborted goal (stalled grasp): reported on /diagnostics, not resent.
        n0 = len(fake.goals)
        fake.column = lambda k: 0.0
        assert spin_until(ex, lambda: any("aborted by" in t for t in fake.diag_text), 10.0)
        spin_for(ex, 1.0)
        closing = fake.goals_since(n0)  # may start with a last 0.04 resend already due
        assert closing.count(0.0) == 1 and set(closing) <= {0.0, 0.04}, closing
        assert any("stalled True" in t for t in fake.diag_text)
        assert any("gripper goals aborted=1" in t for t in fake.diag_text)
    finally:
        ex.shutdown()
        fake.node.destroy_node()
        control.destroy_node()
