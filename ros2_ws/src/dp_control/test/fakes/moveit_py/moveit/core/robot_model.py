"""Fake of moveit_py's ``moveit.core.robot_model``: RobotModel / JointModelGroup from a URDF + SRDF.

Kinematics by pinocchio (the project's FK library); groups from the SRDF (``<chain>``, ``<joint>``,
``<link>`` members, as MoveIt's SRDF loader reads them); mimic joints from the URDF.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np


class JointModelGroup:
    """A planning group: its name and its (1-dof) joints in model order."""

    def __init__(self, name: str, joint_names: list[str]) -> None:
        self._name = name
        self._joints = list(joint_names)

    @property
    def name(self) -> str:
        """Group name."""
        return self._name

    @property
    def active_joint_model_names(self) -> list[str]:
        """Active (1-dof, non-mimic) joints of the group, in model order."""
        return list(self._joints)

    @property
    def joint_model_names(self) -> list[str]:
        """Joints of the group, in model order."""
        return list(self._joints)


class RobotModel:
    """Robot model from URDF and SRDF text (moveit_py builds it from robot_description(_semantic)).

    Args:
        urdf_xml: robot_description.
        srdf_xml: robot_description_semantic.
    """

    def __init__(self, urdf_xml: str, srdf_xml: str) -> None:
        import pinocchio as pin

        self._pin = pin
        self.model = pin.buildModelFromXML(urdf_xml)
        self.data = self.model.createData()
        urdf = ET.fromstring(urdf_xml)
        self._name = urdf.get("name", "")
        self.mimic: dict[str, tuple[str, float, float]] = {}
        parent_of: dict[str, tuple[str, str]] = {}
        for joint in urdf.findall("joint"):
            parent_of[joint.find("child").get("link")] = (joint.find("parent").get("link"), joint.get("name"))
            m = joint.find("mimic")
            if m is not None:
                self.mimic[joint.get("name")] = (
                    m.get("joint"),
                    float(m.get("multiplier", 1.0)),
                    float(m.get("offset", 0.0)),
                )
        # 1-dof variables (revolute / prismatic), model order.
        self.variable_names = [
            self.model.names[j] for j in range(1, self.model.njoints) if self.model.joints[j].nq == 1
        ]
        self.lower = {n: float(self.model.lowerPositionLimit[self._q_index(n)]) for n in self.variable_names}
        self.upper = {n: float(self.model.upperPositionLimit[self._q_index(n)]) for n in self.variable_names}
        self.groups: dict[str, JointModelGroup] = {}
        srdf = ET.fromstring(srdf_xml)
        for group in srdf.findall("group"):
            joints: list[str] = []
            for chain in group.findall("chain"):
                link, chain_joints = chain.get("tip_link"), []
                while link != chain.get("base_link"):
                    if link not in parent_of:
                        raise ValueError(f"SRDF chain {chain.attrib} is not a chain of the URDF")
                    link, joint = parent_of[link]
                    chain_joints.append(joint)
                joints += chain_joints[::-1]
            joints += [j.get("name") for j in group.findall("joint")]
            members = {lk.get("name") for lk in group.findall("link")}
            joints += [j for child, (_, j) in parent_of.items() if child in members]
            ordered = [v for v in self.variable_names if v in joints and v not in self.mimic]
            self.groups[group.get("name")] = JointModelGroup(group.get("name"), ordered)

    def _q_index(self, name: str) -> int:
        return int(self.model.joints[self.model.getJointId(name)].idx_q)

    @property
    def name(self) -> str:
        """Robot name."""
        return self._name

    @property
    def joint_model_group_names(self) -> list[str]:
        """Names of the SRDF groups."""
        return list(self.groups)

    def has_joint_model_group(self, joint_model_group_name: str) -> bool:
        """True when the SRDF defines this group."""
        return joint_model_group_name in self.groups

    def get_joint_model_group(self, joint_model_group_name: str) -> JointModelGroup:
        """The group of that name (None when absent, as moveit_py returns a null pointer)."""
        return self.groups.get(joint_model_group_name)

    def link_transforms(self, positions: dict[str, float]) -> dict[str, np.ndarray]:
        """{link: (4, 4) world transform} for variable positions by name (FK)."""
        pin = self._pin
        q = pin.neutral(self.model)
        for name, value in positions.items():
            q[self._q_index(name)] = value
        pin.framesForwardKinematics(self.model, self.data, q)
        return {
            f.name: np.asarray(self.data.oMf[k].homogeneous).copy()
            for k, f in enumerate(self.model.frames)
            if f.type == pin.FrameType.BODY
        }
