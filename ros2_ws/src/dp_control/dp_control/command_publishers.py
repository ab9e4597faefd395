"""The command publishers of control_node, one set per backend (see :mod:`dp_control.backends`).

- ``trajectory`` / ``moveit``: trajectory_msgs/JointTrajectory on :data:`TRAJECTORY_TOPIC` (the
  limited preview, positions + velocities);
- ``position``: std_msgs/Float64MultiArray on :data:`POSITION_TOPIC` (``joint_names`` order);
- with a gripper joint: its opening (m) as Float64MultiArray on :data:`GRIPPER_TOPIC`.
"""

from __future__ import annotations

from collections.abc import Sequence

from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from dp_common.qos import reliable_qos
from dp_control.conversions import float64_array_msg, joint_trajectory_msg

TRAJECTORY_TOPIC = "joint_trajectory_controller/joint_trajectory"
POSITION_TOPIC = "forward_position_controller/commands"
GRIPPER_TOPIC = "gripper_controller/commands"


class CommandPublishers:
    """The publishers a backend commands through; :meth:`send` publishes one control command."""

    def __init__(self, node, backend: str, joint_names: Sequence[str], gripper: bool) -> None:
        self.joint_names = list(joint_names)
        self.trajectory = self.position = None
        if backend in ("trajectory", "moveit"):
            self.trajectory = node.create_publisher(JointTrajectory, TRAJECTORY_TOPIC, reliable_qos(1))
        else:
            self.position = node.create_publisher(Float64MultiArray, POSITION_TOPIC, reliable_qos(1))
        self.gripper = (
            node.create_publisher(Float64MultiArray, GRIPPER_TOPIC, reliable_qos(1)) if gripper else None
        )

    def send(self, cmd, t_now: float) -> None:
        """Publish ``cmd`` (a ``dp_control.core`` command) stamped ``t_now`` (node clock, s)."""
        if self.trajectory is not None:
            self.trajectory.publish(
                joint_trajectory_msg(
                    self.joint_names,
                    t_now,
                    cmd.preview_times,
                    cmd.preview_positions,
                    cmd.preview_velocities,
                )
            )
        if self.position is not None:
            self.position.publish(float64_array_msg(cmd.positions))
        if self.gripper is not None and cmd.gripper is not None:
            self.gripper.publish(float64_array_msg([cmd.gripper]))
