"""ControlConfig: the one validated configuration of dp_control (node, tests, bench)."""

from __future__ import annotations

from dataclasses import dataclass

from dp_common.core.validation import at_least, in_range, non_negative, one_of, param, positive

from .interpolator import INTERPOLATION_MODES
from .presets import CONTROLLER_PRESETS, GRIPPER_BACKENDS, check_preset

BACKENDS = ("trajectory", "position", "moveit", "servo")
SERVO_INTERFACES = ("jazzy", "humble")
HANDOVERS = ("replace", "blend", "ensemble")
PANDA_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]


@dataclass
class ControlConfig:
    """Parameters of the control core and node (defaults mirrored in config/control.yaml)."""

    joint_names: list[str] = param(
        "Controlled arm joints, in command order (Float64MultiArray column order).",
        default_factory=lambda: list(PANDA_JOINTS),
    )
    gripper_joint: str = param(
        "Name of the chunk column sent as a step to the gripper (gripper_backend; '' = none).",
        default="panda_finger_joint1",
    )
    rate_hz: float = param("Control loop rate [Hz].", default=50.0)
    backend: str = param(
        f"Command backend: one of {BACKENDS} (trajectory = joint_trajectory_controller topic).",
        default="trajectory",
    )
    autostart: bool = param("Arm at start-up; otherwise wait for ~/enable (SetBool).", default=False)
    interpolation: str = param(
        f"Interpolation between chunk rows: one of {INTERPOLATION_MODES}.", default="cubic"
    )
    handover: str = param(
        f"Hand-over to a new chunk: one of {HANDOVERS} (replace = Diffusion Policy, blend = "
        "weighted average over blend_window_s, ensemble = ACT temporal ensembling).",
        default="replace",
    )
    handover_s: float = param(
        "Crossfade from the old to the new reference at every hand-over [s] (0 = switch; the "
        "limiter then smooths the step).",
        default=0.1,
    )
    blend_window_s: float = param(
        "blend: the new chunk's weight ramps 0 -> 1 over this window after arrival [s].",
        default=0.3,
    )
    ensemble_decay: float = param(
        "ensemble: weight exp(-ensemble_decay * i) of the i-th oldest chunk covering a time (ACT's m;"
        " > 0 favours older chunks, < 0 newer ones).",
        default=0.1,
    )
    ensemble_max_chunks: int = param("ensemble: at most this many chunks are averaged.", default=8)
    max_future_s: float = param(
        "Reject chunks stamped more than this in the future (clock offset) [s].", default=0.05
    )
    max_age_s: float = param("Reject chunks older than this on arrival [s].", default=0.5)
    chunk_timeout: float = param(
        "Watchdog: no valid chunk for this long -> brake to rest and hold [s].", default=0.5
    )
    state_timeout: float = param("joint_states silent for this long -> hold [s].", default=0.2)
    max_tracking_error: float = param(
        "|commanded - measured| above this on any joint -> fault (latched hold until re-enable) [rad].",
        default=0.25,
    )
    max_start_distance: float = param(
        "First chunk after (re)activation is followed only if its first future row is within this"
        " of the commanded state on every joint [rad].",
        default=0.15,
    )
    ramp_in_s: float = param(
        "Crossfade from the held state into the first chunk after (re)activation [s].", default=0.5
    )
    preview_s: float = param(
        "Length of the limited preview trajectory sent to the trajectory backend [s].", default=0.3
    )
    position_margin: float = param(
        "Soft margin inside the position limits; the command brakes to stay inside [rad].",
        default=0.05,
    )
    velocity_scale: float = param(
        "Scale on the velocity limits (joint-limits YAML / URDF), in (0, 1].", default=0.5
    )
    acceleration_scale: float = param(
        "Scale on the acceleration limits (joint-limits YAML), in (0, 1].", default=0.5
    )
    joint_limits_file: str = param(
        "ros2_control-style joint-limits YAML ('' = dp_control's config/joint_limits.yaml).",
        default="",
    )
    use_urdf_limits: bool = param(
        "Take position limits (and velocity caps) from robot_description when it is published.",
        default=True,
    )
    position_lower: list[float] = param(
        "Override lower position limits, one per joint ([] = YAML/URDF) [rad].",
        default_factory=list,
    )
    position_upper: list[float] = param(
        "Override upper position limits, one per joint ([] = YAML/URDF) [rad].",
        default_factory=list,
    )
    max_velocity: list[float] = param(
        "Override velocity limits, one per joint ([] = YAML) [rad/s], before velocity_scale.",
        default_factory=list,
    )
    max_acceleration: list[float] = param(
        "Override acceleration limits, one per joint ([] = YAML) [rad/s^2], before acceleration_scale.",
        default_factory=list,
    )
    max_jerk: list[float] = param(
        "Override jerk limits, one per joint ([] = YAML; a joint without one there is not jerk-limited)"
        " [rad/s^3], before jerk_scale.",
        default_factory=list,
    )
    jerk_scale: float = param(
        "Scale on the jerk limits (joint-limits YAML max_jerk), in (0, 1]. At 50 Hz the jerk limit binds"
        " only below 2 * max_acceleration * rate_hz (Franka's 7500 rad/s^3 never does).",
        default=0.5,
    )
    controller_name: str = param(
        "position backend: controller whose 'joints' parameter must equal joint_names.",
        default="forward_position_controller",
    )
    controller_check_timeout_s: float = param(
        "position backend: how long to wait for the controller's parameter service [s].",
        default=1.0,
    )
    moveit_group: str = param("moveit backend: planning group checked for validity.", default="panda_arm")
    start_pose: list[float] = param(
        "~/go_to_start: start pose, one position per joint in joint_names order ([] = start_state_name)"
        " [rad]; a pose recorded with ~/record_start takes precedence until restart.",
        default_factory=list,
    )
    start_state_name: str = param(
        "~/go_to_start: SRDF group_state of moveit_group used when start_pose is empty (e.g. 'ready').",
        default="ready",
    )
    start_srdf_file: str = param(
        "~/go_to_start: SRDF holding start_state_name ('' = dp_control's config/moveit/*.srdf).", default=""
    )
    servo_node: str = param(
        "servo backend: MoveIt Servo's node (its topics and services are <servo_node>/...).",
        default="servo_node",
    )
    servo_interface: str = param(
        f"servo backend: Servo's ROS interface, one of {SERVO_INTERFACES} (jazzy = Jazzy, Kilted, "
        "Rolling: ~/switch_command_type (moveit_msgs/ServoCommandType) + ~/pause_servo (std_srvs/SetBool), "
        "status moveit_msgs/ServoStatus; humble = ~/start_servo / ~/stop_servo (std_srvs/Trigger), status "
        "std_msgs/Int8).",
        default="jazzy",
    )
    servo_command_topic: str = param(
        "servo backend: control_msgs/JointJog topic ('' = <servo_node>/delta_joint_cmds, Servo's "
        "joint_command_in_topic default).",
        default="",
    )
    servo_status_topic: str = param(
        "servo backend: Servo's status topic ('' = <servo_node>/status, Servo's status_topic default).",
        default="",
    )
    servo_position_gain: float = param(
        "servo backend: JointJog velocity = finite difference of the interpolated commands + this gain x "
        "(commanded - measured) [1/s]; 0 = none (the default). The measured state is as old as "
        "joint_states' latency, so a gain leaves a lead of about velocity x latency: only with "
        "low-latency joint_states.",
        default=0.0,
    )
    servo_command_timeout_s: float = param(
        "servo backend: Servo's incoming_command_timeout (a command is applied at most this long) [s].",
        default=0.1,
    )
    servo_service_timeout_s: float = param(
        "servo backend: how long a start / pause request may take before it is reported and retried [s].",
        default=1.0,
    )
    controller_preset: str = param(
        f"Arm controller commanded: one of {tuple(CONTROLLER_PRESETS)} (generic_jtc = "
        "joint_trajectory_controller/joint_trajectory, forward_position = forward_position_controller/"
        "commands, franka_fr3 = fr3_arm_controller/joint_trajectory, ur = scaled_joint_trajectory_"
        "controller/joint_trajectory); '' = follow backend (position -> forward_position, else generic_jtc).",
        default="",
    )
    command_topic: str = param(
        "Arm command topic; overrides the preset's topic ('' = the preset's).", default=""
    )
    gripper_backend: str = param(
        f"Gripper interface: one of {GRIPPER_BACKENDS} (topic = std_msgs/Float64MultiArray on "
        "gripper_topic; action = control_msgs/GripperCommand goals to gripper_action_name).",
        default="topic",
    )
    gripper_topic: str = param(
        "gripper_backend topic: Float64MultiArray topic of the gripper command (one value).",
        default="gripper_controller/commands",
    )
    gripper_action_name: str = param(
        "gripper_backend action: GripperCommand action (ros2_controllers' GripperActionController:"
        " <controller>/gripper_cmd; franka_gripper: /fr3_gripper/gripper_action; Robotiq:"
        " /robotiq_gripper_controller/gripper_cmd).",
        default="gripper_controller/gripper_cmd",
    )
    gripper_max_effort: float = param(
        "gripper_backend action: GripperCommand max_effort [N] (the grip force the driver may use;"
        " how a driver treats 0 is its own: see its documentation).",
        default=20.0,
    )
    gripper_goal_tolerance_m: float = param(
        "gripper_backend action: a new goal only when the command differs from the last goal by more"
        " than this [m].",
        default=0.001,
    )
    gripper_goal_interval_s: float = param(
        "gripper_backend action: at most one goal per this interval (the newest command is sent"
        " when it ends; goals are never queued) [s].",
        default=0.2,
    )
    gripper_hysteresis_m: float = param(
        "A new gripper target is taken only when it differs from the current gripper command by more"
        " than this (stops a noisy gripper column from chattering) [m]; 0 = off.",
        default=0.0,
    )
    gripper_min_dwell_s: float = param(
        "A gripper command is held at least this long before a new target is taken [s]; 0 = off.",
        default=0.0,
    )
    executor_threads: int = param(
        "1 = SingleThreadedExecutor; > 1 = MultiThreadedExecutor with this many threads (the timer keeps"
        " its own mutually exclusive group). 1 is the default: with SCHED_FIFO, Python threads of equal"
        " real-time priority convoy on the GIL (bench: 29 Hz, p99 170 ms multi- vs p99 0.3 ms single-"
        "threaded).",
        default=1,
    )
    loop_thread: bool = param(
        "With use_sim_time false: drive the loop from a dedicated thread on absolute CLOCK_MONOTONIC"
        " deadlines (SCHED_FIFO at realtime_priority when permitted) instead of an rclpy timer;"
        " subscriptions and services stay in the executor. With use_sim_time true the loop is"
        " always an rclpy timer on the node clock. Chosen at start-up.",
        default=True,
    )
    realtime_priority: int = param(
        "SCHED_FIFO priority tried for the loop thread (control_node's executor thread gets"
        " max(1, priority - 10)); with loop_thread false or sim time, for the whole process"
        " (0 = don't try).",
        default=50,
    )
    gil_switch_interval_s: float = param(
        "Loop thread: lower the interpreter's GIL switch interval to this, so the executor thread"
        " hands the GIL to the woken loop thread within it (Python's default is 5 ms) [s]; 0 = leave"
        " it.",
        default=0.0005,
    )
    publish_markers: bool = param(
        "Publish dp/control_markers (visualization_msgs/MarkerArray) for rviz: the commanded and the"
        " measured end-effector paths (forward kinematics of the 50 Hz commands and of joint_states;"
        " needs robot_description and pinocchio) and the gripper command vs the measured opening.",
        default=True,
    )
    marker_rate_hz: float = param(
        "dp/control_markers rate [Hz]; forward kinematics runs at this rate on the ticks recorded since"
        " the last marker, in the executor, never in the control loop.",
        default=10.0,
    )
    marker_history_s: float = param(
        "Length of the drawn end-effector paths [s] of control ticks.", default=3.0
    )
    marker_frame: str = param(
        "frame_id of dp/control_markers: the robot's base frame ('' = robot_description's root link).",
        default="",
    )
    marker_ee_frame: str = param(
        "Link whose origin is drawn as the end effector ('' = robot_description's last link, e.g."
        " panda_hand_tcp; fr3_hand_tcp for franka_description, tool0 for ur_description).",
        default="",
    )

    def __post_init__(self) -> None:
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names must be non-empty and unique. Got {self.joint_names}")
        if self.gripper_joint in self.joint_names:
            raise ValueError(
                f"gripper_joint {self.gripper_joint!r} must not be one of joint_names (it is not splined)"
            )
        one_of(self, "backend", BACKENDS)
        one_of(self, "interpolation", INTERPOLATION_MODES)
        one_of(self, "handover", HANDOVERS)
        one_of(self, "gripper_backend", GRIPPER_BACKENDS)
        one_of(self, "servo_interface", SERVO_INTERFACES)
        if self.backend == "servo":
            if self.controller_preset or self.command_topic:
                raise ValueError(
                    "backend 'servo' streams control_msgs/JointJog to MoveIt Servo (servo_command_topic); "
                    "Servo itself commands the arm controller (its command_out_topic): leave "
                    f"controller_preset and command_topic empty. Got controller_preset="
                    f"{self.controller_preset!r}, command_topic={self.command_topic!r}"
                )
        else:
            check_preset(self.backend, self.controller_preset)
        non_negative(self, "servo_position_gain")
        positive(self, "servo_service_timeout_s", "servo_command_timeout_s")
        positive(self, "rate_hz", "max_age_s", "chunk_timeout", "state_timeout", "max_tracking_error",
                 "max_start_distance", "preview_s", "controller_check_timeout_s")  # fmt: skip
        non_negative(self, "handover_s", "blend_window_s", "max_future_s", "ramp_in_s", "position_margin")
        non_negative(self, "gripper_max_effort", "gripper_goal_tolerance_m", "gripper_goal_interval_s",
                     "gripper_hysteresis_m", "gripper_min_dwell_s")  # fmt: skip
        if self.gripper_backend == "action" and not self.gripper_action_name:
            raise ValueError(
                "gripper_backend 'action' needs gripper_action_name (e.g. fr3_gripper/gripper_action)"
            )
        in_range(self, "velocity_scale", 0, 1, low_open=True)
        in_range(self, "acceleration_scale", 0, 1, low_open=True)
        in_range(self, "jerk_scale", 0, 1, low_open=True)
        at_least(self, "ensemble_max_chunks", 1)
        n = len(self.joint_names)
        for name in ("position_lower", "position_upper", "max_velocity", "max_acceleration", "max_jerk",
                     "start_pose"):  # fmt: skip
            values = getattr(self, name)
            if values and len(values) != n:
                raise ValueError(f"{name} must be empty or have one value per joint ({n}). Got {values}")
        if bool(self.position_lower) != bool(self.position_upper):
            raise ValueError("position_lower and position_upper must be given together")
        at_least(self, "executor_threads", 1)
        in_range(self, "realtime_priority", 0, 99)
        in_range(self, "gil_switch_interval_s", 0, 0.1)
        positive(self, "marker_rate_hz", "marker_history_s")
        if self.marker_history_ticks < 2:
            raise ValueError(
                f"marker_history_s * rate_hz must cover >= 2 control ticks. Got {self.marker_history_s} s"
            )

    @property
    def marker_history_ticks(self) -> int:
        """Points per drawn end-effector path (marker_history_s of control ticks)."""
        return int(round(self.marker_history_s * self.rate_hz))

    @property
    def period_s(self) -> float:
        """Nominal control period [s]."""
        return 1.0 / self.rate_hz
