"""numpy <-> message conversion for the simulator's outputs (no per-point Python loops).

PointCloud2 layout: x, y, z float32 (offsets 0, 4, 8) and, with colour, `rgb` as a float32 that
carries packed 0x00RRGGBB (PCL convention, offset 12); dense, height 1, little endian.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image, PointCloud2, PointField

_XYZ = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3, "offsets": [0, 4, 8], "itemsize": 12})
_XYZRGB = np.dtype(
    {
        "names": ["x", "y", "z", "rgb"],
        "formats": ["<f4"] * 3 + ["<u4"],
        "offsets": [0, 4, 8, 12],
        "itemsize": 16,
    }
)


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) float in [0, 1] -> (N,) uint32 0x00RRGGBB."""
    c = np.clip(np.rint(np.asarray(rgb, dtype=np.float32) * 255.0), 0, 255).astype(np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def cloud_to_msg(xyz: np.ndarray, rgb: np.ndarray | None, header) -> PointCloud2:
    """(N, 3) float32 points (+ optional (N, 3) rgb in [0, 1]) -> PointCloud2 with `header`."""
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    n = xyz.shape[0]
    if rgb is not None:
        arr = np.empty(n, dtype=_XYZRGB)
        arr["rgb"] = pack_rgb(np.asarray(rgb).reshape(-1, 3))
    else:
        arr = np.empty(n, dtype=_XYZ)
    arr["x"], arr["y"], arr["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    msg = PointCloud2()
    msg.header = header
    msg.height = 1
    msg.width = n
    msg.fields = [
        PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
        PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
        PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1),
    ]
    if rgb is not None:
        msg.fields.append(PointField(name="rgb", offset=12, datatype=PointField.FLOAT32, count=1))
    msg.is_bigendian = False
    msg.point_step = arr.dtype.itemsize
    msg.row_step = msg.point_step * n
    msg.is_dense = True
    msg.data = arr.tobytes()  # bytes assignment: a memoryview is ~100x slower
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
