"""rosbags message dataclasses <-> numpy for the topics evaluation reads and writes (ROS-free).

Clouds are decoded with dp_perception's structured-dtype decoder (no per-point Python loops).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dp_common.core.pointcloud import decode_cloud_message, encode_points, encode_xyz


def ns_to_s(t_ns: int) -> float:
    """Nanoseconds -> float seconds."""
    return t_ns * 1e-9


def stamp_s(header) -> float:
    """header.stamp of a rosbags message as float seconds."""
    return float(header.stamp.sec) + float(header.stamp.nanosec) * 1e-9


def make_header(typestore, t_s: float, frame_id: str = ""):
    """std_msgs/Header with stamp `t_s` (s, >= 0)."""
    Time = typestore.types["builtin_interfaces/msg/Time"]
    Header = typestore.types["std_msgs/msg/Header"]
    ns = int(round(t_s * 1e9))
    return Header(stamp=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), frame_id=frame_id)


def make_cloud(typestore, t_s: float, frame_id: str, points: np.ndarray, rgb: np.ndarray | None = None):
    """sensor_msgs/PointCloud2 (unorganized, float32 xyz [+ packed rgb]) from (N, 3|6) points.

    Args:
        points: (N, 3) xyz or (N, 6) xyz + rgb in [0, 1] (then `rgb` must be None).
        rgb: optional (N, 3) colors in [0, 1].
    """
    raw = encode_xyz(points, rgb) if rgb is not None or points.shape[1] == 3 else encode_points(points)
    PointField = typestore.types["sensor_msgs/msg/PointField"]
    PointCloud2 = typestore.types["sensor_msgs/msg/PointCloud2"]
    fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in raw.fields]
    return PointCloud2(
        header=make_header(typestore, t_s, frame_id),
        height=raw.height,
        width=raw.width,
        fields=fields,
        is_bigendian=raw.is_bigendian,
        point_step=raw.point_step,
        row_step=raw.row_step,
        data=np.frombuffer(raw.data, dtype=np.uint8),
        is_dense=True,
    )


def make_joint_state(typestore, t_s: float, names, positions, velocities=None):
    """sensor_msgs/JointState with positions (rad) and optional velocities."""
    JointState = typestore.types["sensor_msgs/msg/JointState"]
    pos = np.asarray(positions, dtype=np.float64)
    vel = np.zeros(0) if velocities is None else np.asarray(velocities, dtype=np.float64)
    return JointState(
        header=make_header(typestore, t_s),
        name=list(names),
        position=pos,
        velocity=vel,
        effort=np.zeros(0, dtype=np.float64),
    )


def make_action_chunk(
    typestore,
    t_s: float,
    chunk_id: int,
    policy_id: str,
    joint_names,
    dt: float,
    rows: np.ndarray,
    action_space: str = "joint_position",
):
    """dp_msgs/ActionChunk from (horizon, action_dim) rows; row k targets t_s + k * dt."""
    ActionChunk = typestore.types["dp_msgs/msg/ActionChunk"]
    rows = np.asarray(rows, dtype=np.float32)
    return ActionChunk(
        header=make_header(typestore, t_s),
        chunk_id=int(chunk_id),
        policy_id=policy_id,
        action_space=action_space,
        joint_names=list(joint_names),
        dt=float(dt),
        horizon=int(rows.shape[0]),
        action_dim=int(rows.shape[1]),
        data=rows.reshape(-1).copy(),
    )


@dataclass
class Cloud:
    """A decoded cloud: stamp (s), frame, (N, 3) xyz, optional (N,) packed rgb."""

    stamp_s: float
    frame_id: str
    xyz: np.ndarray
    rgb_packed: np.ndarray | None


def decode_cloud(msg, max_points: int | None = None) -> Cloud:
    """rosbags PointCloud2 -> Cloud (views of the message bytes where possible)."""
    dec = decode_cloud_message(msg, max_points=max_points)
    return Cloud(stamp_s(msg.header), msg.header.frame_id, dec.xyz, dec.rgb_packed)


@dataclass
class Chunk:
    """A decoded ActionChunk: stamp (s), id, policy, column names, dt (s), rows (H, A)."""

    stamp_s: float
    chunk_id: int
    policy_id: str
    joint_names: list[str]
    dt: float
    rows: np.ndarray


def decode_chunk(msg) -> Chunk:
    """rosbags ActionChunk -> Chunk.

    Raises:
        ValueError: when len(data) != horizon * action_dim.
    """
    data = np.asarray(msg.data, dtype=np.float32)
    if data.size != msg.horizon * msg.action_dim:
        raise ValueError(
            f"ActionChunk {msg.chunk_id}: len(data)={data.size}, expected horizon x action_dim = "
            f"{msg.horizon} x {msg.action_dim}"
        )
    return Chunk(
        stamp_s(msg.header),
        int(msg.chunk_id),
        str(msg.policy_id),
        list(msg.joint_names),
        float(msg.dt),
        data.reshape(msg.horizon, msg.action_dim),
    )
