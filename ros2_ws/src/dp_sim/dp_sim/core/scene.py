"""MuJoCo tabletop scene: the Panda and its hand under servo control, task objects, a depth/RGB camera.

ROS-free. Frames: `world` has its origin at the robot base on the table top (z up, x away from
the robot). The camera cloud is expressed in the camera's optical frame (x right, y down, z
forward, as a ROS camera driver does); `SimScene.camera_transform` is the *nominal* world <- optical
transform (what a calibration gives the robot), the rendered camera may be jittered per episode.

Physics, actuators and objects: `dp_sim.core.model`; tasks and success: `dp_sim.core.tasks`; the
depth camera model: `dp_sim.core.sensors`, its rendering `dp_sim.core.scene_camera`; parameters:
`dp_sim.core.config.SimConfig`.
"""

from __future__ import annotations

import logging

import numpy as np

from dp_sim.core.gl import configure_gl

configure_gl()

import mujoco  # noqa: E402

from dp_sim.core import sensors  # noqa: E402
from dp_sim.core.config import SimConfig  # noqa: E402
from dp_sim.core.model import TRAY_FLOOR_M, build_mjcf, camera_transform_from_config  # noqa: E402
from dp_sim.core.robot import (  # noqa: E402
    FINGER_JOINTS,
    FINGER_OPENING_M,
    GRIPPER_MAX_M,
    GRIPPER_TOL_M,
    HOME_Q,
    JOINT_NAMES,
    load_panda,
)
from dp_sim.core.scene_camera import SceneCamera  # noqa: E402
from dp_sim.core.sensors import transform_points  # noqa: E402
from dp_sim.core.tasks import Layout, SuccessMonitor, sample_layout  # noqa: E402

logger = logging.getLogger(__name__)

__all__ = ["SimConfig", "SimScene", "camera_transform_from_config", "transform_points"]


class SimScene(SceneCamera):
    """The simulated tabletop: reset(seed), set_command(q), set_gripper(w), step(duration), render.

    Typical use (dt = 0.1 s per control step)::

        scene = SimScene(SimConfig(task="lift"))
        scene.reset(seed=3)
        obs = scene.render()          # depth/rgb images + cloud in the optical frame
        scene.set_command(q_target)   # (7,) rad, absolute joint targets (tracked by the servos)
        scene.set_gripper(0.0)        # per-finger opening (m), 0 = close (force-limited)
        scene.step(0.1)
        scene.is_success()
    """

    def __init__(self, cfg: SimConfig | None = None) -> None:
        self.cfg = cfg or SimConfig()
        self.spec = self.cfg.spec
        self.kin = load_panda()
        self.xml = build_mjcf(self.cfg)
        self.model = mujoco.MjModel.from_xml_string(self.xml)
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.joint_names = JOINT_NAMES
        self._qadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in JOINT_NAMES], dtype=int)
        self._vadr = np.array([m.jnt_dofadr[m.joint(n).id] for n in JOINT_NAMES], dtype=int)
        self._fadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in FINGER_JOINTS], dtype=int)
        self._fvadr = np.array([m.jnt_dofadr[m.joint(n).id] for n in FINGER_JOINTS], dtype=int)
        self._grip_act = np.array([m.actuator(n).id for n in FINGER_JOINTS], dtype=int)
        self._tcp_site = m.site("tcp").id
        self._cam_id = m.camera("cam").id
        self._cube_geoms = [m.geom(f"cube{i}").id for i in range(self.spec.num_cubes)]
        self._cube_body = m.body("cube0").id
        self._cube_free = self.spec.gripper
        self._cube_qadr = int(m.jnt_qposadr[m.joint("cube0").id]) if self._cube_free else -1
        self._cube_vadr = int(m.jnt_dofadr[m.joint("cube0").id]) if self._cube_free else -1
        finger_bodies = {m.body(f"{n}_link").id for n in FINGER_JOINTS}
        self._finger_body1 = m.body(f"{FINGER_JOINTS[0]}_link").id
        self._finger_geoms = np.array([g for g in range(m.ngeom) if m.geom_bodyid[g] in finger_bodies])
        self._mocap = {
            m.body(i).name: int(m.body_mocapid[i]) for i in range(m.nbody) if m.body_mocapid[i] >= 0
        }
        self.lower = self.kin.lower
        self.upper = self.kin.upper
        self.nominal_camera = camera_transform_from_config(self.cfg)
        self.true_camera = self.nominal_camera.copy()
        self.monitor = SuccessMonitor(self.spec, self.cfg)
        self._renderer = None
        self.seed = 0
        self.rng = np.random.default_rng(0)
        self._noise_rng = np.random.default_rng(1)
        self.q_cmd = HOME_Q.copy()
        self.gripper_cmd = FINGER_OPENING_M
        self._grip_sp = FINGER_OPENING_M
        self.layout: Layout | None = None
        self.reset(0)

    # ----------------------------------------------------------------------------------- state
    @property
    def time(self) -> float:
        """Sim time (s) since the episode's reset."""
        return float(self.data.time)

    @property
    def q(self) -> np.ndarray:
        """Measured arm joint positions (7,) rad."""
        return self.data.qpos[self._qadr].copy()

    @property
    def qd(self) -> np.ndarray:
        """Measured arm joint velocities (7,) rad/s."""
        return self.data.qvel[self._vadr].copy()

    @property
    def finger_q(self) -> np.ndarray:
        """Measured finger joint positions (2,) m (panda_finger_joint1, panda_finger_joint2)."""
        return self.data.qpos[self._fadr].copy()

    @property
    def finger_qd(self) -> np.ndarray:
        """Measured finger joint velocities (2,) m/s."""
        return self.data.qvel[self._fvadr].copy()

    @property
    def gripper_opening(self) -> float:
        """Measured per-finger opening (m): the position of panda_finger_joint1."""
        return float(self.data.qpos[self._fadr[0]])

    @property
    def gripper_force(self) -> np.ndarray:
        """Actuator forces of the two finger servos (2,) N (each within +-gripper_force_n)."""
        return self.data.actuator_force[self._grip_act].copy()

    @property
    def cube_poses(self) -> np.ndarray:
        """Initial cube pose(s) of the episode (K, 4): x, y, z, yaw."""
        return self.layout.cubes

    def reset(self, seed: int) -> None:
        """Randomize the layout, the camera jitter and the initial arm pose from `seed`; time = 0."""
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self._noise_rng = np.random.default_rng([self.seed, 1])
        c, m, d = self.cfg, self.model, self.data
        realism = c.realism
        self.layout = sample_layout(c, self.rng, with_distractor=realism and c.distractor)
        noise = self.rng.uniform(-c.init_q_noise_rad, c.init_q_noise_rad, size=7)
        q0 = np.clip(HOME_Q + noise, self.lower, self.upper)
        mujoco.mj_resetData(m, d)
        d.qpos[self._qadr] = q0
        grip0 = GRIPPER_MAX_M if self.spec.gripper else FINGER_OPENING_M
        d.qpos[self._fadr] = grip0
        self.q_cmd = q0.copy()
        self.gripper_cmd = self._grip_sp = grip0
        d.ctrl[: len(JOINT_NAMES)] = q0
        d.ctrl[self._grip_act] = grip0
        self._place_objects()
        self.true_camera = self.nominal_camera
        if realism:  # its own generator: the jitter does not depend on the layout's draws
            jit = np.random.default_rng([self.seed, 2])
            self.true_camera = sensors.jitter_pose(
                self.nominal_camera, jit, c.camera_jitter_m, c.camera_jitter_deg
            )
        sensors.set_mujoco_camera(m, self._cam_id, self.true_camera)
        mujoco.mj_forward(m, d)
        self.monitor.reset()

    def _place_objects(self) -> None:
        m, d, lay = self.model, self.data, self.layout
        h = lay.cube_size / 2
        for i, (x, y, z, yaw) in enumerate(lay.cubes):
            quat = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
            if self._cube_free:
                g = self._cube_geoms[0]
                m.geom_size[g] = h
                m.geom_rbound[g] = h * np.sqrt(3)
                m.geom_aabb[g] = [0, 0, 0, h, h, h]
                m.geom_rgba[g] = lay.cube_rgba
                m.body_inertia[self._cube_body] = self.cfg.cube_mass_kg * (2 * h) ** 2 / 6
                d.qpos[self._cube_qadr : self._cube_qadr + 3] = (x, y, z)
                d.qpos[self._cube_qadr + 3 : self._cube_qadr + 7] = quat
            else:
                d.mocap_pos[self._mocap[f"cube{i}"]] = (x, y, z)
                d.mocap_quat[self._mocap[f"cube{i}"]] = quat
        for j, (x, y) in enumerate(lay.trays):
            d.mocap_pos[self._mocap[f"tray{j}"]] = (x, y, 0.0)
        dis = lay.distractor
        d.mocap_pos[self._mocap["distractor"]] = (0.3, 0.6, -1.0) if dis is None else (dis[0], dis[1], 0.0)

    # ------------------------------------------------------------------------------- commands
    def set_command(self, q_target) -> None:
        """Set the arm joint position targets (7,) rad, clamped to the joint limits.

        Raises:
            ValueError: wrong length or non-finite values.
        """
        q = np.asarray(q_target, dtype=float).reshape(-1)
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            raise ValueError(f"joint command: expected 7 finite values. Got {q_target!r}")
        self.q_cmd = np.clip(q, self.lower, self.upper)

    def set_gripper(self, opening_m: float) -> None:
        """Command the hand: per-finger opening in m (panda_finger_joint1's position, 0..0.04).

        0 closes (squeezing with at most `gripper_force_n`), 0.04 opens fully (total gap 8 cm);
        values within GRIPPER_TOL_M outside the range (float rounding) are clamped.
        The fingers move there at `gripper_speed_mps` (total width rate).

        Raises:
            ValueError: a non-finite value or one outside [0, GRIPPER_MAX_M].
        """
        v = float(opening_m)
        if not np.isfinite(v) or not -GRIPPER_TOL_M <= v <= GRIPPER_MAX_M + GRIPPER_TOL_M:
            raise ValueError(
                f"gripper command: expected a per-finger opening in [0, {GRIPPER_MAX_M}] m. Got {opening_m!r}"
            )
        self.gripper_cmd = float(np.clip(v, 0.0, GRIPPER_MAX_M))

    def step(self, duration_s: float) -> None:
        """Advance the physics by `duration_s` (rounded to whole time steps, >= 1), then judge success."""
        m, d = self.model, self.data
        h = m.opt.timestep
        n = max(1, int(round(duration_s / h)))
        d.ctrl[: len(JOINT_NAMES)] = self.q_cmd
        max_move = 0.5 * self.cfg.gripper_speed_mps * h
        for _ in range(n):
            if self._grip_sp != self.gripper_cmd:
                if self.gripper_cmd > self._grip_sp:
                    # Opening starts from where the fingers are, as a gripper driver's new move does:
                    # a set-point left deep inside a held object (the squeeze) is not unwound at the
                    # hand's speed first, which held the object ~0.5 s after an open command.
                    self._grip_sp = min(self.gripper_cmd, max(self._grip_sp, float(d.qpos[self._fadr].max())))
                self._grip_sp += float(np.clip(self.gripper_cmd - self._grip_sp, -max_move, max_move))
                d.ctrl[self._grip_act] = self._grip_sp
            mujoco.mj_step(m, d)
        self.monitor.update(self)

    # ------------------------------------------------------------------------------------ task
    def tcp_position(self) -> np.ndarray:
        """TCP position in world (3,), m."""
        return self.data.site_xpos[self._tcp_site].copy()

    def tcp_pose(self) -> np.ndarray:
        """TCP pose in world as (4, 4)."""
        t = np.eye(4)
        t[:3, :3] = self.data.site_xmat[self._tcp_site].reshape(3, 3)
        t[:3, 3] = self.data.site_xpos[self._tcp_site]
        return t

    def cube_position(self) -> np.ndarray:
        """Current centre of cube 0 in world (3,), m."""
        return self.data.xpos[self._cube_body].copy()

    def cube_yaw(self) -> float:
        """Current yaw of cube 0 (rad, about world z)."""
        r = self.data.xmat[self._cube_body].reshape(3, 3)
        return float(np.arctan2(r[1, 0], r[0, 0]))

    def cube_velocity(self) -> np.ndarray:
        """Linear velocity of cube 0 (3,), m/s (zero for static cubes)."""
        if not self._cube_free:
            return np.zeros(3)
        return self.data.qvel[self._cube_vadr : self._cube_vadr + 3].copy()

    def tray_index_containing(self, p: np.ndarray, margin_m: float = 0.005) -> int | None:
        """Index of the tray whose interior holds point p (cube centre resting on its floor), or None."""
        half_in = self.cfg.tray_inner_m / 2 - margin_m
        z_max = TRAY_FLOOR_M + self.layout.cube_size / 2 + 0.01
        for j, c in enumerate(self.layout.trays):
            if np.all(np.abs(p[:2] - c) <= half_in) and p[2] <= z_max:
                return j
        return None

    def fingers_touch_cube(self) -> bool:
        """Whether any finger geom is in contact with the cube."""
        n = self.data.ncon
        if n == 0 or not self._cube_free:
            return False
        g = self.data.contact.geom[:n]
        cube = self._cube_geoms[0]
        fing = np.isin(g, self._finger_geoms)
        return bool(np.any((fing[:, 0] & (g[:, 1] == cube)) | (fing[:, 1] & (g[:, 0] == cube))))

    def finger_contact_forces(self) -> np.ndarray:
        """Total normal force (N) each finger presses on the cube now, shape (2,) (finger 1, 2)."""
        out = np.zeros(2)
        cube = self._cube_geoms[0] if self._cube_free else -1
        m, f6 = self.model, np.zeros(6)
        for i in range(self.data.ncon):
            g1, g2 = self.data.contact.geom[i]
            g = g1 if g2 == cube else g2 if g1 == cube else -1
            if g in self._finger_geoms:
                mujoco.mj_contactForce(m, self.data, i, f6)
                out[int(m.geom_bodyid[g] != self._finger_body1)] += abs(f6[0])
        return out

    def goal_points(self) -> np.ndarray:
        """Reach: top-centre points of the cubes (K, 3) in world, m."""
        p = self.layout.cubes[:, :3].copy()
        p[:, 2] += self.layout.cube_size / 2
        return p

    def goal_distance(self) -> float:
        """Distance (m) from the TCP to the nearest cube top centre."""
        return float(np.min(np.linalg.norm(self.goal_points() - self.tcp_position(), axis=1)))

    def is_success(self) -> bool:
        """True once the task's success condition was met (see dp_sim.core.tasks)."""
        return self.monitor.success_time is not None

    @property
    def success_time(self) -> float | None:
        """Sim time (s) at which the episode succeeded, or None."""
        return self.monitor.success_time

    def is_timeout(self) -> bool:
        """True once the episode ran its timeout without success."""
        return self.success_time is None and self.time >= self.cfg.timeout_s - 1e-9

    def task_state(self) -> dict:
        """JSON-friendly summary of the episode."""
        s = {
            "seed": self.seed,
            "task": self.cfg.task,
            "variant": self.cfg.variant,
            "time": round(self.time, 6),
            "success": self.success_time is not None,
            "success_time": self.success_time,
            "timeout": self.is_timeout(),
            "goal_distance": self.goal_distance(),
            "cubes": self.layout.cubes.round(6).tolist(),
            "cube_size": round(self.layout.cube_size, 6),
            "tcp_position": self.tcp_position().round(5).tolist(),
        }
        if self.spec.gripper:
            s["cube_position"] = self.cube_position().round(5).tolist()
            s["trays"] = self.layout.trays.round(6).tolist()
            s["gripper_opening"] = round(self.gripper_opening, 6)
        return s
