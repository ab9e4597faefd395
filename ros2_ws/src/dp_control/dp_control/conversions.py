"""Message <-> numpy conversions of dp_control (the only module besides the node that imports msgs)."""

from __future__ import annotations

import array
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from dp_common.time import sec_to_stamp, stamp_to_sec
from dp_control.core import RawChunk


def chunk_msg_to_raw(msg) -> RawChunk:
    """dp_msgs/ActionChunk -> RawChunk (no validation; ``validate_chunk`` does that)."""
    data = msg.data
    try:
        flat = np.frombuffer(data, dtype=np.float32)  # array.array('f') from rclpy: no copy
    except TypeError:
        flat = np.asarray(data, dtype=np.float32)
    return RawChunk(
        stamp=stamp_to_sec(msg.header.stamp),
        dt=float(msg.dt),
        joint_names=tuple(msg.joint_names),
        horizon=int(msg.horizon),
        action_dim=int(msg.action_dim),
        data=flat,
        chunk_id=int(msg.chunk_id),
        policy_id=str(msg.policy_id),
        action_space=str(msg.action_space),
    )


def make_chunk_msg(
    stamp_s: float,
    dt: float,
    joint_names: Sequence[str],
    rows: np.ndarray,
    chunk_id: int = 0,
    policy_id: str = "",
    action_space: str = "joint_position",
):
    """(H, D) rows -> dp_msgs/ActionChunk (used by tests and tools)."""
    from dp_msgs.msg import ActionChunk

    rows = np.asarray(rows, dtype=np.float32)
    msg = ActionChunk()
    msg.header.stamp = sec_to_stamp(stamp_s)
    msg.chunk_id = int(chunk_id)
    msg.policy_id = policy_id
    msg.action_space = action_space
    msg.joint_names = list(joint_names)
    msg.dt = float(dt)
    msg.horizon = int(rows.shape[0])
    msg.action_dim = int(rows.shape[1]) if rows.ndim == 2 else 0
    msg.data = array.array("f", rows.ravel().tobytes())
    return msg


def _duration(seconds: float) -> Duration:
    ns = int(round(seconds * 1e9))
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


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
    msg = Float64MultiArray()
    msg.data = [float(v) for v in np.atleast_1d(np.asarray(values, dtype=np.float64))]
    return msg
