"""numpy <-> message conversion for the simulator's outputs (no per-point Python loops).

PointCloud2 layout: x, y, z float32 (offsets 0, 4, 8) and, with colour, `rgb` as a float32 that
carries packed 0x00RRGGBB (PCL convention, offset 12); dense, height 1, little endian.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image, PointCloud2, PointField

from dp_sim.core.cloud import encode_cloud


def cloud_to_msg(xyz: np.ndarray, rgb: np.ndarray | None, header) -> PointCloud2:
    """(N, 3) float32 points (+ optional (N, 3) rgb in [0, 1]) -> PointCloud2 with `header`."""
    data, fields, step = encode_cloud(xyz, rgb)
    n = data.shape[0] // step
    msg = PointCloud2()
    msg.header = header
    msg.height = 1
    msg.width = n
    msg.fields = [
        PointField(name=name, offset=off, datatype=PointField.FLOAT32, count=1) for name, off in fields
    ]
    msg.is_bigendian = False
    msg.point_step = step
    msg.row_step = step * n
    msg.is_dense = True
    msg.data = data.tobytes()  # bytes assignment: a memoryview is ~100x slower
    return msg


def msg_to_xyz(msg: PointCloud2) -> np.ndarray:
    """PointCloud2 with float32 x, y, z -> (N, 3) float32 (tests / tools)."""
    offsets = {f.name: f.offset for f in msg.fields}
    dt = np.dtype(
        {
            "names": ["x", "y", "z"],
            "formats": ["<f4"] * 3,
            "offsets": [offsets["x"], offsets["y"], offsets["z"]],
            "itemsize": msg.point_step,
        }
    )
    arr = np.frombuffer(bytes(msg.data), dtype=dt, count=msg.width * msg.height)
    return np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float32)


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
