"""Message <-> numpy conversions of dp_control (the only module besides the node that imports msgs)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from dp_common.msgs import NS_PER_S, ns_to_s, s_to_ns
from dp_common.msgs.array import build_float64_array
from dp_common.msgs.chunk import read_chunk
from dp_control.core import RawChunk


def chunk_msg_to_raw(msg) -> RawChunk:
    """dp_msgs/ActionChunk -> RawChunk through the one reader, ``read_chunk`` (no validation here).

    The stamp becomes float seconds: the control core does its arithmetic on the control clock in s.
    """
    c = read_chunk(msg)
    same = {f.name: getattr(c, f.name) for f in dataclasses.fields(RawChunk) if f.name != "stamp"}
    return RawChunk(stamp=ns_to_s(c.stamp_ns), **same)


def _duration(seconds: float) -> Duration:
    ns = s_to_ns(seconds)
    return Duration(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def joint_trajectory_msg(
    joint_names: Sequence[str],
    t_now: float,
    times: np.ndarray,
    positions: np.ndarray,
    velocities: np.ndarray,
) -> JointTrajectory:
    """Preview (M,) times [s, control clock], (M, n) positions/velocities -> JointTrajectory.

    ``header.stamp`` is zero ("start on receipt"), so the controller's clock need not match ours;
    ``time_from_start`` is ``times - t_now``.
    """
    msg = JointTrajectory()
    msg.joint_names = list(joint_names)
    points = []
    for t, q, v in zip(times.tolist(), positions.tolist(), velocities.tolist(), strict=True):
        points.append(JointTrajectoryPoint(positions=q, velocities=v, time_from_start=_duration(t - t_now)))
    msg.points = points
    return msg


def float64_array_msg(values: np.ndarray | Sequence[float]) -> Float64MultiArray:
    """Values -> std_msgs/Float64MultiArray (forward_position_controller / gripper commands)."""
    return build_float64_array(values)
