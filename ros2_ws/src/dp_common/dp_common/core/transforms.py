"""Rigid transforms as (4, 4) matrices <-> translation + quaternion [x, y, z, w] (numpy only).

The one quaternion conversion of dp: TF messages, static camera transforms given as parameters
(``[x, y, z, qx, qy, qz, qw]``) and datasets all go through here.
"""

from __future__ import annotations

import numpy as np


def quaternion_to_matrix(xyz, quat_xyzw) -> np.ndarray:
    """(4, 4) homogeneous transform from a translation (m) and a quaternion [x, y, z, w] (normalized here).

    Raises:
        ValueError: when the quaternion is not 4 finite numbers or is zero.
    """
    q = np.asarray(quat_xyzw, dtype=np.float64)
    norm = np.linalg.norm(q)
    if q.shape != (4,) or not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"quaternion must be 4 finite numbers [x, y, z, w], not zero. Got {q}")
    x, y, z, w = q / norm
    t = np.eye(4)
    t[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    t[:3, 3] = np.asarray(xyz, dtype=np.float64)
    return t


def matrix_to_quaternion(m) -> np.ndarray:
    """Rotation part of a (3, 3) or (4, 4) matrix -> unit quaternion [x, y, z, w] with w >= 0.

    Raises:
        ValueError: when the matrix is not (3, 3) / (4, 4) and finite.
    """
    m = np.asarray(m, dtype=np.float64)
    if m.shape not in ((3, 3), (4, 4)) or not np.isfinite(m).all():
        raise ValueError(f"expected a finite (3, 3) or (4, 4) matrix. Got shape {m.shape}")
    r = m[:3, :3]
    # Shepperd: pivot on the largest of w^2, x^2, y^2, z^2 for numerical stability.
    diag = np.array([np.trace(r), r[0, 0], r[1, 1], r[2, 2]])
    k = int(np.argmax(diag))
    if k == 0:
        s = 2.0 * np.sqrt(1.0 + diag[0])
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, s / 4]
    elif k == 1:
        s = 2.0 * np.sqrt(max(1.0 + r[0, 0] - r[1, 1] - r[2, 2], 1e-300))
        q = [s / 4, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s, (r[2, 1] - r[1, 2]) / s]
    elif k == 2:
        s = 2.0 * np.sqrt(max(1.0 + r[1, 1] - r[0, 0] - r[2, 2], 1e-300))
        q = [(r[0, 1] + r[1, 0]) / s, s / 4, (r[1, 2] + r[2, 1]) / s, (r[0, 2] - r[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(max(1.0 + r[2, 2] - r[0, 0] - r[1, 1], 1e-300))
        q = [(r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, s / 4, (r[1, 0] - r[0, 1]) / s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def pose7_to_matrix(pose) -> np.ndarray:
    """[x, y, z, qx, qy, qz, qw] -> (4, 4) transform."""
    pose = np.asarray(pose, dtype=np.float64).reshape(-1)
    if pose.shape != (7,):
        raise ValueError(f"pose must be 7 numbers [x, y, z, qx, qy, qz, qw]. Got {pose.size}")
    return quaternion_to_matrix(pose[:3], pose[3:])


def matrix_to_pose7(m) -> list[float]:
    """(4, 4) transform -> [x, y, z, qx, qy, qz, qw] (floats, for parameters and datasets)."""
    m = np.asarray(m, dtype=np.float64)
    return [float(v) for v in (*m[:3, 3], *matrix_to_quaternion(m))]
