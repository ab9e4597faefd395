"""The command publishers of control_node (see :mod:`dp_control.backends` and
:mod:`dp_control.core.presets`).

- arm: the preset's (``controller_preset``) or ``command_topic``'s topic, with its message type:
  trajectory_msgs/JointTrajectory (``trajectory`` / ``moveit`` backends: the limited preview,
  positions + velocities) or std_msgs/Float64MultiArray (``position`` backend, ``joint_names`` order);
  ``servo`` backend: control_msgs/JointJog to MoveIt Servo (:class:`dp_control.servo_backend.ServoStreamer`).
  Defaults (no preset, no topic): :data:`TRAJECTORY_TOPIC` / :data:`POSITION_TOPIC`, as before presets.
- gripper (with a gripper joint): its opening (m) as Float64MultiArray on ``gripper_topic``
  (``gripper_backend: topic``, default :data:`GRIPPER_TOPIC`) or as control_msgs/GripperCommand goals
  (``gripper_backend: action``, :class:`dp_control.gripper_action.GripperActionClient`).
"""

from __future__ import annotations

from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from dp_common.qos import reliable_qos
from dp_control.conversions import float64_array_msg, joint_trajectory_msg
from dp_control.core import CONTROLLER_PRESETS, ControlConfig, resolve_command_topic

TRAJECTORY_TOPIC = CONTROLLER_PRESETS["generic_jtc"].topic
POSITION_TOPIC = CONTROLLER_PRESETS["forward_position"].topic
GRIPPER_TOPIC = "gripper_controller/commands"


class CommandPublishers:
    """The publishers a backend commands through; :meth:`send` publishes one control command.

    Raises:
        BackendError: ``gripper_backend: action`` without control_msgs.
    """

    def __init__(self, node, cfg: ControlConfig, diag) -> None:
        self.joint_names = list(cfg.joint_names)
        self.trajectory = self.position = self.gripper = self.gripper_action = self.servo = None
        if cfg.backend == "servo":
            from dp_control.servo_backend import ServoStreamer

            self.servo = ServoStreamer(node, cfg, diag)
            self.preset, kind, self.topic = "", "servo", self.servo.command_topic
        else:
            self.preset, kind, self.topic = resolve_command_topic(
                cfg.backend, cfg.controller_preset, cfg.command_topic
            )
        if kind == "trajectory":
            self.trajectory = node.create_publisher(JointTrajectory, self.topic, reliable_qos(1))
        elif kind == "position":
            self.position = node.create_publisher(Float64MultiArray, self.topic, reliable_qos(1))
        self.gripper_target = "none"
        if cfg.gripper_joint and cfg.gripper_backend == "action":
            from dp_control.gripper_action import GripperActionClient

            self.gripper_action = GripperActionClient(
                node, diag, cfg.gripper_action_name, cfg.gripper_max_effort,
                cfg.gripper_goal_tolerance_m, cfg.gripper_goal_interval_s,
            )  # fmt: skip
            self.gripper_target = f"GripperCommand action {cfg.gripper_action_name}"
        elif cfg.gripper_joint:
            self.gripper = node.create_publisher(Float64MultiArray, cfg.gripper_topic, reliable_qos(1))
            self.gripper_target = f"Float64MultiArray on {cfg.gripper_topic}"

    def describe(self) -> str:
        """Where commands go, in words (start-up log and /diagnostics)."""
        if self.servo is not None:
            return f"{self.servo.describe()}; gripper: {self.gripper_target}"
        kind = "JointTrajectory" if self.trajectory is not None else "Float64MultiArray"
        return f"arm: {kind} on {self.topic} (preset {self.preset}); gripper: {self.gripper_target}"

    def send(self, cmd, t_now: float, measured=None) -> None:
        """Publish ``cmd`` (a ``dp_control.core`` command) stamped ``t_now`` (node clock, s).

        ``measured``: (n,) measured arm positions or None (the servo backend's correction term).
        """
        if self.servo is not None:
            self.servo.send(cmd, measured)
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
        if cmd.gripper is None:
            return
        if self.gripper is not None:
            self.gripper.publish(float64_array_msg([cmd.gripper]))
        elif self.gripper_action is not None:
            self.gripper_action.send(cmd.gripper, t_now)
