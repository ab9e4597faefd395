"""Forward kinematics of a URDF frame (pinocchio; ROS-free): the one FK of the end-effector paths
drawn in rviz (policy_node's predicted path, control_node's commanded and measured paths).

Pinocchio is imported when a model is built: without it, ``EndEffectorPath`` raises ImportError and
the callers draw no path.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

import numpy as np


def urdf_root_link(urdf_xml: str) -> str:
    """Name of the URDF's root link (the link that is no joint's child)."""
    root = ET.fromstring(urdf_xml)
    links = [link.get("name") for link in root.findall("link")]
    children = {j.find("child").get("link") for j in root.findall("joint") if j.find("child") is not None}
    roots = [name for name in links if name not in children]
    if not roots:
        raise ValueError("robot_description has no root link")
    return roots[0]


class EndEffectorPath:
    """Forward kinematics of one frame of a URDF (pinocchio).

    Args:
        urdf_xml: robot_description text.
        ee_frame: frame (link) whose origin is drawn; "" = the last link of the model.

    Raises:
        ImportError: pinocchio is not installed.
        ValueError: the URDF does not parse or has no such frame.
    """

    def __init__(self, urdf_xml: str, ee_frame: str = ""):
        import pinocchio as pin

        self._pin = pin
        try:
            self.model = pin.buildModelFromXML(urdf_xml)
        except Exception as exc:  # pinocchio raises plain RuntimeError/ValueError on bad XML
            raise ValueError(f"robot_description does not parse as URDF: {exc}") from exc
        self.data = self.model.createData()
        self.root_link = urdf_root_link(urdf_xml)
        bodies = [f.name for f in self.model.frames if f.type == pin.FrameType.BODY]
        if not ee_frame:
            if not bodies:
                raise ValueError("robot_description has no links")
            ee_frame = bodies[-1]
        if not self.model.existFrame(ee_frame):
            raise ValueError(f"ee_frame {ee_frame!r} is not a frame of robot_description; links: {bodies}")
        self.ee_frame = ee_frame
        self._frame_id = self.model.getFrameId(ee_frame)
        # joint name -> (index in q, nq) for 1-dof joints (revolute/prismatic: nq 1; continuous: 2)
        self._slots = {}
        for jid in range(1, self.model.njoints):
            joint = self.model.joints[jid]
            if joint.nv == 1 and joint.nq in (1, 2):
                self._slots[self.model.names[jid]] = (joint.idx_q, joint.nq)
        self._q0 = pin.neutral(self.model)

    def configuration(self, positions: Mapping[str, float]) -> np.ndarray:
        """q vector from joint positions by name (others neutral)."""
        q = self._q0.copy()
        for name, value in positions.items():
            slot = self._slots.get(name)
            if slot is None:
                continue
            idx, nq = slot
            if nq == 1:
                q[idx] = value
            else:
                q[idx], q[idx + 1] = np.cos(value), np.sin(value)
        return q

    def positions(
        self,
        rows: np.ndarray,
        joint_names: Sequence[str],
        fixed: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """End-effector positions of each row.

        Args:
            rows: (T, A) joint positions, columns named by `joint_names` (rad / m).
            joint_names: column names.
            fixed: positions of other joints (e.g. current joint states), by name.

        Returns:
            (T, 3) positions of ee_frame in the root link frame, m.
        """
        pin = self._pin
        base = dict(fixed or {})
        out = np.empty((rows.shape[0], 3))
        for t, row in enumerate(np.asarray(rows, dtype=float)):
            base.update(zip(joint_names, row, strict=True))
            q = self.configuration(base)
            pin.forwardKinematics(self.model, self.data, q)
            out[t] = pin.updateFramePlacement(self.model, self.data, self._frame_id).translation
        return out
