"""ControlConfig: the one validated configuration of dp_control (node, tests, bench)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .interpolator import INTERPOLATION_MODES

BACKENDS = ("trajectory", "position", "moveit")
HANDOVERS = ("replace", "blend", "ensemble")
PANDA_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]


def _help(text: str, **kw):
    return field(metadata={"help": text}, **kw)


@dataclass
class ControlConfig:
    """Parameters of the control core and node (defaults mirrored in config/control.yaml)."""

    joint_names: list[str] = _help(
        "Controlled arm joints, in command order (Float64MultiArray column order).",
        default_factory=lambda: list(PANDA_JOINTS),
    )
    gripper_joint: str = _help(
        "Name of the chunk column sent as a step to gripper_controller/commands ('' = none).",
        default="panda_finger_joint1",
    )
    rate_hz: float = _help("Control loop rate [Hz].", default=50.0)
    backend: str = _help(
        f"Command backend: one of {BACKENDS} (trajectory = joint_trajectory_controller topic).",
        default="trajectory",
    )
    autostart: bool = _help("Arm at start-up; otherwise wait for ~/enable (SetBool).", default=False)
    interpolation: str = _help(
        f"Interpolation between chunk rows: one of {INTERPOLATION_MODES}.", default="cubic"
    )
    handover: str = _help(
        f"Hand-over to a new chunk: one of {HANDOVERS} (replace = Diffusion Policy, blend = "
        "weighted average over blend_window_s, ensemble = ACT temporal ensembling).",
        default="replace",
    )
    handover_s: float = _help(
        "Crossfade from the old to the new reference at every hand-over [s] (0 = switch; the "
        "limiter then smooths the step).",
        default=0.1,
    )
    blend_window_s: float = _help(
        "blend: the new chunk's weight ramps 0 -> 1 over this window after arrival [s].",
        default=0.3,
    )
    ensemble_decay: float = _help(
        "ensemble: weight exp(-ensemble_decay * i) of the i-th oldest chunk covering a time (ACT's m;"
        " > 0 favours older chunks, < 0 newer ones).",
        default=0.1,
    )
    ensemble_max_chunks: int = _help("ensemble: at most this many chunks are averaged.", default=8)
    max_future_s: float = _help(
        "Reject chunks stamped more than this in the future (clock offset) [s].", default=0.05
    )
    max_age_s: float = _help("Reject chunks older than this on arrival [s].", default=0.5)
    chunk_timeout: float = _help(
        "Watchdog: no valid chunk for this long -> brake to rest and hold [s].", default=0.5
    )
    state_timeout: float = _help("joint_states silent for this long -> hold [s].", default=0.2)
    max_tracking_error: float = _help(
        "|commanded - measured| above this on any joint -> fault (latched hold until re-enable) [rad].",
        default=0.25,
    )
    max_start_distance: float = _help(
        "First chunk after (re)activation is followed only if its first future row is within this"
        " of the commanded state on every joint [rad].",
        default=0.15,
    )
    ramp_in_s: float = _help(
        "Crossfade from the held state into the first chunk after (re)activation [s].", default=0.5
    )
    preview_s: float = _help(
        "Length of the limited preview trajectory sent to the trajectory backend [s].", default=0.3
    )
    position_margin: float = _help(
        "Soft margin inside the position limits; the command brakes to stay inside [rad].",
        default=0.05,
    )
    velocity_scale: float = _help(
        "Scale on the velocity limits (joint-limits YAML / URDF), in (0, 1].", default=0.5
    )
    acceleration_scale: float = _help(
        "Scale on the acceleration limits (joint-limits YAML), in (0, 1].", default=0.5
    )
    joint_limits_file: str = _help(
        "ros2_control-style joint-limits YAML ('' = dp_control's config/joint_limits.yaml).",
        default="",
    )
    use_urdf_limits: bool = _help(
        "Take position limits (and velocity caps) from robot_description when it is published.",
        default=True,
    )
    position_lower: list[float] = _help(
        "Override lower position limits, one per joint ([] = YAML/URDF) [rad].",
        default_factory=list,
    )
    position_upper: list[float] = _help(
        "Override upper position limits, one per joint ([] = YAML/URDF) [rad].",
        default_factory=list,
    )
    max_velocity: list[float] = _help(
        "Override velocity limits, one per joint ([] = YAML) [rad/s], before velocity_scale.",
        default_factory=list,
    )
    max_acceleration: list[float] = _help(
        "Override acceleration limits, one per joint ([] = YAML) [rad/s^2], before acceleration_scale.",
        default_factory=list,
    )
    controller_name: str = _help(
        "position backend: controller whose 'joints' parameter must equal joint_names.",
        default="forward_position_controller",
    )
    controller_check_timeout_s: float = _help(
        "position backend: how long to wait for the controller's parameter service [s].",
        default=1.0,
    )
    moveit_group: str = _help("moveit backend: planning group checked for validity.", default="panda_arm")
    executor_threads: int = _help(
        "1 = SingleThreadedExecutor; > 1 = MultiThreadedExecutor with this many threads (the timer keeps"
        " its own mutually exclusive group). 1 is the default: with SCHED_FIFO, Python threads of equal"
        " real-time priority convoy on the GIL (bench: 29 Hz, p99 170 ms multi- vs p99 0.3 ms single-"
        "threaded).",
        default=1,
    )
    loop_thread: bool = _help(
        "With use_sim_time false: drive the loop from a dedicated thread on absolute CLOCK_MONOTONIC"
        " deadlines (SCHED_FIFO at realtime_priority when permitted) instead of an rclpy timer;"
        " subscriptions and services stay in the executor. With use_sim_time true the loop is"
        " always an rclpy timer on the node clock. Chosen at start-up.",
        default=True,
    )
    realtime_priority: int = _help(
        "SCHED_FIFO priority tried for the loop thread (control_node's executor thread gets"
        " max(1, priority - 10)); with loop_thread false or sim time, for the whole process"
        " (0 = don't try).",
        default=50,
    )
    gil_switch_interval_s: float = _help(
        "Loop thread: lower the interpreter's GIL switch interval to this, so the executor thread"
        " hands the GIL to the woken loop thread within it (Python's default is 5 ms) [s]; 0 = leave"
        " it.",
        default=0.0005,
    )

    def __post_init__(self) -> None:
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names must be non-empty and unique. Got {self.joint_names}")
        if self.gripper_joint in self.joint_names:
            raise ValueError(
                f"gripper_joint {self.gripper_joint!r} must not be one of joint_names (it is not splined)"
            )
        for name, allowed in (
            ("backend", BACKENDS),
            ("interpolation", INTERPOLATION_MODES),
            ("handover", HANDOVERS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}. Got {getattr(self, name)!r}")
        positive = (
            "rate_hz",
            "max_age_s",
            "chunk_timeout",
            "state_timeout",
            "max_tracking_error",
            "max_start_distance",
            "preview_s",
            "controller_check_timeout_s",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0. Got {getattr(self, name)}")
        non_negative = ("handover_s", "blend_window_s", "max_future_s", "ramp_in_s", "position_margin")
        for name in non_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0. Got {getattr(self, name)}")
        for name in ("velocity_scale", "acceleration_scale"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1]. Got {getattr(self, name)}")
        if self.ensemble_max_chunks < 1:
            raise ValueError(f"ensemble_max_chunks must be >= 1. Got {self.ensemble_max_chunks}")
        n = len(self.joint_names)
        for name in ("position_lower", "position_upper", "max_velocity", "max_acceleration"):
            values = getattr(self, name)
            if values and len(values) != n:
                raise ValueError(f"{name} must be empty or have one value per joint ({n}). Got {values}")
        if bool(self.position_lower) != bool(self.position_upper):
            raise ValueError("position_lower and position_upper must be given together")
        if self.executor_threads < 1:
            raise ValueError(f"executor_threads must be >= 1. Got {self.executor_threads}")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError(f"realtime_priority must be in [0, 99]. Got {self.realtime_priority}")
        if not 0 <= self.gil_switch_interval_s <= 0.1:
            raise ValueError(f"gil_switch_interval_s must be in [0, 0.1]. Got {self.gil_switch_interval_s}")

    @property
    def period_s(self) -> float:
        """Nominal control period [s]."""
        return 1.0 / self.rate_hz
