"""ROS-free pieces of the simulator node: its config and the trajectory-following logic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dp_sim.core.robot import JOINT_NAMES

CLOUD_FRAMES = ("camera", "world")


@dataclass
class SimNodeConfig:
    """Runtime parameters of sim_node (the scene itself is SimConfig)."""

    seed: int = field(
        default=0,
        metadata={
            "help": "seed of the first episode; `sim/reset` uses it again when it was changed, "
            "else the previous seed + 1"
        },
    )
    real_time_factor: float = field(
        default=1.0,
        metadata={"help": "sim seconds per wall second; 0 = as fast as possible"},
    )
    clock_hz: float = field(
        default=50.0,
        metadata={"help": "sim-time rate of /clock and joint_states (one sim tick per message)"},
    )
    camera_hz: float = field(
        default=10.0, metadata={"help": "sim-time rate of camera/points and camera/image"}
    )
    status_hz: float = field(default=5.0, metadata={"help": "sim-time rate of sim/episode_status"})
    cloud_frame: str = field(
        default="camera",
        metadata={"help": "'camera': points in the optical frame (like a driver); 'world': pre-transformed"},
    )
    camera_frame_id: str = field(
        default="camera_optical_frame", metadata={"help": "frame_id of the camera messages"}
    )
    world_frame_id: str = field(default="world", metadata={"help": "frame_id of the world"})
    cloud_rgb: bool = field(default=True, metadata={"help": "add an rgb field to camera/points"})
    publish_image: bool = field(default=True, metadata={"help": "publish camera/image (rgb8)"})
    joint_names: list[str] = field(
        default_factory=lambda: list(JOINT_NAMES),
        metadata={"help": "joint order of forward_position_controller/commands"},
    )
    auto_reset: bool = field(
        default=False,
        metadata={"help": "start the next seed automatically after success/timeout + 1 s"},
    )

    def __post_init__(self) -> None:
        if self.real_time_factor < 0:
            raise ValueError(f"real_time_factor: expected >= 0. Got {self.real_time_factor}")
        for name in ("clock_hz", "camera_hz", "status_hz"):
            if not 0 < getattr(self, name) <= 1000:
                raise ValueError(f"{name}: expected (0, 1000] Hz. Got {getattr(self, name)}")
        if self.camera_hz > self.clock_hz or self.status_hz > self.clock_hz:
            raise ValueError(
                f"camera_hz/status_hz must be <= clock_hz={self.clock_hz}. "
                f"Got {self.camera_hz}/{self.status_hz}"
            )
        if self.cloud_frame not in CLOUD_FRAMES:
            raise ValueError(f"cloud_frame: expected one of {CLOUD_FRAMES}. Got {self.cloud_frame!r}")
        if sorted(self.joint_names) != sorted(JOINT_NAMES):
            raise ValueError(f"joint_names: expected a permutation of {JOINT_NAMES}. Got {self.joint_names}")

    @property
    def tick_s(self) -> float:
        """Sim seconds per tick."""
        return 1.0 / self.clock_hz

    def every(self, hz: float) -> int:
        """Ticks between publications at `hz` (>= 1)."""
        return max(1, int(round(self.clock_hz / hz)))


class TrajectoryFollower:
    """Samples a joint trajectory (as JointTrajectory carries it) at a given time.

    Like ros2_control's joint_trajectory_controller: the trajectory starts at `t_start`
    (header stamp, or the receive time when the stamp is zero); before the first point the
    command is interpolated from the position held when it arrived; after the last point the
    last point is held. Joints not named keep their previous command.
    """

    def __init__(self, joint_names=JOINT_NAMES) -> None:
        self.joint_names = list(joint_names)
        self._index = {n: i for i, n in enumerate(self.joint_names)}
        self.active = False
        self.t_start = 0.0
        self.times = np.zeros(0)
        self.points = np.zeros((0, len(self.joint_names)))

    def set(self, t_start: float, names, times, positions, q_now: np.ndarray) -> None:
        """Load a trajectory.

        Args:
            t_start: start time (s, sim clock).
            names: joint names of the columns of `positions`.
            times: (P,) seconds from t_start, non-decreasing.
            positions: (P, len(names)) rad.
            q_now: (7,) command held now (used before the first point and for unnamed joints).
        Raises:
            ValueError: unknown joints, shape mismatch, non-finite or decreasing times.
        """
        names = list(names)
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise ValueError(f"unknown joints {unknown}; expected some of {self.joint_names}")
        pos = np.asarray(positions, dtype=float).reshape(len(times), len(names))
        times = np.asarray(times, dtype=float)
        if len(times) == 0:
            self.active = False
            return
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(times))):
            raise ValueError("trajectory contains non-finite values")
        if np.any(np.diff(times) < 0):
            raise ValueError(f"time_from_start must be non-decreasing. Got {times.tolist()}")
        full = np.repeat(np.asarray(q_now, float)[None, :], len(times), axis=0)
        cols = [self._index[n] for n in names]
        full[:, cols] = pos
        t0 = 0.0
        if times[0] > 0:
            self.times = np.concatenate([[t0], times])
            self.points = np.concatenate([np.asarray(q_now, float)[None, :], full])
        else:
            self.times, self.points = times, full
        self.t_start = float(t_start)
        self.active = True

    def sample(self, t: float) -> np.ndarray | None:
        """Command (7,) at time t, or None without an active trajectory."""
        if not self.active:
            return None
        tau = t - self.t_start
        if tau <= self.times[0]:
            return self.points[0].copy()
        if tau >= self.times[-1]:
            return self.points[-1].copy()
        k = int(np.searchsorted(self.times, tau, side="right")) - 1
        t0, t1 = self.times[k], self.times[k + 1]
        a = 0.0 if t1 <= t0 else (tau - t0) / (t1 - t0)
        return (1 - a) * self.points[k] + a * self.points[k + 1]

    def clear(self) -> None:
        """Drop the trajectory."""
        self.active = False
