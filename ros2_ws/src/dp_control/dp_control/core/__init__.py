"""ROS-free core of dp_control: chunk validation/scheduling, interpolation, limits, state machine."""

from .chunk import Chunk, ChunkError, RawChunk, validate_chunk
from .command import Command, ControlState, ControlStats
from .config import BACKENDS, HANDOVERS, PANDA_JOINTS, SERVO_INTERFACES, ControlConfig
from .controller import ControlCore
from .gripper import GoalGate, GripperHysteresis
from .interpolator import (
    INTERPOLATION_MODES,
    BrakeReference,
    ChunkReference,
    Crossfade,
    HoldReference,
    JointInterpolator,
)
from .limits import (
    JointLimits,
    MotionLimiter,
    build_joint_limits,
    default_limits_file,
    limits_from_config,
    load_joint_limits_yaml,
    parse_urdf_limits,
)
from .presets import CONTROLLER_PRESETS, GRIPPER_BACKENDS, ControllerPreset, resolve_command_topic
from .servo import JointJogStream

__all__ = [
    "BACKENDS",
    "SERVO_INTERFACES",
    "JointJogStream",
    "CONTROLLER_PRESETS",
    "GRIPPER_BACKENDS",
    "HANDOVERS",
    "INTERPOLATION_MODES",
    "PANDA_JOINTS",
    "BrakeReference",
    "Chunk",
    "ChunkError",
    "ChunkReference",
    "Command",
    "ControlConfig",
    "ControlCore",
    "ControlState",
    "ControlStats",
    "ControllerPreset",
    "Crossfade",
    "GoalGate",
    "GripperHysteresis",
    "HoldReference",
    "JointInterpolator",
    "JointLimits",
    "MotionLimiter",
    "RawChunk",
    "build_joint_limits",
    "default_limits_file",
    "limits_from_config",
    "load_joint_limits_yaml",
    "parse_urdf_limits",
    "resolve_command_topic",
    "validate_chunk",
]
