"""Fake ``moveit.core.robot_state``: the part of ``RobotState`` dp_control uses.

Real API (moveit_py/src/moveit/moveit_core/robot_state/robot_state.cpp): ``RobotState(robot_model)``,
``set_to_default_values()``, the ``joint_positions`` property (dict name -> position, settable),
``set_joint_group_positions(group, positions)``, ``update()``.
"""

from __future__ import annotations


class RobotState:
    """Joint positions of a fake robot model; records ``update`` calls."""

    def __init__(self, robot_model) -> None:
        self.robot_model = robot_model
        self._positions: dict[str, float] = {}
        self.updated = False

    def set_to_default_values(self) -> None:
        """Every joint of the model at 0 (the model's default values)."""
        self._positions = {j: 0.0 for j in self.robot_model.joint_names}

    @property
    def joint_positions(self) -> dict[str, float]:
        """Copy of the positions, by joint name."""
        return dict(self._positions)

    @joint_positions.setter
    def joint_positions(self, values: dict[str, float]) -> None:
        unknown = [j for j in values if j not in self.robot_model.joint_names]
        if unknown:
            raise KeyError(f"fake RobotState: unknown joints {unknown}")
        self._positions.update({k: float(v) for k, v in values.items()})
        self.updated = False

    def set_joint_group_positions(self, group: str, positions) -> None:
        """Positions of ``group``'s joints, in the group's order."""
        names = self.robot_model.groups[group]
        self.joint_positions = dict(zip(names, positions, strict=True))

    def update(self) -> None:
        """Recompute transforms (recorded only)."""
        self.updated = True
