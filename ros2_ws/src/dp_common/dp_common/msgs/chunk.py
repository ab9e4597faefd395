"""dp_msgs/ActionChunk: the one builder (policy side) and the one reader (control, replay, tools).

Row k of a chunk is the target for ``stamp_ns + k * dt``; ``data`` is row-major
``horizon x action_dim`` (the interface contract in DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dp_common.msgs.stamp import make_header, stamp_to_ns
from dp_common.msgs.types import ROS, MsgTypes, as_numpy

CHUNK_TYPE = "dp_msgs/msg/ActionChunk"


@dataclass(frozen=True)
class ChunkData:
    """An ActionChunk's content as read, before any validation.

    ``data`` is the flat float32 payload as received; ``rows`` reshapes it and raises when
    ``len(data) != horizon * action_dim``, so a receiver can still report a malformed chunk.
    """

    stamp_ns: int
    chunk_id: int
    policy_id: str
    action_space: str
    joint_names: tuple[str, ...]
    dt: float
    horizon: int
    action_dim: int
    data: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        """(horizon, action_dim) float32 targets.

        Raises:
            ValueError: when the payload length is not horizon x action_dim.
        """
        if self.data.size != self.horizon * self.action_dim:
            raise ValueError(
                f"ActionChunk {self.chunk_id}: len(data)={self.data.size}, expected horizon x "
                f"action_dim = {self.horizon} x {self.action_dim}"
            )
        return self.data.reshape(self.horizon, self.action_dim)


def build_chunk(
    stamp_ns: int,
    rows: np.ndarray,
    joint_names: Sequence[str],
    dt: float,
    chunk_id: int = 0,
    policy_id: str = "",
    action_space: str = "joint_position",
    types: MsgTypes = ROS,
):
    """(horizon, action_dim) rows -> dp_msgs/ActionChunk stamped `stamp_ns` (integer ns).

    Raises:
        ValueError: when rows are not 2-D or their width differs from len(joint_names).
    """
    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != len(joint_names):
        raise ValueError(
            f"chunk rows must be (horizon, len(joint_names)={len(joint_names)}). Got {rows.shape}"
        )
    return types[CHUNK_TYPE](
        header=make_header(stamp_ns, "", types),
        chunk_id=int(chunk_id),
        policy_id=str(policy_id),
        action_space=str(action_space),
        joint_names=list(joint_names),
        dt=float(dt),
        horizon=int(rows.shape[0]),
        action_dim=int(rows.shape[1]),
        data=types.numeric_array(rows, np.float32),
    )


def read_chunk(msg) -> ChunkData:
    """dp_msgs/ActionChunk (rclpy or rosbags) -> ChunkData (no validation; see ``ChunkData.rows``)."""
    return ChunkData(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        chunk_id=int(msg.chunk_id),
        policy_id=str(msg.policy_id),
        action_space=str(msg.action_space),
        joint_names=tuple(msg.joint_names),
        dt=float(msg.dt),
        horizon=int(msg.horizon),
        action_dim=int(msg.action_dim),
        data=as_numpy(msg.data, np.float32),
    )
