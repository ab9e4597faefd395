"""sensor_msgs/PointCloud2 <-> numpy (structured dtypes over the message buffer; no per-point loops)."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from dp_common.core.pointcloud import DecodedCloud, RawCloud, decode_cloud_message, encode_points


def cloud_msg_to_numpy(msg: PointCloud2, max_points: int | None = None) -> DecodedCloud:
    """Decodes a PointCloud2 into xyz (N, 3) float32 and packed rgb (N,) uint32 or None.

    Raises:
        dp_perception.core.PerceptionError (ValueError) for malformed or unsupported layouts.
    """
    return decode_cloud_message(msg, max_points=max_points)


def raw_to_cloud_msg(raw: RawCloud, header: Header) -> PointCloud2:
    """Wraps a RawCloud into a PointCloud2 with `header`."""
    msg = PointCloud2()
    msg.header = header
    msg.height = raw.height
    msg.width = raw.width
    msg.fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in raw.fields]
    msg.is_bigendian = bool(raw.is_bigendian)
    msg.point_step = raw.point_step
    msg.row_step = raw.row_step
    msg.is_dense = False
    # bytes assignment: a memoryview/array assignment is ~100x slower in rclpy.
    msg.data = bytes(raw.data)
    return msg


def numpy_to_cloud_msg(points: np.ndarray, header: Header) -> PointCloud2:
    """(N, 3) xyz or (N, 6) xyz + rgb in [0, 1] -> unorganized float32 PointCloud2 (rgb packed)."""
    msg = raw_to_cloud_msg(encode_points(points), header)
    msg.is_dense = bool(np.isfinite(np.asarray(points)[:, :3]).all())
    return msg
