"""Typed, validated configuration of replay evaluation (shared by the CLI, the player and tests)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

MODES = ("stepped", "realtime")
STORAGES = ("mcap", "sqlite3")


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class EvalConfig:
    """What to read from the bag, how to run the policy on it and what to report.

    Times in seconds of sensor (bag) time.
    """

    cloud_topic: str = field(default="camera/points", metadata=_help("Raw camera cloud topic."))
    image_topic: str = field(
        default="camera/image",
        metadata=_help("sensor_msgs/Image topic replayed for image Diffusion Policy checkpoints."),
    )
    joint_topic: str = field(default="joint_states", metadata=_help("sensor_msgs/JointState topic."))
    action_topic: str = field(
        default="expert/joint_command",
        metadata=_help(
            "Recorded actions (expert targets): JointState, JointTrajectory or Float64MultiArray."
        ),
    )
    action_joint_names: list[str] = field(
        default_factory=list,
        metadata=_help("Column names of a Float64MultiArray action topic (else unused)."),
    )
    episode_topic: str = field(
        default="sim/episode_status",
        metadata=_help("std_msgs/String JSON topic; a change of episode_key starts an episode."),
    )
    episode_key: str = field(default="seed", metadata=_help("JSON key of the episode topic."))
    episode_gap_s: float = field(
        default=1.0, metadata=_help("A pause between clouds longer than this starts an episode, s.")
    )
    camera_frame: str = field(
        default="camera_optical_frame",
        metadata=_help("Frame that camera_to_target maps from (when the bag has no /tf_static)."),
    )
    camera_to_target: list[float] = field(
        default_factory=list,
        metadata=_help(
            "Static pose of camera_frame in the checkpoint's target_frame [x, y, z, qx, qy, qz, qw]; "
            "empty = take it from the bag's /tf_static, or none when clouds are in target_frame."
        ),
    )
    perception_seed: int = field(
        default=0, metadata=_help("FPS seed of the preprocessing (perception_node's `seed`).")
    )
    policy_rate_hz: float = field(
        default=0.0, metadata=_help("Chunks per second of sensor time; 0 = one per policy dt.")
    )
    sync_wait_s: float = field(
        default=0.0,
        metadata=_help(
            "policy_node's camera sync (config/policy.yaml ships 0.05): a tick expecting the next frame "
            "within this runs on its arrival; 0 = every chunk at a timer tick, s."
        ),
    )
    inpaint_rows: int = field(
        default=0, metadata=_help("policy_node's inpaint_rows (rows continuing the previous chunk); 0 = off.")
    )
    step_tolerance_s: float = field(
        default=0.04, metadata=_help("Older observation steps must be within this of newest - k*dt, s.")
    )
    joint_tolerance_s: float = field(
        default=0.05, metadata=_help("A cloud may be this far after the newest joint state, s.")
    )
    horizon_steps: list[str] = field(
        default_factory=lambda: ["1", "4", "8", "end"],
        metadata=_help("Chunk rows (steps ahead of 'now') whose error is reported; 'end' = last."),
    )
    device: str = field(default="cpu", metadata=_help("torch device of the policy."))
    output_storage: str = field(default="mcap", metadata=_help("Output bag storage: mcap | sqlite3."))
    plot_chunks: int = field(
        default=12, metadata=_help("Predicted chunks drawn per episode plot (evenly spaced).")
    )

    def __post_init__(self) -> None:
        for name in ("cloud_topic", "joint_topic", "action_topic"):
            if not getattr(self, name):
                raise ValueError(f"{name} must be a topic name. Got ''")
        self.action_joint_names = [str(n) for n in self.action_joint_names]
        self.camera_to_target = [float(v) for v in self.camera_to_target]
        if self.camera_to_target and (
            len(self.camera_to_target) != 7 or not all(math.isfinite(v) for v in self.camera_to_target)
        ):
            raise ValueError(
                "camera_to_target must be empty or 7 finite numbers [x, y, z, qx, qy, qz, qw]. "
                f"Got {self.camera_to_target}"
            )
        if not self.episode_gap_s > 0:
            raise ValueError(f"episode_gap_s must be > 0 s. Got {self.episode_gap_s}")
        if not (math.isfinite(self.policy_rate_hz) and self.policy_rate_hz >= 0):
            raise ValueError(f"policy_rate_hz must be >= 0 (0 = 1/dt). Got {self.policy_rate_hz}")
        for name in ("step_tolerance_s", "joint_tolerance_s", "sync_wait_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 s. Got {getattr(self, name)}")
        if self.inpaint_rows < 0:
            raise ValueError(f"inpaint_rows must be >= 0. Got {self.inpaint_rows}")
        self.horizon_steps = [str(s) for s in self.horizon_steps]
        for s in self.horizon_steps:
            if s != "end" and not (s.isdigit()):
                raise ValueError(f"horizon_steps entries must be integers >= 0 or 'end'. Got {s!r}")
        if self.output_storage not in STORAGES:
            raise ValueError(f"output_storage must be one of {STORAGES}. Got {self.output_storage!r}")
        if self.plot_chunks < 0:
            raise ValueError(f"plot_chunks must be >= 0. Got {self.plot_chunks}")

    def to_dict(self) -> dict:
        """Plain dict of all fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EvalConfig:
        """Builds a config, rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown EvalConfig keys {sorted(unknown)}; expected {sorted(known)}")
        return cls(**d)

    @property
    def steps(self) -> list:
        """horizon_steps as ints / 'end'."""
        return [s if s == "end" else int(s) for s in self.horizon_steps]
