"""Fake of moveit_py's ``moveit.core.planning_scene.PlanningScene`` with a toy collision model.

Collision model: the robot is a set of spheres on its links (``LINK_SPHERES``: centre in the link frame,
radius), the fingertips move with the finger joints, attached objects are spheres on their link; world
objects are axis-aligned boxes in the planning frame. A state collides when a sphere meets a box (no
self-collision). Messages are read by their moveit_msgs / shape_msgs field names (``id``, ``operation``,
``primitives[0].type`` / ``.dimensions``, ``primitive_poses[0].position``, ``link_name``, ``object``), so
the real messages or any object with those attributes work.

Every check is recorded in ``fake_calls`` (method, group, the state's joint positions, its attached
object ids) so that tests can see what was checked.
"""

from __future__ import annotations

import copy

import numpy as np

from moveit.core.robot_state import AttachedBody, RobotState

# shape_msgs/SolidPrimitive and moveit_msgs/CollisionObject constants.
BOX, SPHERE = 1, 2
ADD, REMOVE = 0, 1
#: link -> (centre in the link frame [m], radius [m]); Panda link names (example-robot-data / franka).
LINK_SPHERES = {
    "panda_link3": ((0.0, 0.0, 0.0), 0.06),
    "panda_link4": ((0.0, 0.0, 0.0), 0.06),
    "panda_link5": ((0.0, 0.0, -0.1), 0.06),
    "panda_link6": ((0.0, 0.0, 0.0), 0.05),
    "panda_link7": ((0.0, 0.0, 0.0), 0.05),
    "panda_hand": ((0.0, 0.0, 0.04), 0.05),
    "panda_leftfinger": ((0.0, 0.0, 0.045), 0.012),
    "panda_rightfinger": ((0.0, 0.0, 0.045), 0.012),
}


class PlanningScene:
    """A planning scene of ``robot_model`` (moveit_py: ``PlanningScene(robot_model, world=None)``)."""

    def __init__(self, robot_model, world=None) -> None:
        self._model = robot_model
        self._state = RobotState(robot_model)
        self._state.set_to_default_values()
        self._state.update()
        self._boxes: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # id -> (min, max) corners
        self.fake_calls: list[dict] = []
        self.name = ""

    @property
    def robot_model(self):
        """The scene's robot model."""
        return self._model

    @property
    def planning_frame(self) -> str:
        """The frame world objects are given in (the URDF root link)."""
        return "panda_link0"

    @property
    def current_state(self) -> RobotState:
        """The scene's current state: a reference (moveit_py: return_value_policy::reference_internal)."""
        return self._state

    @current_state.setter
    def current_state(self, robot_state: RobotState) -> None:
        self._state = copy.copy(robot_state)

    # ------------------------------------------------------------------ world and attached objects
    def apply_collision_object(self, collision_object_msg, color_msg=None) -> None:
        """Adds (ADD: a BOX primitive) or removes (REMOVE) a world object."""
        obj = collision_object_msg
        if obj.operation == REMOVE:
            self._boxes.pop(obj.id, None)
            return
        prim, pose = obj.primitives[0], obj.primitive_poses[0]
        if prim.type != BOX:
            raise ValueError("the fake scene supports BOX world objects only")
        centre = np.array([pose.position.x, pose.position.y, pose.position.z])
        half = 0.5 * np.asarray(prim.dimensions, dtype=float)
        self._boxes[obj.id] = (centre - half, centre + half)

    def remove_all_collision_objects(self) -> None:
        """Removes every world object."""
        self._boxes = {}

    def process_attached_collision_object(self, object) -> bool:  # noqa: A002 - moveit_py's name
        """Attaches (ADD: a SPHERE, pose in the link frame) or detaches (REMOVE) on the current state."""
        obj = object.object
        if obj.operation == REMOVE:
            self._state._detach(obj.id)
            return True
        prim, pose = obj.primitives[0], obj.primitive_poses[0]
        if prim.type != SPHERE:
            raise ValueError("the fake scene supports SPHERE attached objects only")
        offset = np.array([pose.position.x, pose.position.y, pose.position.z])
        self._state._attach(AttachedBody(obj.id, object.link_name, offset, float(prim.dimensions[0])))
        return True

    @property
    def world_object_ids(self) -> list[str]:
        """Ids of the world objects (fake's accessor)."""
        return list(self._boxes)

    # ------------------------------------------------------------------ checks
    def _spheres(self, state: RobotState):
        if state.dirty:
            raise RuntimeError("collision check on a dirty RobotState: call update() first")
        for link, (centre, radius) in LINK_SPHERES.items():
            tf = state.get_global_link_transform(link)
            yield link, tf[:3, :3] @ np.asarray(centre) + tf[:3, 3], radius
        for body in state.attached_bodies.values():
            tf = state.get_global_link_transform(body.link_name)
            yield body.id, tf[:3, :3] @ body.offset + tf[:3, 3], body.radius

    def fake_contacts(self, state: RobotState) -> list[tuple[str, str]]:
        """(robot part, world object) pairs in contact (fake's accessor)."""
        out = []
        for part, c, r in self._spheres(state):
            for oid, (lo, hi) in self._boxes.items():
                if np.linalg.norm(c - np.clip(c, lo, hi)) < r:
                    out.append((part, oid))
        return out

    def _record(self, method: str, state: RobotState, group: str) -> None:
        self.fake_calls.append(
            {
                "method": method,
                "group": group,
                "joint_positions": state.joint_positions,
                "attached": sorted(state.attached_bodies),
            }
        )

    def is_state_colliding(self, *args, **kwargs) -> bool:
        """``is_state_colliding(joint_model_group_name, verbose=False)`` (current state) or
        ``is_state_colliding(robot_state, joint_model_group_name, verbose=False)``."""
        if args and isinstance(args[0], RobotState) or "robot_state" in kwargs:
            return self._colliding(*args, **kwargs)
        return self._colliding(self._state, *args, **kwargs)

    def _colliding(self, robot_state, joint_model_group_name, verbose=False) -> bool:
        if not self._model.has_joint_model_group(joint_model_group_name):
            raise ValueError(f"no group {joint_model_group_name!r}")
        self._record("is_state_colliding", robot_state, joint_model_group_name)
        return bool(self.fake_contacts(robot_state))

    def is_state_valid(self, robot_state, joint_model_group_name, verbose=False) -> bool:
        """Not colliding (no feasibility predicate is set in the fake)."""
        if not self._model.has_joint_model_group(joint_model_group_name):
            raise ValueError(f"no group {joint_model_group_name!r}")
        self._record("is_state_valid", robot_state, joint_model_group_name)
        return not self.fake_contacts(robot_state)
