"""MJCF of the tabletop scene: the Panda with its hand, actuators, objects, trays, camera (ROS-free).

Physics (all tasks): gravity and contacts on, `implicitfast` integration. The arm is driven like a
ros2_control position interface on a Franka: one position servo per joint (`arm_kp` / `arm_kd`),
torques clipped to the Panda's limits from the URDF (87 Nm joints 1-4, 12 Nm joints 5-7), the
links' weight compensated as Franka's controller does (MuJoCo `gravcomp`). Each finger has a
position servo toward the same set-point (the gripper command, rate-limited by SimScene to the
hand's speed) with its force capped at `gripper_force_n`, so the squeeze on a held object never
exceeds `gripper_force_n` (the object is pressed by equal and opposite finger forces).

Objects: reach tasks keep their cube(s) static and contact-free (touch targets, as before);
manipulation tasks have one free cube with mass and friction (elliptic cones, torsional friction on
the finger pads), mocap trays and a mocap distractor cylinder. Sizes, colours and positions are set
per episode on the compiled model (see SimScene.reset).
"""

from __future__ import annotations

import numpy as np

from dp_sim.core.robot import FINGER_JOINTS, JOINT_NAMES, load_panda, load_panda_full, panda_mjcf_body

TRAY_WALL_M = 0.01  # wall thickness
TRAY_HEIGHT_M = 0.035  # wall height above the table
TRAY_FLOOR_M = 0.008  # floor thickness
DISTRACTOR_RADIUS_M = 0.03
DISTRACTOR_HEIGHT_M = 0.08
# Finger servo: stiffness (N/m) and damping (N s/m) of the coupled finger slide.
FINGER_KP = 3000.0
FINGER_KV = 20.0


def look_at_xyaxes(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MuJoCo camera `xyaxes` (x right, y up; the camera looks along -z) aimed at target."""
    fwd = np.asarray(target, float) - np.asarray(pos, float)
    fwd /= np.linalg.norm(fwd)
    up = np.array([0.0, 0.0, 1.0])
    x = np.cross(fwd, up)
    if np.linalg.norm(x) < 1e-6:  # looking straight down/up: pick world x as "up"
        x = np.cross(fwd, np.array([1.0, 0.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(-fwd, x)
    return np.concatenate([x, y])


def camera_transform_from_config(cfg) -> np.ndarray:
    """Nominal world <- camera optical frame (4, 4), from the config alone (no jitter, no rendering)."""
    xy = look_at_xyaxes(np.asarray(cfg.camera_pos), np.asarray(cfg.camera_lookat))
    x, y = xy[:3], xy[3:]
    z = np.cross(x, y)
    t = np.eye(4)
    # optical axes: x_opt = x_cam, y_opt = -y_cam, z_opt = -z_cam
    t[:3, :3] = np.stack([x, -y, -z], axis=1)
    t[:3, 3] = cfg.camera_pos
    return t


def _f(v) -> str:
    return " ".join(f"{float(x):.9g}" for x in np.ravel(v))


def _actuators(cfg, effort: np.ndarray) -> str:
    lines = []
    for i, name in enumerate(JOINT_NAMES):
        kp, kd, lim = cfg.arm_kp[i], cfg.arm_kd[i], effort[i]
        lines.append(
            f'<position name="{name}" joint="{name}" kp="{kp:.9g}" kv="{kd:.9g}" '
            f'forcerange="{-lim:.9g} {lim:.9g}" ctrlrange="-6.3 6.3"/>'
        )
    f = cfg.gripper_force_n
    for name in FINGER_JOINTS:
        lines.append(
            f'<position name="{name}" joint="{name}" kp="{FINGER_KP}" kv="{FINGER_KV}" '
            f'forcerange="{-f:.9g} {f:.9g}" ctrlrange="0 0.04"/>'
        )
    return "\n    ".join(lines)


def _objects(cfg) -> str:
    spec = cfg.spec
    h = cfg.cube_size_m / 2
    out = []
    if not spec.gripper:
        for i in range(spec.num_cubes):
            out.append(
                f'<body name="cube{i}" mocap="true" pos="0.5 0 {h}">'
                f'<geom name="cube{i}" type="box" size="{h} {h} {h}" rgba="0.85 0.12 0.1 1" '
                'contype="0" conaffinity="0"/></body>'
            )
    else:
        # compiled at the largest size: MuJoCo's mid-phase keeps the compile-time bounding volume,
        # so a cube grown at run time would lose contacts beyond it (SimScene.reset resizes it)
        h = cfg.cube_size_m * (1.0 + cfg.cube_size_jitter) / 2
        out.append(
            f'<body name="cube0" pos="0.5 0 {h}"><freejoint name="cube0"/>'
            f'<geom name="cube0" type="box" size="{h} {h} {h}" mass="{cfg.cube_mass_kg}" '
            'rgba="0.85 0.12 0.1 1" class="object"/></body>'
        )
    w, t = cfg.tray_inner_m / 2, TRAY_WALL_M / 2
    for j in range(spec.num_trays):
        zc = TRAY_HEIGHT_M / 2
        parts = [
            f'<geom name="tray{j}_floor" type="box" size="{w + 2 * t} {w + 2 * t} {TRAY_FLOOR_M / 2}" '
            f'pos="0 0 {TRAY_FLOOR_M / 2}" class="tray"/>'
        ]
        for k, (dx, dy, sx, sy) in enumerate(
            [(w + t, 0, t, w + 2 * t), (-w - t, 0, t, w + 2 * t), (0, w + t, w, t), (0, -w - t, w, t)]
        ):
            parts.append(
                f'<geom name="tray{j}_wall{k}" type="box" size="{sx} {sy} {zc}" pos="{dx} {dy} {zc}" '
                'class="tray"/>'
            )
        out.append(f'<body name="tray{j}" mocap="true" pos="0.5 {0.25 - 0.5 * j} 0">{"".join(parts)}</body>')
    out.append(
        f'<body name="distractor" mocap="true" pos="0.3 0.6 -1">'
        f'<geom name="distractor" type="cylinder" size="{DISTRACTOR_RADIUS_M} {DISTRACTOR_HEIGHT_M / 2}" '
        f'pos="0 0 {DISTRACTOR_HEIGHT_M / 2}" rgba="0.35 0.35 0.4 1" class="object"/></body>'
    )
    return "\n    ".join(out)


def build_mjcf(cfg) -> str:
    """MJCF text of the scene for `cfg` (a SimConfig); the arm is generated from the Panda URDF."""
    kin = load_panda()
    assets, arm = panda_mjcf_body(kin)
    full, _ = load_panda_full(str(kin.urdf_path))
    effort = np.asarray(full.effortLimit[: len(JOINT_NAMES)], dtype=float)
    xyaxes = _f(look_at_xyaxes(cfg.camera_pos, cfg.camera_lookat))
    w, hgt = max(cfg.camera_width, 64), max(cfg.camera_height, 64)
    fr = cfg.friction
    return f"""<mujoco model="dp_sim_tabletop">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{cfg.physics_dt}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <statistic extent="1.5" center="0.4 0 0.2"/>
  <visual>
    <global offwidth="{w}" offheight="{hgt}"/>
    <quality shadowsize="0"/>
    <map znear="0.02" zfar="4"/>
  </visual>
  <default>
    <default class="arm"><geom contype="0" conaffinity="0" group="1"/></default>
    <default class="arm_joint"><joint armature="{cfg.arm_armature}" damping="0.1"/></default>
    <default class="finger_joint"><joint armature="0.05" damping="0.3"/></default>
    <default class="finger"><geom contype="1" conaffinity="1" condim="4" friction="{fr} 0.02 0.0001"
      solref="0.005 1" solimp="0.95 0.99 0.001" priority="1"/></default>
    <default class="object"><geom contype="1" conaffinity="1" condim="4" friction="{fr} 0.01 0.0001"
      solref="0.005 1"/></default>
    <default class="tray"><geom contype="1" conaffinity="1" condim="3" friction="{fr} 0.005 0.0001"
      rgba="0.3 0.3 0.32 1"/></default>
  </default>
  <asset>
{assets}
  </asset>
  <worldbody>
    <light pos="0.4 0 2.0" dir="0 0 -1" directional="true" diffuse="0.7 0.7 0.7"/>
    <light pos="1.5 0.5 1.5" dir="-1 -0.3 -1" directional="true" diffuse="0.3 0.3 0.3"/>
    <geom name="table" type="box" pos="0.4 0 -0.02" size="0.65 0.75 0.02"
          rgba="0.55 0.42 0.3 1" contype="1" conaffinity="1" friction="{fr} 0.005 0.0001"/>
{arm}
    {_objects(cfg)}
    <camera name="cam" pos="{_f(cfg.camera_pos)}" xyaxes="{xyaxes}" fovy="{cfg.camera_fovy_deg}"/>
  </worldbody>
  <contact>
    <exclude body1="panda_finger_joint1_link" body2="panda_finger_joint2_link"/>
  </contact>
  <actuator>
    {_actuators(cfg, effort)}
  </actuator>
</mujoco>
"""
