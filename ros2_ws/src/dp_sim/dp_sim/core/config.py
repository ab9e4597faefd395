"""SimConfig: scene, physics, task and sensor parameters of the simulator (ROS-free, validated)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from dp_sim.core.tasks import TASKS, get_task

VARIANTS = ("reach", "bimodal")
REALISM = ("auto", "on", "off")


def _range_ok(name: str, r: list[float]) -> None:
    if len(r) != 2 or not r[0] <= r[1]:
        raise ValueError(f"{name}: expected [min, max] with min <= max. Got {r}")


@dataclass
class SimConfig:
    """Scene, camera, physics, task and sensor parameters (validated in __post_init__)."""

    task: str = field(
        default="reach",
        metadata={"help": f"task: one of {tuple(TASKS)} (see dp_sim.core.tasks)"},
    )
    variant: str = field(
        default="reach",
        metadata={"help": "legacy alias: 'bimodal' with task=reach selects task reach_bimodal"},
    )
    camera_width: int = field(
        default=0, metadata={"help": "camera image width (px); 0 = the task's (reach 160, manipulation 320)"}
    )
    camera_height: int = field(
        default=0, metadata={"help": "camera image height (px); 0 = the task's (reach 120, manipulation 240)"}
    )
    camera_fovy_deg: float = field(default=45.0, metadata={"help": "camera vertical field of view (deg)"})
    camera_pos: list[float] = field(
        default_factory=lambda: [1.4, 0.0, 0.9],
        metadata={"help": "nominal camera position in world (m)"},
    )
    camera_lookat: list[float] = field(
        default_factory=lambda: [0.4, 0.0, 0.2],
        metadata={"help": "point the nominal camera looks at, in world (m)"},
    )
    max_depth_m: float = field(
        default=2.5, metadata={"help": "depth beyond this (m) is dropped (background)"}
    )
    sensor_realism: str = field(
        default="auto",
        metadata={
            "help": "'auto' (on for manipulation tasks, off for reach), 'on' or 'off': depth noise, "
            "edge dropout, camera extrinsic jitter and a distractor object"
        },
    )
    depth_noise_m: float = field(
        default=0.001,
        metadata={"help": "realism: depth noise std at 1 m (m); grows with depth^2 (structured light)"},
    )
    depth_dropout: float = field(
        default=0.0, metadata={"help": "realism: fraction of valid depth pixels randomly dropped [0, 1)"}
    )
    edge_dropout: float = field(
        default=0.5,
        metadata={"help": "realism: probability that a pixel at a depth discontinuity is a hole [0, 1]"},
    )
    edge_threshold_m: float = field(
        default=0.02, metadata={"help": "realism: neighbour depth step (m) counted as a discontinuity"}
    )
    camera_jitter_m: float = field(
        default=0.003, metadata={"help": "realism: per-episode camera offset, uniform +- per axis (m)"}
    )
    camera_jitter_deg: float = field(
        default=0.5,
        metadata={"help": "realism: per-episode camera rotation: at most this angle (deg), random axis"},
    )
    distractor: bool = field(default=True, metadata={"help": "realism: one distractor object on the table"})
    physics_dt: float = field(default=0.002, metadata={"help": "physics time step (s)"})
    arm_kp: list[float] = field(
        default_factory=lambda: [4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 1000.0],
        metadata={"help": "joint position servo stiffness (Nm/rad), per arm joint"},
    )
    arm_kd: list[float] = field(
        default_factory=lambda: [225.0, 225.0, 175.0, 175.0, 100.0, 100.0, 50.0],
        metadata={"help": "joint position servo damping (Nm s/rad), per arm joint"},
    )
    arm_armature: float = field(
        default=0.1, metadata={"help": "reflected rotor inertia of every arm joint (kg m^2)"}
    )
    gripper_speed_mps: float = field(
        default=0.1, metadata={"help": "gripper width speed (m/s; each finger moves at half of it)"}
    )
    gripper_force_n: float = field(
        default=70.0, metadata={"help": "grasp force limit: squeeze force on the object (N)"}
    )
    init_q_noise_rad: float = field(
        default=0.05,
        metadata={"help": "uniform noise (+-rad) added to the home pose at reset"},
    )
    cube_size_m: float = field(
        default=0.0,
        metadata={"help": "nominal cube edge length (m); 0 = the task's (TaskSpec.cube_size)"},
    )
    cube_size_jitter: float = field(
        default=0.2, metadata={"help": "manipulation tasks: cube edge scaled by 1 +- this (uniform)"}
    )
    cube_mass_kg: float = field(default=0.1, metadata={"help": "cube mass (kg)"})
    friction: float = field(default=1.0, metadata={"help": "sliding friction of cube, pads and table"})
    cube_x_range: list[float] = field(
        default_factory=lambda: [0.0, 0.0],
        metadata={"help": "cube centre x range (m); [0, 0] = the task's (TaskSpec.cube_range)"},
    )
    cube_y_range: list[float] = field(
        default_factory=lambda: [0.0, 0.0],
        metadata={"help": "cube centre y range (m); [0, 0] = the task's; place tasks use their own layouts"},
    )
    cube_yaw_range: list[float] = field(
        default_factory=lambda: [-0.785, 0.785], metadata={"help": "cube yaw range (rad)"}
    )
    tray_x_range: list[float] = field(
        default_factory=lambda: [0.4, 0.6], metadata={"help": "place tasks: tray centre x range (m)"}
    )
    tray_inner_m: float = field(default=0.14, metadata={"help": "tray inner side length (m)"})
    bimodal_min_gap_m: float = field(
        default=0.2,
        metadata={"help": "bimodal tasks: the two targets lie at y >= gap/2 and y <= -gap/2 (m)"},
    )
    success_radius_m: float = field(
        default=0.03, metadata={"help": "reach: TCP-to-cube-top distance counted as a touch (m)"}
    )
    lift_height_m: float = field(
        default=0.10, metadata={"help": "lift: height gain of the cube counted as lifted (m)"}
    )
    hold_s: float = field(default=1.0, metadata={"help": "lift: how long the cube must stay lifted (s)"})
    episode_timeout_s: float = field(
        default=0.0,
        metadata={"help": "episode ends as a failure after this time (s); 0 = the task's default"},
    )

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}. Got {self.variant!r}")
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {tuple(TASKS)}. Got {self.task!r}")
        if self.variant == "bimodal":
            if self.task not in ("reach", "reach_bimodal"):
                raise ValueError(f"variant=bimodal applies to task reach only. Got task {self.task!r}")
            self.task = "reach_bimodal"
        elif self.task == "reach_bimodal":
            self.variant = "bimodal"
        if self.sensor_realism not in REALISM:
            raise ValueError(f"sensor_realism: expected one of {REALISM}. Got {self.sensor_realism!r}")
        task_size = get_task(self.task).camera_size
        for name, default in zip(("camera_width", "camera_height"), task_size, strict=True):
            v = getattr(self, name) or default
            setattr(self, name, v)
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
        for name in ("max_depth_m", "edge_threshold_m", "gripper_speed_mps", "gripper_force_n"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected > 0. Got {getattr(self, name)}")
        for name in ("depth_noise_m", "camera_jitter_m", "camera_jitter_deg", "arm_armature"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0. Got {getattr(self, name)}")
        if not 0.0 <= self.depth_dropout < 1.0:
            raise ValueError(f"depth_dropout: expected [0, 1). Got {self.depth_dropout}")
        if not 0.0 <= self.edge_dropout <= 1.0:
            raise ValueError(f"edge_dropout: expected [0, 1]. Got {self.edge_dropout}")
        if not 1e-4 <= self.physics_dt <= 0.01:
            raise ValueError(f"physics_dt: expected 1e-4..0.01 s. Got {self.physics_dt}")
        for name in ("arm_kp", "arm_kd"):
            v = getattr(self, name)
            if len(v) != 7 or min(v) <= 0:
                raise ValueError(f"{name}: expected 7 values > 0. Got {v}")
        if self.init_q_noise_rad < 0:
            raise ValueError(f"init_q_noise_rad: expected >= 0. Got {self.init_q_noise_rad}")
        self.cube_size_m = self.cube_size_m or get_task(self.task).cube_size
        if not 0.005 <= self.cube_size_m <= 0.3:
            raise ValueError(f"cube_size_m: expected 0.005..0.3 m. Got {self.cube_size_m}")
        if not 0.0 <= self.cube_size_jitter < 0.5:
            raise ValueError(f"cube_size_jitter: expected [0, 0.5). Got {self.cube_size_jitter}")
        if self.cube_size_m * (1 + self.cube_size_jitter) > 0.075 and get_task(self.task).gripper:
            raise ValueError(
                "cube_size_m * (1 + cube_size_jitter) must fit the Panda hand (<= 0.075 m). "
                f"Got {self.cube_size_m} * (1 + {self.cube_size_jitter})"
            )
        if self.cube_mass_kg <= 0 or self.friction <= 0:
            raise ValueError(
                f"cube_mass_kg, friction: expected > 0. Got {self.cube_mass_kg}, {self.friction}"
            )
        task_range = get_task(self.task).cube_range
        for name, default in zip(("cube_x_range", "cube_y_range"), task_range, strict=True):
            if list(getattr(self, name)) == [0.0, 0.0]:
                setattr(self, name, list(default))
        for name in ("cube_x_range", "cube_y_range", "cube_yaw_range", "tray_x_range"):
            _range_ok(name, getattr(self, name))
        if not self.cube_size_m * 1.5 < self.tray_inner_m <= 0.3:
            raise ValueError(f"tray_inner_m: expected 1.5 cube sizes .. 0.3 m. Got {self.tray_inner_m}")
        if self.task == "reach_bimodal":
            half = self.bimodal_min_gap_m / 2
            if self.cube_y_range[1] < half or self.cube_y_range[0] > -half:
                raise ValueError(
                    "bimodal: cube_y_range must extend beyond +-bimodal_min_gap_m/2 on both sides. "
                    f"Got {self.cube_y_range} with gap {self.bimodal_min_gap_m}"
                )
        for name in ("success_radius_m", "lift_height_m", "hold_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected > 0. Got {getattr(self, name)}")
        if self.episode_timeout_s < 0:
            raise ValueError(
                f"episode_timeout_s: expected >= 0 (0 = task default). Got {self.episode_timeout_s}"
            )

    @property
    def spec(self):
        """The TaskSpec of `task`."""
        return get_task(self.task)

    @property
    def num_cubes(self) -> int:
        """Number of cubes in the scene (2 for reach_bimodal, else 1)."""
        return self.spec.num_cubes

    @property
    def realism(self) -> bool:
        """Whether sensor realism (noise, holes, jitter, distractor) is in effect."""
        if self.sensor_realism == "auto":
            return self.spec.realism
        return self.sensor_realism == "on"

    @property
    def timeout_s(self) -> float:
        """Effective episode timeout (s)."""
        return self.episode_timeout_s or self.spec.timeout_s

    def to_dict(self) -> dict:
        """Plain-dict copy (for JSON / zarr attributes)."""
        return asdict(self)
