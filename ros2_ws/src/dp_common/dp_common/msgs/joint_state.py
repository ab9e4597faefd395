"""sensor_msgs/JointState: the one builder (robot / simulator / recorders) and the one reader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dp_common.msgs.stamp import make_header, stamp_to_ns
from dp_common.msgs.types import ROS, MsgTypes, as_numpy

JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"


def build_joint_state(
    stamp_ns: int,
    names: Sequence[str],
    positions,
    velocities=None,
    efforts=None,
    frame_id: str = "",
    types: MsgTypes = ROS,
):
    """Joint positions (rad or m), optional velocities and efforts -> sensor_msgs/JointState.

    Raises:
        ValueError: when a given array's length differs from len(names).
    """
    names = list(names)
    arrays = {}
    for key, values in (("position", positions), ("velocity", velocities), ("effort", efforts)):
        arr = np.zeros(0) if values is None else np.asarray(values, dtype=np.float64).reshape(-1)
        if values is not None and arr.size != len(names):
            raise ValueError(f"JointState {key} has {arr.size} values; expected one per name ({len(names)})")
        arrays[key] = types.numeric_array(arr, np.float64)
    return types[JOINT_STATE_TYPE](header=make_header(stamp_ns, frame_id, types), name=names, **arrays)


@dataclass(frozen=True)
class JointStateData:
    """A JointState as read: stamp (integer ns), names and float64 arrays (empty when not sent)."""

    stamp_ns: int
    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


def read_joint_state(msg) -> JointStateData:
    """sensor_msgs/JointState (rclpy or rosbags) -> JointStateData (no validation of lengths)."""
    return JointStateData(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        names=tuple(msg.name),
        position=as_numpy(msg.position, np.float64),
        velocity=as_numpy(msg.velocity, np.float64),
        effort=as_numpy(msg.effort, np.float64),
    )
