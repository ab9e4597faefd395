"""geometry_msgs/TransformStamped and tf2_msgs/TFMessage: the one builder and the one reader.

Transforms are (4, 4) matrices that map points of ``child_frame_id`` into ``frame_id`` (the TF
convention); the quaternion math is ``dp_common.core.transforms``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dp_common.core.transforms import matrix_to_quaternion, quaternion_to_matrix
from dp_common.msgs.stamp import make_header, stamp_to_ns
from dp_common.msgs.types import ROS, MsgTypes

TF_TYPE = "tf2_msgs/msg/TFMessage"


def build_transform(stamp_ns: int, frame_id: str, child_frame_id: str, matrix, types: MsgTypes = ROS):
    """(4, 4) transform child -> parent -> geometry_msgs/TransformStamped stamped `stamp_ns`."""
    m = np.asarray(matrix, dtype=np.float64)
    x, y, z, w = (float(v) for v in matrix_to_quaternion(m))
    tx, ty, tz = (float(v) for v in m[:3, 3])
    return types["geometry_msgs/msg/TransformStamped"](
        header=make_header(stamp_ns, frame_id, types),
        child_frame_id=child_frame_id,
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=tx, y=ty, z=tz),
            rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
        ),
    )


def build_tf(transforms, types: MsgTypes = ROS):
    """tf2_msgs/TFMessage of TransformStamped messages (see :func:`build_transform`)."""
    return types[TF_TYPE](transforms=list(transforms))


@dataclass(frozen=True)
class TransformData:
    """A TransformStamped as read: stamp (integer ns), parent and child frames, (4, 4) matrix."""

    stamp_ns: int
    frame_id: str
    child_frame_id: str
    matrix: np.ndarray


def read_transform(msg) -> TransformData:
    """geometry_msgs/TransformStamped (rclpy or rosbags) -> TransformData.

    Raises:
        ValueError: when the rotation is not a usable quaternion (zero or not finite).
    """
    t, r = msg.transform.translation, msg.transform.rotation
    return TransformData(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        frame_id=str(msg.header.frame_id),
        child_frame_id=str(msg.child_frame_id),
        matrix=quaternion_to_matrix([t.x, t.y, t.z], [r.x, r.y, r.z, r.w]),
    )


def read_tf(msg) -> list[TransformData]:
    """tf2_msgs/TFMessage (rclpy or rosbags) -> its transforms, in message order."""
    return [read_transform(t) for t in msg.transforms]
