"""Command backends' logic that does not need a ROS graph: controller-joint checks and the MoveIt gate.

Backends (``ControlConfig.backend``; the topic is the ``controller_preset``'s or ``command_topic``,
see ``dp_control.core.presets``):

- ``trajectory``: trajectory_msgs/JointTrajectory (default ``joint_trajectory_controller/joint_trajectory``;
  presets ``franka_fr3``, ``ur``) every tick, with the limited preview (positions + velocities,
  ending at rest).
- ``position``: std_msgs/Float64MultiArray (default ``forward_position_controller/commands``) in
  ``joint_names`` order; refuses to start when the controller's ``joints`` parameter is readable and
  differs (see ``check_controller_joints``).
- ``moveit``: like ``trajectory``, but every command (and every ``preview_stride``-th preview point) is
  first checked against MoveIt's CURRENT planning scene through moveit_py (``MoveItChecker``: the
  monitored state with the fingers, attached and world objects as they are, only the arm joints
  replaced); invalid -> not sent, hold + report. Needs moveit_py; without it the backend refuses to
  start (``MoveItUnavailable``).
- ``servo``: control_msgs/JointJog velocities to MoveIt Servo, which does collision, singularity and
  joint-limit handling at its rate (``dp_control.servo_backend``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

_log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The selected backend cannot start (the node refuses to run)."""


class MoveItUnavailable(BackendError):
    """moveit_py is not importable."""


def check_controller_joints(expected: Sequence[str], controller_joints: Sequence[str] | None) -> str | None:
    """Compare ``joint_names`` with a forward position controller's ``joints`` parameter.

    Returns:
        None when they match or the controller's joints are unknown (None); otherwise an error
        message saying what differs (the column order of Float64MultiArray is positional, so a
        mismatch would send targets to the wrong joints).
    """
    if controller_joints is None:
        return None
    expected, actual = list(expected), list(controller_joints)
    if expected == actual:
        return None
    if sorted(expected) == sorted(actual):
        return (
            f"controller joints {actual} are the same joints in another order than joint_names "
            f"{expected}; set joint_names to the controller's order"
        )
    missing = [j for j in expected if j not in actual]
    extra = [j for j in actual if j not in expected]
    return f"controller joints {actual} differ from joint_names {expected} (missing {missing}, extra {extra})"


class StateChecker(Protocol):
    """Anything that can say whether a joint configuration is valid (collision-free, in bounds)."""

    def is_valid(self, joint_names: Sequence[str], positions: np.ndarray) -> tuple[bool, str]:
        """(valid, reason-if-invalid) for one configuration."""
        ...


class ValidityGate:
    """Checks a command and a subsample of its preview before it is sent (MoveIt-independent part).

    Args:
        checker: a ``StateChecker`` (``MoveItChecker`` on a robot; a fake in tests).
        joint_names: names of the command columns.
        preview_stride: check every n-th preview point besides the command itself.
    """

    def __init__(self, checker: StateChecker, joint_names: Sequence[str], preview_stride: int = 5) -> None:
        self.checker = checker
        self.joint_names = list(joint_names)
        self.preview_stride = max(1, int(preview_stride))
        self.invalid_count = 0

    def check(self, positions: np.ndarray, preview_positions: np.ndarray | None = None) -> tuple[bool, str]:
        """Returns (True, "") when every checked configuration is valid, else (False, reason)."""
        configs = [np.asarray(positions, dtype=np.float64)]
        if preview_positions is not None and len(preview_positions):
            configs += list(np.asarray(preview_positions)[self.preview_stride - 1 :: self.preview_stride])
        for k, q in enumerate(configs):
            ok, why = self.checker.is_valid(self.joint_names, q)
            if not ok:
                self.invalid_count += 1
                where = "commanded state" if k == 0 else f"preview point {k * self.preview_stride}"
                return False, f"MoveIt: {where} is invalid ({why or 'collision'})"
        return True, ""


def moveit_available() -> bool:
    """True when moveit_py (MoveIt 2 Python bindings) imports."""
    try:
        import moveit.planning  # noqa: F401
    except ImportError:
        return False
    return True


# Topics MoveItPy's planning scene monitor subscribes to by relative name.
MOVEIT_TOPICS = ("joint_states",)


def moveit_remappings(node) -> dict[str, str]:
    """{topic: name} for MoveItPy's topics where the node resolves them other than MoveItPy's node would.

    MoveItPy's node sits in the root namespace without the process's remappings, so it reads
    ``/joint_states``; control_node's remappings and namespace are handed to it through this.

    Args:
        node: the rclpy node whose topic resolution MoveItPy should share (``Node.resolve_topic_name``;
            where rclpy lacks it, nothing is remapped).
    """
    resolve = getattr(node, "resolve_topic_name", None)
    if resolve is None:
        return {}
    return {t: resolve(t) for t in MOVEIT_TOPICS if resolve(t) != f"/{t}"}


class MoveItChecker:
    """``StateChecker`` backed by moveit_py's planning scene monitor: checks against the CURRENT scene.

    Every check locks the monitored scene (``PlanningSceneMonitor.read_only()``), copies its
    ``current_state`` (the state the monitor keeps from joint_states: the measured finger joints, every
    other joint not commanded here, and the objects attached to the robot) and replaces only the
    commanded arm joints (``RobotState.joint_positions`` setter: by name, the other variables keep
    their monitored values) before ``update()``; then ``PlanningScene.is_state_valid(state, group)``
    (collisions with the world objects, self-collisions, attached objects, the scene's feasibility
    predicate) decides, and on failure ``is_state_colliding`` tells a collision from an infeasible
    state. A state built from ``set_to_default_values()`` would check open fingers and no attached
    object instead of the hand as it is. Joint bounds are not MoveIt's job here: the control core keeps
    commands inside the position limits.

    Written against moveit_py's API of Humble, Jazzy, Kilted and main (``moveit.planning.MoveItPy``,
    ``PlanningSceneMonitor.read_only`` -> ``LockedPlanningSceneContextManagerRO``,
    ``PlanningScene.current_state`` / ``is_state_valid(robot_state, joint_model_group_name, verbose)`` /
    ``is_state_colliding(robot_state, joint_model_group_name, verbose)``, ``RobotState.__copy__``);
    exercised here against the fake in ``test/fakes/moveit_py`` (same names and signatures). MoveItPy
    builds its own node from the ``--params-file`` arguments of this process (moveit_py's
    ``get_launch_params_filepaths``): ``robot.launch.py backend:=moveit`` puts the whole MoveIt
    parameter set there (``dp_control.moveit_params``), in files keyed ``/**`` so that MoveItPy's node
    reads them too. MoveItPy's node does not get the process's remappings: ``remappings`` (e.g.
    ``{"joint_states": "/franka/joint_states"}``, from control_node's own resolution) are handed to it
    explicitly.

    Args:
        group: the planning group of the commanded joints (``moveit_group``).
        node_name: name of MoveItPy's node.
        remappings: topic remappings for MoveItPy's node (``moveit_remappings``).

    Raises:
        MoveItUnavailable: moveit_py is not importable.
        BackendError: the group does not exist in MoveIt's robot model.
    """

    def __init__(
        self,
        group: str,
        node_name: str = "dp_control_moveit",
        remappings: dict[str, str] | None = None,
    ) -> None:
        try:
            from moveit.planning import MoveItPy
        except ImportError as exc:
            raise MoveItUnavailable(
                "backend 'moveit' needs moveit_py (MoveIt 2 Python bindings, e.g. "
                "ros-<distro>-moveit-py), which is not importable here "
                f"({exc}); use backend:=trajectory or backend:=position (no collision checking)"
            ) from exc
        self.group = group
        self.checks = 0
        # MoveItPy(remappings=...) exists in moveit_py of Humble, Jazzy, Kilted and main; only passed when
        # there is something to remap.
        self.moveit = MoveItPy(node_name=node_name, **({"remappings": remappings} if remappings else {}))
        self.robot_model = self.moveit.get_robot_model()
        if not self.robot_model.has_joint_model_group(group):
            raise BackendError(
                f"MoveIt has no planning group {group!r} (groups: "
                f"{list(self.robot_model.joint_model_group_names)}); set moveit_group"
            )
        # (PlanningSceneMonitor.wait_for_current_robot_state takes an rclcpp::Time, which moveit_py
        # cannot convert from Python: not used. Until joint_states arrive, the control core holds.)
        self.scene_monitor = self.moveit.get_planning_scene_monitor()

    def is_valid(self, joint_names: Sequence[str], positions: np.ndarray) -> tuple[bool, str]:
        """Validity of ``positions`` (``joint_names``) in the current planning scene (class docstring)."""
        command = dict(zip(joint_names, (float(p) for p in positions), strict=True))
        with self.scene_monitor.read_only() as scene:
            # The monitored state, copied: current_state is a reference into the locked scene.
            state = copy.copy(scene.current_state)
            state.joint_positions = command
            state.update()
            self.checks += 1
            if scene.is_state_valid(robot_state=state, joint_model_group_name=self.group, verbose=False):
                return True, ""
            colliding = scene.is_state_colliding(
                robot_state=state, joint_model_group_name=self.group, verbose=False
            )
        return False, "in collision" if colliding else "rejected by the planning scene (not feasible)"

    def close(self) -> None:
        """Shuts MoveItPy down (its node and threads)."""
        shutdown = getattr(self.moveit, "shutdown", None)
        if shutdown is not None:
            shutdown()
