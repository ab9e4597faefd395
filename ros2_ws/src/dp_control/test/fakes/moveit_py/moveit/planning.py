"""Fake of moveit_py's ``moveit.planning``: MoveItPy, PlanningSceneMonitor, the scene lock context managers.

As in moveit_py, ``MoveItPy`` owns a node of its own (here an rclpy node, spun in a background thread,
as MoveItCpp spins its rclcpp node) whose current state monitor subscribes to ``joint_states`` (after
``remappings``) and merges each message into the monitored scene's current state by name. The real
MoveItPy reads robot_description / robot_description_semantic from its parameter files; the fake gets
them, and the rclpy context, from :func:`fake_setup` (call it before constructing MoveItPy). Every
MoveItPy built is appended to :data:`fake_instances`.
"""

from __future__ import annotations

import threading

from moveit.core.planning_scene import PlanningScene
from moveit.core.robot_model import RobotModel

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


class MoveItPy:
    """MoveItPy(node_name="moveit_py", name_space="", launch_params_filepaths=None, config_dict=None,
    provide_planning_service=True, remappings=None)."""

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
