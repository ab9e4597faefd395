"""Franka Panda model: URDF discovery, pinocchio kinematics and MJCF generation (ROS-free).

The URDF and collision meshes come from the `example-robot-data` package (PyPI wheel or the
ROS/robotpkg install). The MuJoCo arm is generated from the *same* pinocchio model, so the
kinematics of the simulator and of the expert's IK are identical by construction.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

JOINT_NAMES: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
TCP_FRAME = "panda_hand_tcp"
# Ready pose of the Panda (franka_ros "ready"): gripper pointing down above the table.
HOME_Q = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])
FINGER_JOINTS: tuple[str, str] = ("panda_finger_joint1", "panda_finger_joint2")
# The gripper command / action column is named after this joint and is its position: the opening
# of ONE finger in metres (0 = closed, GRIPPER_MAX_M = fully open; total gap = 2x), as
# franka_gripper's GripperCommand `position` (it commands width = 2 * position).
GRIPPER_JOINT = FINGER_JOINTS[0]
GRIPPER_MAX_M = 0.04
# Commands this far outside [0, GRIPPER_MAX_M] (float32 rounding of a learned policy's output) are
# clamped; anything further out is refused.
GRIPPER_TOL_M = 1e-4
# Finger opening (m, per finger) at which the IK model locks the fingers (the TCP does not depend on it).
FINGER_OPENING_M = 0.02
_URDF_REL = Path("example-robot-data/robots/panda_description/urdf/panda.urdf")


def find_panda_urdf() -> Path:
    """Locate panda.urdf of example-robot-data.

    Search order: $DP_SIM_PANDA_URDF, every `<prefix>/share` of AMENT_PREFIX_PATH /
    CMAKE_PREFIX_PATH, then `cmeel.prefix/share` next to every sys.path entry (PyPI wheel).

    Raises:
        FileNotFoundError: with the install hint when nothing is found.
    """
    env = os.environ.get("DP_SIM_PANDA_URDF")
    if env:
        p = Path(env)
        if not p.is_file():
            raise FileNotFoundError(f"DP_SIM_PANDA_URDF={env} is not a file")
        return p
    candidates: list[Path] = []
    for var in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
        for prefix in os.environ.get(var, "").split(os.pathsep):
            if prefix:
                candidates.append(Path(prefix) / "share")
    for entry in sys.path:
        if entry:
            candidates.append(Path(entry) / "cmeel.prefix" / "share")
    candidates.append(Path(sys.prefix) / "share")
    for share in candidates:
        p = share / _URDF_REL
        if p.is_file():
            return p
    raise FileNotFoundError(
        "panda.urdf of example-robot-data not found; install it with "
        "`pip install example-robot-data==6.0.0` (or set DP_SIM_PANDA_URDF)"
    )


def package_share_dir(urdf_path: Path) -> Path:
    """Directory that resolves `package://example-robot-data/...` URIs of `urdf_path`."""
    return urdf_path.resolve().parents[4]


@dataclass(frozen=True)
class PandaKinematics:
    """Pinocchio model of the 7-DoF Panda (fingers locked) with the TCP frame.

    Attributes:
        model: pinocchio.Model with nq == 7 (joint order = JOINT_NAMES).
        geom_model: pinocchio.GeometryModel (collision geometry) of the reduced model.
        tcp_frame_id: frame id of `panda_hand_tcp`.
        urdf_path: file the model was built from.
    """

    model: object
    geom_model: object
    tcp_frame_id: int
    urdf_path: Path

    @property
    def lower(self) -> np.ndarray:
        """Lower joint limits (rad), shape (7,)."""
        return np.asarray(self.model.lowerPositionLimit, dtype=float).copy()

    @property
    def upper(self) -> np.ndarray:
        """Upper joint limits (rad), shape (7,)."""
        return np.asarray(self.model.upperPositionLimit, dtype=float).copy()

    @property
    def velocity_limit(self) -> np.ndarray:
        """Joint velocity limits (rad/s) from the URDF, shape (7,)."""
        return np.asarray(self.model.velocityLimit, dtype=float).copy()

    def tcp_pose(self, q: np.ndarray) -> np.ndarray:
        """World (= base) pose of the TCP as a (4, 4) homogeneous matrix for joints q (7,)."""
        import pinocchio as pin

        data = self.model.createData()
        pin.framesForwardKinematics(self.model, data, np.asarray(q, dtype=float))
        return np.asarray(data.oMf[self.tcp_frame_id].homogeneous).copy()


@functools.lru_cache(maxsize=4)
def load_panda(urdf_path: str | None = None) -> PandaKinematics:
    """Build the reduced (7-DoF) pinocchio model and its collision geometry (cached)."""
    import pinocchio as pin

    path = Path(urdf_path) if urdf_path else find_panda_urdf()
    full = pin.buildModelFromUrdf(str(path))
    geom = pin.buildGeomFromUrdf(
        full, str(path), pin.GeometryType.COLLISION, package_dirs=[str(package_share_dir(path))]
    )
    q_ref = pin.neutral(full)
    lock = []
    for name in ("panda_finger_joint1", "panda_finger_joint2"):
        if full.existJointName(name):
            jid = full.getJointId(name)
            lock.append(jid)
            q_ref[full.idx_qs[jid]] = FINGER_OPENING_M
    model, geom_red = pin.buildReducedModel(full, geom, lock, q_ref)
    names = tuple(model.names[i] for i in range(1, model.njoints))
    if names != JOINT_NAMES:
        raise ValueError(f"unexpected Panda joints in {path}: expected {JOINT_NAMES}. Got {names}")
    return PandaKinematics(model, geom_red, model.getFrameId(TCP_FRAME), path)


def _fmt(v) -> str:
    return " ".join(f"{float(x):.9g}" for x in np.ravel(v))


def _quat_wxyz(rot: np.ndarray) -> np.ndarray:
    import mujoco

    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(rot, dtype=float).ravel())
    return q


@functools.lru_cache(maxsize=4)
def load_panda_full(urdf_path: str | None = None) -> tuple[object, object]:
    """Full (9-DoF, fingers free) pinocchio model and collision geometry, for building the MJCF."""
    import pinocchio as pin

    path = Path(urdf_path) if urdf_path else find_panda_urdf()
    full = pin.buildModelFromUrdf(str(path))
    geom = pin.buildGeomFromUrdf(
        full, str(path), pin.GeometryType.COLLISION, package_dirs=[str(package_share_dir(path))]
    )
    return full, geom


def _joint_xml(model, jid: int) -> str:
    """MJCF <joint> for pinocchio joint `jid` (revolute about z, or prismatic)."""
    short = model.joints[jid].shortname()
    lo, hi = model.lowerPositionLimit[model.idx_qs[jid]], model.upperPositionLimit[model.idx_qs[jid]]
    name = model.names[jid]
    if short == "JointModelRZ":
        return f'<joint name="{name}" axis="0 0 1" range="{lo:.6g} {hi:.6g}" class="arm_joint"/>'
    if short.startswith("JointModelP"):
        if short == "JointModelPrismaticUnaligned":
            axis = np.asarray(model.joints[jid].extract().axis)
        else:
            axis = {"JointModelPX": [1, 0, 0], "JointModelPY": [0, 1, 0], "JointModelPZ": [0, 0, 1]}[short]
        return (
            f'<joint name="{name}" type="slide" axis="{_fmt(axis)}" range="{lo:.6g} {hi:.6g}" '
            'class="finger_joint"/>'
        )
    raise ValueError(f"unsupported joint type {short} for {name}")


def panda_mjcf_body(kin: PandaKinematics, rgba: str = "0.85 0.85 0.88 1") -> tuple[str, str]:
    """MJCF of the arm and hand, generated from the full pinocchio model (inertias included).

    Returns:
        (assets, worldbody): `<mesh>` asset elements and the nested `<body>` tree (plus the base
        geoms, which hang on the world body) as XML strings. Joints are named as in the URDF (the
        arm joints use default class `arm_joint`, the two finger slides `finger_joint`); arm meshes
        use class `arm` (visual only), the finger boxes class `finger` (they collide). A site `tcp`
        sits on the TCP frame.
    """
    model, geom = load_panda_full(str(kin.urdf_path))
    assets: list[str] = []
    geoms_by_joint: dict[int, list[str]] = {i: [] for i in range(model.njoints)}
    for k, obj in enumerate(geom.geometryObjects):
        pos, quat = obj.placement.translation, _quat_wxyz(obj.placement.rotation)
        finger = obj.parentJoint > len(JOINT_NAMES)
        common = (
            f'pos="{_fmt(pos)}" quat="{_fmt(quat)}" rgba="{rgba}" class="{"finger" if finger else "arm"}"'
        )
        shape = obj.geometry
        if obj.meshPath and obj.meshPath.lower().endswith(".stl"):
            mname = f"mesh{k}"
            assets.append(f'<mesh name="{mname}" file="{obj.meshPath}" scale="{_fmt(obj.meshScale)}"/>')
            geoms_by_joint[obj.parentJoint].append(f'<geom type="mesh" mesh="{mname}" {common}/>')
        elif type(shape).__name__ == "Box":
            half = np.asarray(shape.halfSide)
            geoms_by_joint[obj.parentJoint].append(
                f'<geom name="{obj.name}" type="box" size="{_fmt(half)}" {common}/>'
            )
        else:
            logger.warning("skipping unsupported collision geometry %s", obj.name)

    tcp_id = model.getFrameId(TCP_FRAME)
    tcp = model.frames[tcp_id]

    def inertial(jid: int) -> str:
        ine = model.inertias[jid]
        mass = max(float(ine.mass), 1e-3)
        full = np.asarray(ine.inertia) + np.eye(3) * 1e-6  # MuJoCo needs a positive-definite inertia
        vals = [full[0, 0], full[1, 1], full[2, 2], full[0, 1], full[0, 2], full[1, 2]]
        return f'<inertial pos="{_fmt(ine.lever)}" mass="{mass:.9g}" fullinertia="{_fmt(vals)}"/>'

    def body(jid: int, indent: str) -> str:
        place = model.jointPlacements[jid]
        lines = [
            f'{indent}<body name="{model.names[jid]}_link" pos="{_fmt(place.translation)}" '
            f'quat="{_fmt(_quat_wxyz(place.rotation))}" gravcomp="1">',
            f"{indent}  {inertial(jid)}",
            f"{indent}  {_joint_xml(model, jid)}",
        ]
        lines += [indent + "  " + g for g in geoms_by_joint[jid]]
        if tcp.parentJoint == jid:
            lines.append(
                f'{indent}  <site name="tcp" pos="{_fmt(tcp.placement.translation)}" '
                f'quat="{_fmt(_quat_wxyz(tcp.placement.rotation))}" size="0.005"/>'
            )
        for c in range(1, model.njoints):
            if model.parents[c] == jid:
                lines.append(body(c, indent + "  "))
        lines.append(f"{indent}</body>")
        return "\n".join(lines)

    world = list(geoms_by_joint[0])
    for c in range(1, model.njoints):
        if model.parents[c] == 0:
            world.append(body(c, ""))
    return "\n".join(assets), "\n".join(world)
