"""Typed, validated configuration of replay evaluation (shared by the CLI, the player and tests)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from dp_common.core.validation import at_least, finite_floats, non_negative, one_of, param, positive

MODES = ("stepped", "realtime")
STORAGES = ("mcap", "sqlite3")


@dataclass
class EvalConfig:
    """What to read from the bag, how to run the policy on it and what to report.

    Times in seconds of sensor (bag) time.
    """

    cloud_topic: str = param("Raw camera cloud topic.", default="camera/points")
    image_topic: str = param(
        "sensor_msgs/Image topic replayed for image Diffusion Policy checkpoints.", default="camera/image"
    )
    joint_topic: str = param("sensor_msgs/JointState topic.", default="joint_states")
    action_topic: str = param(
        "Recorded actions (expert targets): JointState, JointTrajectory or Float64MultiArray.",
        default="expert/joint_command",
    )
    action_joint_names: list[str] = param(
        "Column names of a Float64MultiArray action topic (else unused).", default_factory=list
    )
    episode_topic: str = param(
        "std_msgs/String JSON topic; a change of episode_key starts an episode.", default="sim/episode_status"
    )
    episode_key: str = param("JSON key of the episode topic.", default="seed")
    episode_gap_s: float = param("A pause between clouds longer than this starts an episode, s.", default=1.0)
    camera_frame: str = param(
        "Frame that camera_to_target maps from (when the bag has no /tf_static).",
        default="camera_optical_frame",
    )
    camera_to_target: list[float] = param(
        "Static pose of camera_frame in the checkpoint's target_frame [x, y, z, qx, qy, qz, qw]; "
        "empty = take it from the bag's /tf_static, or none when clouds are in target_frame.",
        default_factory=list,
    )
    perception_seed: int = param("FPS seed of the preprocessing (perception_node's `seed`).", default=0)
    policy_rate_hz: float = param("Chunks per second of sensor time; 0 = one per policy dt.", default=0.0)
    step_tolerance_s: float = param(
        "Older observation steps must be within this of newest - k*dt, s.", default=0.04
    )
    sync_wait_s: float = param(
        "policy_node's camera sync (config/policy.yaml ships 0.05): a tick expecting the next frame "
        "within this runs on its arrival; 0 = every chunk at a timer tick, s.",
        default=0.0,
    )
    inpaint_rows: int = param(
        "policy_node's inpaint_rows (rows continuing the previous chunk); 0 = off.", default=0
    )
    joint_tolerance_s: float = param("A cloud may be this far after the newest joint state, s.", default=0.05)
    horizon_steps: list[str] = param(
        "Chunk rows (steps ahead of 'now') whose error is reported; 'end' = last.",
        default_factory=lambda: ["1", "4", "8", "end"],
    )
    device: str = param("torch device of the policy.", default="cpu")
    output_storage: str = param("Output bag storage: mcap | sqlite3.", default="mcap")
    plot_chunks: int = param("Predicted chunks drawn per episode plot (evenly spaced).", default=12)

    def __post_init__(self) -> None:
        for name in ("cloud_topic", "joint_topic", "action_topic"):
            if not getattr(self, name):
                raise ValueError(f"{name} must be a topic name. Got ''")
        self.action_joint_names = [str(n) for n in self.action_joint_names]
        finite_floats(self, "camera_to_target", 7, "[x, y, z, qx, qy, qz, qw]", allow_empty=True)
        positive(self, "episode_gap_s", unit=" s")
        non_negative(self, "policy_rate_hz", unit=" (0 = 1/dt)", finite=True)
        non_negative(self, "step_tolerance_s", "joint_tolerance_s", "sync_wait_s", unit=" s")
        at_least(self, "inpaint_rows", 0)
        self.horizon_steps = [str(s) for s in self.horizon_steps]
        for s in self.horizon_steps:
            if s != "end" and not (s.isdigit()):
                raise ValueError(f"horizon_steps entries must be integers >= 0 or 'end'. Got {s!r}")
        one_of(self, "output_storage", STORAGES)
        at_least(self, "plot_chunks", 0)

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
