"""MuJoCo tabletop scene: Panda under joint-position control, cube(s), fixed depth/RGB camera.

ROS-free. Frames: `world` has its origin at the robot base on the table top (z up, x away from
the robot). The camera cloud is expressed in the camera's optical frame (x right, y down, z
forward, as a ROS camera driver does); `SimScene.camera_transform` is world <- optical.

The arm is simulated kinematically: each joint follows its commanded position as a first-order
lag with time constant `joint_time_constant_s`, limited to `velocity_scale` times the URDF
velocity limit and clamped to the joint limits. There is no contact dynamics (the task only
needs to touch), which makes stepping deterministic and cheap.

Reach task: touch the top centre of the (or, in the bimodal variant, either) cube with the TCP:
success when ||p_tcp - p_top|| < `success_radius_m`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np

from dp_sim.core.gl import configure_gl

configure_gl()

import mujoco  # noqa: E402

from dp_sim.core.robot import HOME_Q, JOINT_NAMES, load_panda, panda_mjcf_body  # noqa: E402

logger = logging.getLogger(__name__)

VARIANTS = ("reach", "bimodal")


def _range_ok(name: str, r: list[float]) -> None:
    if len(r) != 2 or not r[0] <= r[1]:
        raise ValueError(f"{name}: expected [min, max] with min <= max. Got {r}")


@dataclass
class SimConfig:
    """Scene, camera, controller and task parameters (validated in __post_init__)."""

    variant: str = field(
        default="reach",
        metadata={"help": "task variant: 'reach' (one cube) or 'bimodal' (two equivalent cubes)"},
    )
    camera_width: int = field(default=160, metadata={"help": "camera image width (px)"})
    camera_height: int = field(default=120, metadata={"help": "camera image height (px)"})
    camera_fovy_deg: float = field(default=45.0, metadata={"help": "camera vertical field of view (deg)"})
    camera_pos: list[float] = field(
        default_factory=lambda: [1.4, 0.0, 0.9],
        metadata={"help": "camera position in world (m)"},
    )
    camera_lookat: list[float] = field(
        default_factory=lambda: [0.4, 0.0, 0.2],
        metadata={"help": "point the camera looks at, in world (m)"},
    )
    max_depth_m: float = field(
        default=2.5, metadata={"help": "depth beyond this (m) is dropped (background)"}
    )
    depth_noise_m: float = field(
        default=0.0,
        metadata={"help": "depth noise std at 1 m (m); grows with depth^2 like a stereo camera"},
    )
    depth_dropout: float = field(
        default=0.0, metadata={"help": "fraction of valid depth pixels randomly dropped [0, 1)"}
    )
    physics_dt: float = field(default=0.005, metadata={"help": "simulation substep (s)"})
    joint_time_constant_s: float = field(
        default=0.05, metadata={"help": "first-order lag of the joint position servo (s)"}
    )
    velocity_scale: float = field(
        default=0.5, metadata={"help": "joint speed limit as a fraction of the URDF limit"}
    )
    init_q_noise_rad: float = field(
        default=0.05,
        metadata={"help": "uniform noise (+-rad) added to the home pose at reset"},
    )
    cube_size_m: float = field(default=0.05, metadata={"help": "cube edge length (m)"})
    cube_x_range: list[float] = field(
        default_factory=lambda: [0.35, 0.65], metadata={"help": "cube centre x range (m)"}
    )
    cube_y_range: list[float] = field(
        default_factory=lambda: [-0.25, 0.25],
        metadata={"help": "cube centre y range (m); bimodal: each cube gets one side"},
    )
    cube_yaw_range: list[float] = field(
        default_factory=lambda: [-0.785, 0.785], metadata={"help": "cube yaw range (rad)"}
    )
    bimodal_min_gap_m: float = field(
        default=0.2,
        metadata={"help": "bimodal: cubes lie at y >= gap/2 and y <= -gap/2 (m)"},
    )
    success_radius_m: float = field(
        default=0.03, metadata={"help": "TCP-to-cube-top distance counted as a touch (m)"}
    )
    episode_timeout_s: float = field(
        default=10.0, metadata={"help": "episode ends as a failure after this time (s)"}
    )

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}. Got {self.variant!r}")
        for name in ("camera_width", "camera_height"):
            v = getattr(self, name)
            if not 8 <= v <= 2048:
                raise ValueError(f"{name}: expected 8..2048 px. Got {v}")
        if not 5.0 <= self.camera_fovy_deg <= 150.0:
            raise ValueError(f"camera_fovy_deg: expected 5..150. Got {self.camera_fovy_deg}")
        for name in ("camera_pos", "camera_lookat"):
            v = getattr(self, name)
            if len(v) != 3:
                raise ValueError(f"{name}: expected 3 values. Got {v}")
        if np.linalg.norm(np.subtract(self.camera_lookat, self.camera_pos)) < 1e-6:
            raise ValueError("camera_lookat must differ from camera_pos")
        if self.max_depth_m <= 0:
            raise ValueError(f"max_depth_m: expected > 0. Got {self.max_depth_m}")
        if self.depth_noise_m < 0:
            raise ValueError(f"depth_noise_m: expected >= 0. Got {self.depth_noise_m}")
        if not 0.0 <= self.depth_dropout < 1.0:
            raise ValueError(f"depth_dropout: expected [0, 1). Got {self.depth_dropout}")
        if not 1e-4 <= self.physics_dt <= 0.05:
            raise ValueError(f"physics_dt: expected 1e-4..0.05 s. Got {self.physics_dt}")
        if self.joint_time_constant_s < 0:
            raise ValueError(f"joint_time_constant_s: expected >= 0. Got {self.joint_time_constant_s}")
        if not 0.0 < self.velocity_scale <= 1.0:
            raise ValueError(f"velocity_scale: expected (0, 1]. Got {self.velocity_scale}")
        if self.init_q_noise_rad < 0:
            raise ValueError(f"init_q_noise_rad: expected >= 0. Got {self.init_q_noise_rad}")
        if not 0.005 <= self.cube_size_m <= 0.3:
            raise ValueError(f"cube_size_m: expected 0.005..0.3 m. Got {self.cube_size_m}")
        for name in ("cube_x_range", "cube_y_range", "cube_yaw_range"):
            _range_ok(name, getattr(self, name))
        if self.variant == "bimodal":
            half = self.bimodal_min_gap_m / 2
            if self.cube_y_range[1] < half or self.cube_y_range[0] > -half:
                raise ValueError(
                    "bimodal: cube_y_range must extend beyond +-bimodal_min_gap_m/2 on both sides. "
                    f"Got {self.cube_y_range} with gap {self.bimodal_min_gap_m}"
                )
        if self.success_radius_m <= 0:
            raise ValueError(f"success_radius_m: expected > 0. Got {self.success_radius_m}")
        if self.episode_timeout_s <= 0:
            raise ValueError(f"episode_timeout_s: expected > 0. Got {self.episode_timeout_s}")

    @property
    def num_cubes(self) -> int:
        """Number of cubes in the scene (1 for reach, 2 for bimodal)."""
        return 2 if self.variant == "bimodal" else 1

    def to_dict(self) -> dict:
        """Plain-dict copy (for JSON / zarr attributes)."""
        return asdict(self)


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


def camera_transform_from_config(cfg: SimConfig) -> np.ndarray:
    """World <- camera optical frame (4, 4), computed from the config alone (no rendering)."""
    xy = look_at_xyaxes(np.asarray(cfg.camera_pos), np.asarray(cfg.camera_lookat))
    x, y = xy[:3], xy[3:]
    z = np.cross(x, y)
    t = np.eye(4)
    # optical axes: x_opt = x_cam, y_opt = -y_cam, z_opt = -z_cam
    t[:3, :3] = np.stack([x, -y, -z], axis=1)
    t[:3, 3] = cfg.camera_pos
    return t


def build_mjcf(cfg: SimConfig) -> str:
    """MJCF text of the scene for `cfg` (arm generated from the Panda URDF)."""
    kin = load_panda()
    assets, arm = panda_mjcf_body(kin)
    h = cfg.cube_size_m / 2
    cubes = "\n".join(
        f'<body name="cube{i}" pos="0.5 0 {h}"><freejoint name="cube{i}"/>'
        f'<geom name="cube{i}" type="box" size="{h} {h} {h}" rgba="0.85 0.12 0.1 1"/></body>'
        for i in range(cfg.num_cubes)
    )
    xyaxes = " ".join(f"{v:.9g}" for v in look_at_xyaxes(cfg.camera_pos, cfg.camera_lookat))
    cam_pos = " ".join(f"{v:.9g}" for v in cfg.camera_pos)
    w, hgt = max(cfg.camera_width, 64), max(cfg.camera_height, 64)
    return f"""<mujoco model="dp_sim_tabletop">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{cfg.physics_dt}"><flag contact="disable" gravity="disable"/></option>
  <statistic extent="1.5" center="0.4 0 0.2"/>
  <visual>
    <global offwidth="{w}" offheight="{hgt}"/>
    <quality shadowsize="0"/>
    <map znear="0.02" zfar="4"/>
  </visual>
  <default><default class="arm"><geom contype="0" conaffinity="0"/></default></default>
  <asset>
{assets}
  </asset>
  <worldbody>
    <light pos="0.4 0 2.0" dir="0 0 -1" directional="true" diffuse="0.7 0.7 0.7"/>
    <light pos="1.5 0.5 1.5" dir="-1 -0.3 -1" directional="true" diffuse="0.3 0.3 0.3"/>
    <geom name="table" type="box" pos="0.4 0 -0.02" size="0.65 0.75 0.02"
          rgba="0.55 0.42 0.3 1" contype="0" conaffinity="0"/>
{arm}
{cubes}
    <camera name="cam" pos="{cam_pos}" xyaxes="{xyaxes}" fovy="{cfg.camera_fovy_deg}"/>
  </worldbody>
</mujoco>
"""


class SimScene:
    """The simulated tabletop: reset(seed), set_command(q), step(duration), render, success.

    Typical use (dt = 0.1 s per control step)::

        scene = SimScene(SimConfig())
        scene.reset(seed=3)
        obs = scene.render()          # depth/rgb images + cloud in the optical frame
        scene.set_command(q_target)   # (7,) rad, absolute joint targets
        scene.step(0.1)
        scene.is_success()
    """

    def __init__(self, cfg: SimConfig | None = None) -> None:
        self.cfg = cfg or SimConfig()
        self.kin = load_panda()
        self.xml = build_mjcf(self.cfg)
        self.model = mujoco.MjModel.from_xml_string(self.xml)
        self.data = mujoco.MjData(self.model)
        self.joint_names = JOINT_NAMES
        self._qadr = np.array(
            [self.model.jnt_qposadr[self.model.joint(n).id] for n in JOINT_NAMES], dtype=int
        )
        self._cube_qadr = [
            int(self.model.jnt_qposadr[self.model.joint(f"cube{i}").id]) for i in range(self.cfg.num_cubes)
        ]
        self._tcp_site = self.model.site("tcp").id
        self._cam_id = self.model.camera("cam").id
        self.lower = self.kin.lower
        self.upper = self.kin.upper
        self.vmax = self.kin.velocity_limit * self.cfg.velocity_scale
        self._renderer = None
        self.seed = 0
        self.rng = np.random.default_rng(0)
        self._noise_rng = np.random.default_rng(1)
        self.q = HOME_Q.copy()
        self.qd = np.zeros(7)
        self.q_cmd = HOME_Q.copy()
        self.time = 0.0
        self.cube_poses = np.zeros((self.cfg.num_cubes, 4))  # x, y, z, yaw
        self._success_time: float | None = None
        self.reset(0)

    # ----------------------------------------------------------------------------------- state
    def reset(self, seed: int) -> None:
        """Randomize cube pose(s) and the initial arm pose from `seed`; time restarts at 0."""
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self._noise_rng = np.random.default_rng([self.seed, 1])
        c = self.cfg
        h = c.cube_size_m / 2
        poses = []
        for i in range(c.num_cubes):
            ylo, yhi = c.cube_y_range
            if c.variant == "bimodal":
                if i == 0:
                    ylo = max(ylo, c.bimodal_min_gap_m / 2)
                else:
                    yhi = min(yhi, -c.bimodal_min_gap_m / 2)
            x = self.rng.uniform(*c.cube_x_range)
            y = self.rng.uniform(ylo, yhi)
            yaw = self.rng.uniform(*c.cube_yaw_range)
            poses.append([x, y, h, yaw])
        self.cube_poses = np.asarray(poses, dtype=float)
        noise = self.rng.uniform(-c.init_q_noise_rad, c.init_q_noise_rad, size=7)
        self.q = np.clip(HOME_Q + noise, self.lower, self.upper)
        self.qd = np.zeros(7)
        self.q_cmd = self.q.copy()
        self.time = 0.0
        self._success_time = None
        self.data.qpos[:] = 0.0
        for adr, (x, y, z, yaw) in zip(self._cube_qadr, self.cube_poses, strict=True):
            self.data.qpos[adr : adr + 3] = (x, y, z)
            self.data.qpos[adr + 3 : adr + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        self._sync()

    def set_command(self, q_target) -> None:
        """Set the joint position targets (7,) rad, clamped to the joint limits.

        Raises:
            ValueError: wrong length or non-finite values.
        """
        q = np.asarray(q_target, dtype=float).reshape(-1)
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            raise ValueError(f"joint command: expected 7 finite values. Got {q_target!r}")
        self.q_cmd = np.clip(q, self.lower, self.upper)

    def step(self, duration_s: float) -> None:
        """Advance the simulation by `duration_s` (rounded to whole physics substeps, >= 1)."""
        n = max(1, int(round(duration_s / self.cfg.physics_dt)))
        h = self.cfg.physics_dt
        tau = self.cfg.joint_time_constant_s
        gain = 1.0 / h if tau <= 0 else (1.0 - np.exp(-h / tau)) / h
        for _ in range(n):
            v = np.clip((self.q_cmd - self.q) * gain, -self.vmax, self.vmax)
            q_new = np.clip(self.q + v * h, self.lower, self.upper)
            self.qd = (q_new - self.q) / h
            self.q = q_new
            self.time += h
        self._sync()
        if self._success_time is None and self.is_success():
            self._success_time = self.time

    def _sync(self) -> None:
        self.data.qpos[self._qadr] = self.q
        self.data.time = self.time
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

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

    def goal_points(self) -> np.ndarray:
        """Top-centre points of the cubes (K, 3) in world, m."""
        p = self.cube_poses[:, :3].copy()
        p[:, 2] += self.cfg.cube_size_m / 2
        return p

    def goal_distance(self) -> float:
        """Distance (m) from the TCP to the nearest cube top centre."""
        return float(np.min(np.linalg.norm(self.goal_points() - self.tcp_position(), axis=1)))

    def is_success(self) -> bool:
        """True while the TCP touches a cube top (within success_radius_m)."""
        return self.goal_distance() < self.cfg.success_radius_m

    @property
    def success_time(self) -> float | None:
        """Sim time (s) of the first touch in this episode, or None."""
        return self._success_time

    def is_timeout(self) -> bool:
        """True once the episode ran `episode_timeout_s` without success."""
        return self._success_time is None and self.time >= self.cfg.episode_timeout_s - 1e-9

    def task_state(self) -> dict:
        """JSON-friendly summary of the episode."""
        return {
            "seed": self.seed,
            "variant": self.cfg.variant,
            "time": round(self.time, 6),
            "success": self._success_time is not None,
            "success_time": self._success_time,
            "timeout": self.is_timeout(),
            "goal_distance": self.goal_distance(),
            "cubes": self.cube_poses.round(6).tolist(),
        }

    # -------------------------------------------------------------------------------- camera
    @property
    def intrinsics(self) -> np.ndarray:
        """Pinhole camera matrix K (3, 3) of the optical frame."""
        w, h = self.cfg.camera_width, self.cfg.camera_height
        f = 0.5 * h / np.tan(np.deg2rad(self.cfg.camera_fovy_deg) / 2)
        return np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])

    @property
    def camera_transform(self) -> np.ndarray:
        """World <- camera optical frame (4, 4)."""
        t = np.eye(4)
        rot = self.data.cam_xmat[self._cam_id].reshape(3, 3)
        t[:3, :3] = rot @ np.diag([1.0, -1.0, -1.0])
        t[:3, 3] = self.data.cam_xpos[self._cam_id]
        return t

    def _get_renderer(self):
        if self._renderer is None:
            self._renderer = mujoco.Renderer(
                self.model, height=self.cfg.camera_height, width=self.cfg.camera_width
            )
        return self._renderer

    def render_images(self, rgb: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Render depth (H, W) float32 m (z along the optical axis) and RGB (H, W, 3) uint8."""
        r = self._get_renderer()
        r.update_scene(self.data, camera=self._cam_id)
        r.enable_depth_rendering()
        depth = r.render().astype(np.float32, copy=True)
        r.disable_depth_rendering()
        color = r.render().copy() if rgb else None
        return depth, color

    def depth_to_cloud(
        self, depth: np.ndarray, color: np.ndarray | None = None, noise: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Back-project a depth image into the optical frame.

        Args:
            depth: (H, W) float32 m; values >= max_depth_m or <= 0 are dropped.
            color: optional (H, W, 3) uint8.
            noise: apply the configured depth noise/dropout.
        Returns:
            xyz (N, 3) float32 in the optical frame, rgb (N, 3) float32 in [0, 1] or None.
        """
        d = depth.astype(np.float32, copy=True)
        c = self.cfg
        if noise and c.depth_noise_m > 0:
            d += self._noise_rng.normal(0.0, 1.0, d.shape).astype(np.float32) * (c.depth_noise_m * d * d)
        valid = (d > 0) & (d < c.max_depth_m)
        if noise and c.depth_dropout > 0:
            valid &= self._noise_rng.random(d.shape) >= c.depth_dropout
        k = self.intrinsics
        v, u = np.nonzero(valid)
        z = d[v, u]
        xyz = np.empty((z.shape[0], 3), dtype=np.float32)
        xyz[:, 0] = (u - k[0, 2]) * z / k[0, 0]
        xyz[:, 1] = (v - k[1, 2]) * z / k[1, 1]
        xyz[:, 2] = z
        rgb = None if color is None else color[v, u].astype(np.float32) / 255.0
        return xyz, rgb

    def render(self, rgb: bool = True, noise: bool = True) -> dict:
        """Render the camera: dict with depth, rgb_image, xyz, rgb (see depth_to_cloud), transform."""
        depth, color = self.render_images(rgb=rgb)
        xyz, col = self.depth_to_cloud(depth, color, noise=noise)
        return {
            "depth": depth,
            "rgb_image": color,
            "xyz": xyz,
            "rgb": col,
            "transform": self.camera_transform,
            "time": self.time,
        }

    def close(self) -> None:
        """Free the GL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def transform_points(t: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) transform to (N, 3) points; returns float32."""
    return (xyz @ t[:3, :3].T.astype(np.float32) + t[:3, 3].astype(np.float32)).astype(np.float32)
