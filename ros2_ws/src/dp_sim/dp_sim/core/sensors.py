"""Depth camera model: noise, holes at depth discontinuities, extrinsic jitter, back-projection.

ROS-free, numpy only. What a structured-light / active-stereo camera (RealSense D4xx, Kinect)
does to a perfect depth image, in the order applied:

1. holes at depth discontinuities: a pixel whose 4-neighbourhood spans a depth step larger than
   `edge_threshold_m` is invalid with probability `edge_dropout` (occlusion shadows, mixed pixels);
2. random dropout of `depth_dropout` of the valid pixels;
3. axial noise with std `depth_noise_m * z^2` (z in m; the error of triangulation grows with
   the square of the distance).

The extrinsic jitter moves the *true* camera by a few mm / a fraction of a degree per episode;
consumers (perception, datasets) keep the nominal transform, as a robot's calibration would.
All randomness comes from the generator passed in (seeded per episode by SimScene).
"""

from __future__ import annotations

import numpy as np


def intrinsics(width: int, height: int, fovy_deg: float) -> np.ndarray:
    """Pinhole matrix K (3, 3) of the optical frame for MuJoCo's fovy (square pixels)."""
    f = 0.5 * height / np.tan(np.deg2rad(fovy_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def discontinuity_mask(depth: np.ndarray, threshold_m: float) -> np.ndarray:
    """(H, W) bool: pixels whose 4-neighbourhood spans a depth step > threshold_m."""
    d = depth.astype(np.float32)
    step = np.zeros(d.shape, dtype=np.float32)
    dx = np.abs(np.diff(d, axis=1))
    dy = np.abs(np.diff(d, axis=0))
    step[:, 1:] = np.maximum(step[:, 1:], dx)
    step[:, :-1] = np.maximum(step[:, :-1], dx)
    step[1:, :] = np.maximum(step[1:, :], dy)
    step[:-1, :] = np.maximum(step[:-1, :], dy)
    return step > threshold_m


def corrupt_depth(
    depth: np.ndarray,
    rng: np.random.Generator,
    noise_m: float,
    dropout: float,
    edge_dropout: float,
    edge_threshold_m: float,
) -> np.ndarray:
    """Apply holes, dropout and z^2 noise to a depth image; invalid pixels become 0.

    Args:
        depth: (H, W) float32 m (z along the optical axis).
        rng: the episode's sensor generator.
        noise_m: std at 1 m (m).
        dropout: fraction of valid pixels dropped at random.
        edge_dropout: probability of a hole at a discontinuity pixel.
        edge_threshold_m: depth step (m) that counts as a discontinuity.
    Returns:
        (H, W) float32 m.
    """
    d = depth.astype(np.float32, copy=True)
    invalid = np.zeros(d.shape, dtype=bool)
    if edge_dropout > 0:
        invalid |= discontinuity_mask(d, edge_threshold_m) & (rng.random(d.shape) < edge_dropout)
    if dropout > 0:
        invalid |= rng.random(d.shape) < dropout
    if noise_m > 0:
        d += rng.standard_normal(d.shape).astype(np.float32) * np.float32(noise_m) * d * d
    d[invalid] = 0.0
    return d


def jitter_pose(
    t_world_cam: np.ndarray, rng: np.random.Generator, pos_m: float, rot_deg: float
) -> np.ndarray:
    """A (4, 4) pose moved by uniform +-pos_m per axis and turned about its own origin by an angle
    drawn uniformly from [0, rot_deg] about a uniformly random axis (so the rotation never exceeds
    rot_deg: a calibration "off by up to 0.5 deg")."""
    from scipy.spatial.transform import Rotation

    out = np.asarray(t_world_cam, float).copy()
    out[:3, 3] += rng.uniform(-pos_m, pos_m, 3)
    axis = rng.normal(size=3)
    axis /= max(float(np.linalg.norm(axis)), 1e-12)
    rot = Rotation.from_rotvec(axis * np.deg2rad(rng.uniform(0.0, rot_deg)))
    out[:3, :3] = rot.as_matrix() @ out[:3, :3]
    return out


def set_mujoco_camera(model, cam_id: int, t_world_optical: np.ndarray) -> None:
    """Place MuJoCo camera `cam_id` (a world-body camera) at a world <- optical frame pose (4, 4)."""
    import mujoco

    rot = np.ascontiguousarray(t_world_optical[:3, :3] @ np.diag([1.0, -1.0, -1.0]))  # optical -> MuJoCo
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rot.ravel())
    model.cam_pos[cam_id] = t_world_optical[:3, 3]
    model.cam_quat[cam_id] = quat


def transform_points(t: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) transform to (N, 3) points; returns float32."""
    return (xyz @ t[:3, :3].T.astype(np.float32) + t[:3, 3].astype(np.float32)).astype(np.float32)


def backproject(
    depth: np.ndarray, k: np.ndarray, max_depth_m: float, color: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Back-project valid pixels (0 < z < max_depth_m) into the optical frame.

    Returns:
        xyz (N, 3) float32 in the optical frame, rgb (N, 3) float32 in [0, 1] or None.
    """
    valid = (depth > 0) & (depth < max_depth_m)
    v, u = np.nonzero(valid)
    z = depth[v, u]
    xyz = np.empty((z.shape[0], 3), dtype=np.float32)
    xyz[:, 0] = (u - k[0, 2]) * z / k[0, 0]
    xyz[:, 1] = (v - k[1, 2]) * z / k[1, 1]
    xyz[:, 2] = z
    rgb = None if color is None else color[v, u].astype(np.float32) / 255.0
    return xyz, rgb
