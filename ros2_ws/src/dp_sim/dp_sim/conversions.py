"""numpy -> message conversion for the simulator's outputs (no per-point Python loops).

Clouds use dp_perception's encoder, the same layout perception_node publishes: x, y, z float32
(offsets 0, 4, 8) and, with colour, `rgb` as a float32 carrying packed 0x00RRGGBB (PCL convention,
offset 12); height 1, little endian.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image, PointCloud2

from dp_perception.conversions import raw_to_cloud_msg
from dp_common.core.pointcloud import encode_xyz


def cloud_to_msg(xyz: np.ndarray, rgb: np.ndarray | None, header) -> PointCloud2:
    """(N, 3) float32 points (+ optional (N, 3) rgb in [0, 1]) -> PointCloud2 with `header`."""
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    msg = raw_to_cloud_msg(encode_xyz(xyz, rgb), header)
    msg.is_dense = bool(np.isfinite(xyz).all())  # back-projection keeps valid depth pixels only
    return msg


def image_to_msg(rgb: np.ndarray, header) -> Image:
    """(H, W, 3) uint8 -> sensor_msgs/Image rgb8."""
    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(img.shape[0]), int(img.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = int(img.shape[1] * 3)
    msg.data = img.tobytes()
    return msg
