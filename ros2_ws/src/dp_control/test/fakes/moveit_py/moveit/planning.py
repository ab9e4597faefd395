"""Fake of moveit_py's ``moveit.planning``: MoveItPy, PlanningSceneMonitor, the scene lock context managers.

As in moveit_py, ``MoveItPy`` owns a node of its own (here an rclpy node, spun in a background thread,
as MoveItCpp spins its rclcpp node) whose current state monitor subscribes to ``joint_states`` (after
``remappings``) and merges each message into the monitored scene's current state by name. The real
MoveItPy reads robot_description / robot_description_semantic from its parameter files; the fake gets
them, and the rclpy context, from :func:`fake_setup` (call it before constructing MoveItPy). Every
MoveItPy built is appended to :data:`fake_instances` (and ``MoveItPy.instances``).

Planning and execution (moveit_py/src/moveit/moveit_ros/moveit_cpp/): ``get_planning_component(
planning_component_name)``; ``PlanningComponent.set_start_state_to_current_state()``,
``set_goal_state(configuration_name=None, robot_state=None, pose_stamped_msg=None, pose_link=None,
motion_plan_constraints=None)``, ``plan(...)`` returning a PlanSolution (truthy on success,
``.trajectory``, ``.error_code``); ``MoveItPy.execute(robot_trajectory, controllers)`` (older releases:
``execute(robot_trajectory, blocking=True, controllers=[])``; both accept the keyword ``controllers``),
returning an ExecutionStatus that is truthy on success. Every planning call is appended to
``MoveItPy.calls`` as ``(name, kwargs)``; ``MoveItPy.execute_hook`` (callable(trajectory) or None) lets a
test move its fake robot when a trajectory is executed; ``MoveItPy.plan_succeeds = False`` makes
planning fail; ``MoveItPy.reset()`` forgets all of it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from moveit.core.planning_scene import PlanningScene
from moveit.core.robot_model import RobotModel
from moveit.core.robot_state import RobotState

_setup: dict = {}
#: Every MoveItPy constructed (tests reach the monitor through it).
fake_instances: list = []


def fake_setup(context, robot_description: str, robot_description_semantic: str) -> None:
    """Fake-only: what the real MoveItPy reads from its launch parameters, and the rclpy context."""
    _setup.update(context=context, robot_description=robot_description, semantic=robot_description_semantic)


class LockedPlanningSceneContextManagerRO:
    """``with monitor.read_only() as scene``: the locked scene (read)."""

    def __init__(self, monitor) -> None:
        self._monitor = monitor

    def __enter__(self) -> PlanningScene:
        self._monitor._lock.acquire()
        self._monitor.fake_read_only_entries += 1
        return self._monitor._scene

    def __exit__(self, type, value, traceback) -> None:  # noqa: A002 - moveit_py's names
        self._monitor._lock.release()


class LockedPlanningSceneContextManagerRW(LockedPlanningSceneContextManagerRO):
    """``with monitor.read_write() as scene``: the locked scene (write)."""


class PlanningSceneMonitor:
    """Keeps a PlanningScene whose current state follows joint_states (see the module docstring)."""

    def __init__(self, node, robot_model, joint_states_topic: str) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState

        self._lock = threading.RLock()
        self._scene = PlanningScene(robot_model)
        self.fake_read_only_entries = 0
        self.fake_joint_states = 0
        self._name = "planning_scene_monitor"
        qos = QoSProfile(depth=25, reliability=ReliabilityPolicy.BEST_EFFORT)  # matches reliable publishers
        node.create_subscription(JointState, joint_states_topic, self._on_joint_state, qos)

    @property
    def name(self) -> str:
        """Monitor name."""
        return self._name

    def _on_joint_state(self, msg) -> None:
        known = self._scene.current_state.joint_positions
        update = {n: p for n, p in zip(msg.name, msg.position, strict=False) if n in known}
        with self._lock:
            state = self._scene.current_state
            state.joint_positions = update
            state.update()
            self.fake_joint_states += 1

    def read_only(self) -> LockedPlanningSceneContextManagerRO:
        """Context manager that locks the scene for reading."""
        return LockedPlanningSceneContextManagerRO(self)

    def read_write(self) -> LockedPlanningSceneContextManagerRW:
        """Context manager that locks the scene for writing."""
        return LockedPlanningSceneContextManagerRW(self)

    def process_collision_object(self, collision_object_msg, color_msg=None) -> None:
        """Applies a world object to the monitored scene."""
        with self._lock:
            self._scene.apply_collision_object(collision_object_msg, color_msg)

    def process_attached_collision_object(self, attached_collision_object_msg) -> None:
        """Applies an attached object to the monitored scene."""
        with self._lock:
            self._scene.process_attached_collision_object(attached_collision_object_msg)


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
            if robot_state.dirty:
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
    """MoveItPy(node_name="moveit_py", name_space="", launch_params_filepaths=None, config_dict=None,
    provide_planning_service=True, remappings=None)."""

    instances: list[MoveItPy] = []
    calls: list[tuple[str, dict]] = []
    execute_hook = None
    plan_succeeds = True

    def __init__(
        self,
        node_name: str = "moveit_py",
        name_space: str = "",
        launch_params_filepaths=None,
        config_dict=None,
        provide_planning_service: bool = True,
        remappings=None,
    ) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        if not _setup:
            raise RuntimeError("moveit fake: call moveit.planning.fake_setup(...) before MoveItPy()")
        self.remappings = dict(remappings or {})
        self._robot_model = RobotModel(_setup["robot_description"], _setup["semantic"])
        self._node = Node(node_name, namespace=name_space or None, context=_setup["context"])
        topic = self.remappings.get("joint_states", "/joint_states")
        self._monitor = PlanningSceneMonitor(self._node, self._robot_model, topic)
        self._executor = SingleThreadedExecutor(context=_setup["context"])
        self._executor.add_node(self._node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True, name="moveit_py_fake")
        self._thread.start()
        fake_instances.append(self)
        MoveItPy.instances.append(self)
        MoveItPy.calls.append(("MoveItPy", {"node_name": node_name, "remappings": remappings}))

    def _spin(self) -> None:
        while not self._stop.is_set() and self._executor.context.ok():
            self._executor.spin_once(timeout_sec=0.02)

    def get_robot_model(self) -> RobotModel:
        """The robot model (from robot_description + robot_description_semantic)."""
        return self._robot_model

    def get_planning_scene_monitor(self) -> PlanningSceneMonitor:
        """The planning scene monitor."""
        return self._monitor

    def shutdown(self) -> None:
        """Stops MoveItPy's node."""
        self._stop.set()
        self._thread.join(2.0)
        self._executor.remove_node(self._node)
        self._node.destroy_node()

    def get_planning_component(self, planning_component_name: str) -> PlanningComponent:
        """A new component for the group (raises for an unknown group, as MoveItCpp does)."""
        if not self._robot_model.has_joint_model_group(planning_component_name):
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
        fake_instances.clear()
