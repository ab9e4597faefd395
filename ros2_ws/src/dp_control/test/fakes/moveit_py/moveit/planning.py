"""Fake ``moveit.planning``: MoveItPy, PlanningComponent and the planning scene monitor, recording calls.

Modelled on moveit_py's bindings (moveit/moveit2, moveit_py/src/moveit/moveit_ros/moveit_cpp/):

- ``MoveItPy(node_name="moveit_py", launch_params_filepaths=None, config_dict=None,
  provide_planning_service=True, remappings=None)``; ``get_robot_model()``,
  ``get_planning_scene_monitor()``, ``get_planning_component(planning_component_name)``,
  ``execute(robot_trajectory, controllers)`` (older releases: ``execute(robot_trajectory,
  blocking=True, controllers=[])``; both accept the keyword ``controllers``), returning an
  ExecutionStatus that is truthy on success.
- ``PlanningComponent``: ``set_start_state_to_current_state()``, ``set_goal_state(configuration_name=
  None, robot_state=None, pose_stamped_msg=None, pose_link=None, motion_plan_constraints=None)``,
  ``plan(...)`` returning a PlanSolution (truthy on success, ``.trajectory``, ``.error_code``).
- ``PlanningSceneMonitor.read_only()``: a context manager giving a PlanningScene with
  ``is_state_valid(robot_state, joint_model_group_name)``.

Every instance is appended to ``MoveItPy.instances`` and every call to ``MoveItPy.calls`` as
``(name, kwargs)``, so a test can check what was planned and executed. ``MoveItPy.execute_hook``
(callable(trajectory) or None) lets a test move its fake robot when a trajectory is executed;
``MoveItPy.plan_succeeds`` makes planning fail.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from moveit.core.robot_state import RobotState

ARM = [f"panda_joint{i}" for i in range(1, 8)]
HAND = ["panda_finger_joint1", "panda_finger_joint2"]


class RobotModel:
    """The Panda's groups and joints (as dp_control/config/moveit/panda.srdf declares them)."""

    def __init__(self) -> None:
        self.groups = {"panda_arm": list(ARM), "hand": list(HAND)}
        self.joint_names = ARM + HAND

    def has_joint_model_group(self, name: str) -> bool:
        """True for a group of the model."""
        return name in self.groups

    @property
    def joint_model_group_names(self) -> list[str]:
        """Names of the groups."""
        return list(self.groups)


class PlanningScene:
    """Every state is valid (the scene is empty)."""

    def __init__(self, owner) -> None:
        self.owner = owner

    def is_state_valid(self, robot_state, joint_model_group_name: str = "") -> bool:
        """Recorded; always True."""
        self.owner.valid_checks += 1
        return True


class PlanningSceneMonitor:
    """``read_only()`` yields the fake scene."""

    def __init__(self, owner) -> None:
        self.owner = owner

    @contextlib.contextmanager
    def read_only(self):
        """Context manager giving the PlanningScene."""
        yield PlanningScene(self.owner)


@dataclass
class RobotTrajectory:
    """What the fake planner produced: from the current state to the goal it was given."""

    group: str
    start: str
    goal: dict = field(default_factory=dict)


@dataclass
class ErrorCode:
    """moveit_msgs/MoveItErrorCodes-like."""

    val: int


class PlanSolution:
    """Truthy on success, like moveit_py's PlanSolution."""

    def __init__(self, trajectory, ok: bool) -> None:
        self.trajectory = trajectory
        self.error_code = ErrorCode(1 if ok else 99999)
        self._ok = ok

    def __bool__(self) -> bool:
        return self._ok


class ExecutionStatus:
    """Truthy on success, like moveit_controller_manager::ExecutionStatus's binding."""

    def __init__(self, status: str) -> None:
        self.status = status

    def __bool__(self) -> bool:
        return self.status == "SUCCEEDED"


class PlanningComponent:
    """Records the start state and goal it is given; ``plan`` refuses without both."""

    def __init__(self, owner: MoveItPy, name: str) -> None:
        self.owner = owner
        self.name = name
        self.start: str | None = None
        self.goal: dict | None = None

    def set_start_state_to_current_state(self) -> None:
        """Plan from the monitored current state."""
        MoveItPy.calls.append(("set_start_state_to_current_state", {"group": self.name}))
        self.start = "current state"

    def set_goal_state(
        self,
        configuration_name: str | None = None,
        robot_state: RobotState | None = None,
        pose_stamped_msg=None,
        pose_link: str | None = None,
        motion_plan_constraints=None,
    ) -> bool:
        """One of configuration_name / robot_state (the others are not faked)."""
        if pose_stamped_msg is not None or motion_plan_constraints is not None:
            raise NotImplementedError("fake PlanningComponent: only configuration_name / robot_state goals")
        if (configuration_name is None) == (robot_state is None):
            raise ValueError("set_goal_state: give exactly one of configuration_name, robot_state")
        if robot_state is not None:
            if not robot_state.updated:
                raise ValueError("fake: robot_state.update() was not called before set_goal_state")
            self.goal = {"robot_state": robot_state.joint_positions}
        else:
            self.goal = {"configuration_name": configuration_name}
        MoveItPy.calls.append(("set_goal_state", dict(self.goal)))
        return True

    def plan(self, single_plan_parameters=None, multi_plan_parameters=None, **kwargs) -> PlanSolution:
        """A trajectory from the start state to the goal (fails without either)."""
        ok = MoveItPy.plan_succeeds and self.start is not None and self.goal is not None
        traj = RobotTrajectory(self.name, self.start or "", dict(self.goal or {})) if ok else None
        MoveItPy.calls.append(("plan", {"start": self.start, "goal": self.goal, "trajectory": traj}))
        return PlanSolution(traj, ok)


class MoveItPy:
    """Fake MoveItPy (see module docstring)."""

    instances: list[MoveItPy] = []
    calls: list[tuple[str, dict]] = []
    execute_hook = None
    plan_succeeds = True

    def __init__(
        self,
        node_name: str = "moveit_py",
        launch_params_filepaths=None,
        config_dict=None,
        provide_planning_service: bool = True,
        remappings=None,
    ) -> None:
        self.node_name = node_name
        self.remappings = remappings
        self.valid_checks = 0
        self._model = RobotModel()
        MoveItPy.instances.append(self)
        MoveItPy.calls.append(("MoveItPy", {"node_name": node_name, "remappings": remappings}))

    def get_robot_model(self) -> RobotModel:
        """The fake model."""
        return self._model

    def get_planning_scene_monitor(self) -> PlanningSceneMonitor:
        """The fake monitor."""
        return PlanningSceneMonitor(self)

    def get_planning_component(self, planning_component_name: str) -> PlanningComponent:
        """A new component for the group (raises for an unknown group, as MoveItCpp does)."""
        if not self._model.has_joint_model_group(planning_component_name):
            raise RuntimeError(f"no planning group {planning_component_name!r}")
        MoveItPy.calls.append(("get_planning_component", {"name": planning_component_name}))
        return PlanningComponent(self, planning_component_name)

    def execute(self, robot_trajectory, controllers=None, blocking: bool = True) -> ExecutionStatus:
        """Records the trajectory; runs ``execute_hook`` (the fake arm moves) and succeeds."""
        if controllers is None:
            raise TypeError("execute() missing required argument: 'controllers'")
        MoveItPy.calls.append(("execute", {"trajectory": robot_trajectory, "controllers": list(controllers)}))
        if MoveItPy.execute_hook is not None:
            MoveItPy.execute_hook(robot_trajectory)
        return ExecutionStatus("SUCCEEDED")

    @classmethod
    def reset(cls) -> None:
        """Forget instances and calls (between tests)."""
        cls.instances, cls.calls, cls.execute_hook, cls.plan_succeeds = [], [], None, True
