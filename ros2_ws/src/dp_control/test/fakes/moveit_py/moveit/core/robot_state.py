"""Fake of moveit_py's ``moveit.core.robot_state.RobotState`` (the members dp_control uses and a few more).

Like MoveIt's RobotState: variable positions by name, lazily updated transforms (``dirty`` until
``update()``), attached bodies carried by the state (copied with it), mimic joints applied on update.
"""

from __future__ import annotations

import copy

import numpy as np


class AttachedBody:
    """A sphere attached to a link (the toy collision model's attached objects)."""

    def __init__(self, object_id: str, link_name: str, offset: np.ndarray, radius: float) -> None:
        self.id, self.link_name, self.offset, self.radius = object_id, link_name, np.asarray(offset), radius


class RobotState:
    """A robot state of ``robot_model`` (moveit_py: ``RobotState(robot_model)``)."""

    def __init__(self, robot_model) -> None:
        self._model = robot_model
        self._positions = {n: 0.0 for n in robot_model.variable_names}
        self._attached: dict[str, AttachedBody] = {}
        self._transforms: dict[str, np.ndarray] | None = None

    # moveit_py binds __copy__ / __deepcopy__ to the C++ copy constructor (attached bodies included).
    def __copy__(self) -> RobotState:
        new = RobotState(self._model)
        new._positions = dict(self._positions)
        new._attached = dict(self._attached)
        new._transforms = None if self._transforms is None else dict(self._transforms)
        return new

    def __deepcopy__(self, memo) -> RobotState:
        return copy.copy(self)

    @property
    def robot_model(self):
        """The robot model of this state."""
        return self._model

    @property
    def dirty(self) -> bool:
        """True when positions changed since the last ``update()``."""
        return self._transforms is None

    @property
    def joint_positions(self) -> dict[str, float]:
        """{variable: position} of every variable (a copy)."""
        return dict(self._positions)

    @joint_positions.setter
    def joint_positions(self, joint_positions: dict[str, float]) -> None:
        for name, value in joint_positions.items():
            if name not in self._positions:  # MoveIt throws on an unknown variable name
                raise KeyError(f"unknown joint variable {name!r}")
            self._positions[name] = float(value)
        self._transforms = None

    def set_joint_group_positions(self, joint_model_group_name: str, position_values) -> None:
        """Sets the group's joints from an array in the group's joint order."""
        names = self._model.get_joint_model_group(joint_model_group_name).active_joint_model_names
        values = np.asarray(position_values, dtype=float)
        if values.shape != (len(names),):
            raise ValueError(f"group {joint_model_group_name} has {len(names)} joints, got {values.shape}")
        self.joint_positions = dict(zip(names, values.tolist(), strict=True))

    def get_joint_group_positions(self, joint_model_group_name: str) -> np.ndarray:
        """The group's joint positions in the group's order."""
        names = self._model.get_joint_model_group(joint_model_group_name).active_joint_model_names
        return np.array([self._positions[n] for n in names])

    def set_to_default_values(self) -> None:
        """Every variable to 0, or to the middle of its bounds when 0 is outside them (MoveIt's rule)."""
        for n in self._positions:
            lo, hi = self._model.lower[n], self._model.upper[n]
            self._positions[n] = 0.0 if lo <= 0.0 <= hi else 0.5 * (lo + hi)
        self._transforms = None

    def clear_attached_bodies(self) -> None:
        """Removes every attached body from this state."""
        self._attached = {}

    def update(self, force: bool = False, type: str = "all") -> None:  # noqa: A002 - moveit_py's name
        """Applies mimic joints and computes the link transforms."""
        for name, (src, mult, off) in self._model.mimic.items():
            if name in self._positions and src in self._positions:
                self._positions[name] = mult * self._positions[src] + off
        if force or self._transforms is None:
            self._transforms = self._model.link_transforms(self._positions)

    def get_global_link_transform(self, link_name: str) -> np.ndarray:
        """(4, 4) transform of a link in the model frame (the state must be updated)."""
        if self._transforms is None:
            raise RuntimeError("RobotState is dirty: call update() before reading transforms")
        return self._transforms[link_name].copy()

    # --- the fake's own accessors (the real state keeps attached bodies in C++; the planning scene
    # attaches them through process_attached_collision_object)
    @property
    def attached_bodies(self) -> dict[str, AttachedBody]:
        """{object id: AttachedBody} carried by this state."""
        return dict(self._attached)

    def _attach(self, body: AttachedBody) -> None:
        self._attached[body.id] = body

    def _detach(self, object_id: str) -> None:
        self._attached.pop(object_id, None)
