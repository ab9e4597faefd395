"""ROS-free PointCloud2 byte layout used by the simulator (x y z float32 [+ rgb packed float32])."""

from __future__ import annotations

import numpy as np

XYZ_DTYPE = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3, "offsets": [0, 4, 8], "itemsize": 12})
XYZRGB_DTYPE = np.dtype(
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


def encode_cloud(
    xyz: np.ndarray, rgb: np.ndarray | None = None
) -> tuple[np.ndarray, list[tuple[str, int]], int]:
    """Pack points for a PointCloud2.

    Args:
        xyz: (N, 3) float points, m.
        rgb: optional (N, 3) float colours in [0, 1] (PCL packed-float `rgb` field).
    Returns:
        (data (N * point_step,) uint8, [(field name, byte offset)] all FLOAT32, point_step).
    """
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    n = xyz.shape[0]
    if rgb is not None:
        arr = np.empty(n, dtype=XYZRGB_DTYPE)
        arr["rgb"] = pack_rgb(np.asarray(rgb).reshape(-1, 3))
        fields = [("x", 0), ("y", 4), ("z", 8), ("rgb", 12)]
    else:
        arr = np.empty(n, dtype=XYZ_DTYPE)
        fields = [("x", 0), ("y", 4), ("z", 8)]
    arr["x"], arr["y"], arr["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    return arr.view(np.uint8).reshape(-1), fields, arr.dtype.itemsize
