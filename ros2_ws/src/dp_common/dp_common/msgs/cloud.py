"""sensor_msgs/PointCloud2: the one builder and the one reader (numpy structured dtypes, no per-point loops).

The byte layout lives in the ROS-free codec ``dp_common.core.pointcloud``; this module only wraps
it in a message. Clouds built from points are unorganized float32 x, y, z (+ ``rgb`` as a float32
carrying packed 0x00RRGGBB, the PCL convention), height 1, little endian.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dp_common.core.pointcloud import DecodedCloud, RawCloud, decode_cloud_message, encode_points, encode_xyz
from dp_common.msgs.stamp import make_header, stamp_to_ns
from dp_common.msgs.types import ROS, MsgTypes

CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"


def build_raw_cloud(
    stamp_ns: int, frame_id: str, raw: RawCloud, is_dense: bool = False, types: MsgTypes = ROS
):
    """A RawCloud (any layout the codec describes) -> sensor_msgs/PointCloud2 stamped `stamp_ns`."""
    point_field = types["sensor_msgs/msg/PointField"]
    return types[CLOUD_TYPE](
        header=make_header(stamp_ns, frame_id, types),
        height=int(raw.height),
        width=int(raw.width),
        fields=[point_field(name=n, offset=o, datatype=d, count=c) for n, o, d, c in raw.fields],
        is_bigendian=bool(raw.is_bigendian),
        point_step=int(raw.point_step),
        row_step=int(raw.row_step),
        data=types.uint8_array(raw.data),  # bytes for rclpy: a memoryview assignment is ~100x slower
        is_dense=bool(is_dense),
    )


def build_cloud(
    stamp_ns: int,
    frame_id: str,
    points: np.ndarray,
    rgb: np.ndarray | None = None,
    types: MsgTypes = ROS,
):
    """(N, 3) xyz or (N, 6) xyz + rgb in [0, 1] (or xyz and a separate (N, 3) `rgb`) -> PointCloud2.

    ``is_dense`` is True when every point is finite.

    Raises:
        ValueError: when the shapes are not (N, 3) / (N, 6) and (N, 3).
    """
    points = np.asarray(points)
    raw = encode_points(points) if rgb is None else encode_xyz(points, rgb)
    is_dense = bool(np.isfinite(points[:, :3]).all()) if points.size else True
    return build_raw_cloud(stamp_ns, frame_id, raw, is_dense, types)


@dataclass(frozen=True)
class CloudData:
    """A PointCloud2 as read: stamp (integer ns), frame and the decoded layout.

    ``cloud.xyz`` is (N, 3) float32, ``cloud.rgb_packed`` (N,) uint32 or None; both may be
    read-only views of the message buffer.
    """

    stamp_ns: int
    frame_id: str
    cloud: DecodedCloud

    @property
    def xyz(self) -> np.ndarray:
        """(N, 3) float32 points in ``frame_id``, m."""
        return self.cloud.xyz

    @property
    def rgb_packed(self) -> np.ndarray | None:
        """(N,) uint32 0x00RRGGBB, or None without color."""
        return self.cloud.rgb_packed

    def rgb(self) -> np.ndarray | None:
        """(N, 3) float32 colors in [0, 1], or None without color."""
        return self.cloud.rgb()


def read_cloud(msg, max_points: int | None = None) -> CloudData:
    """sensor_msgs/PointCloud2 (rclpy or rosbags) -> CloudData.

    Raises:
        dp_common.core.pointcloud.CloudError (a ValueError, with ``reason``): malformed or
            unsupported layout, or more than `max_points` points.
    """
    return CloudData(
        stamp_to_ns(msg.header.stamp),
        str(msg.header.frame_id),
        decode_cloud_message(msg, max_points=max_points),
    )
