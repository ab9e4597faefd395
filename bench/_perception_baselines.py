"""The reference pipelines bench_perception compares perception_node's core against.

- (a) DP3's pipeline: crop, then fpsample QuickFPS over all cropped points (no voxel grid);
- (a2) our crop + QuickFPS over all cropped points (no voxel grid), to isolate the voxel gain;
- (b) open3d voxel_down_sample + farthest_point_down_sample.

Each takes the PointCloud2 bytes (a ``RawCloud``) and returns (encoded bytes, (num_points, 3) points).
"""

from __future__ import annotations

import numpy as np

from dp_common.core.pointcloud import decode_raw, encode_points
from dp_perception.core.preprocess import transform_crop


def dp3_pipeline(raw, transform, crop_min, crop_max, num_points, h=7):
    """Baseline (a): DP3-style numpy crop, then fpsample QuickFPS over all cropped points."""
    import fpsample

    dec = decode_raw(raw)
    xyz = np.asarray(dec.xyz, dtype=np.float32)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    pts = xyz @ transform[:3, :3].T.astype(np.float32) + transform[:3, 3].astype(np.float32)
    mask = np.all((pts >= crop_min) & (pts <= crop_max), axis=1)
    pts = pts[mask]
    idx = fpsample.bucket_fps_kdline_sampling(pts, num_points, h)
    out = pts[idx]
    return encode_points(out).data, out


def ourcrop_fps_pipeline(raw, transform, crop_min, crop_max, num_points, h=7):
    """(a') for reference: our crop, then fpsample QuickFPS over all cropped points (no voxel)."""
    import fpsample

    dec = decode_raw(raw)
    _, pts = transform_crop(dec.xyz, transform, crop_min, crop_max)
    pts = np.ascontiguousarray(pts)
    out = pts[fpsample.bucket_fps_kdline_sampling(pts, num_points, h)]
    return encode_points(out).data, out


def o3d_pipeline(raw, transform, crop_min, crop_max, num_points, voxel):
    """Baseline (b): numpy crop, open3d voxel_down_sample + farthest_point_down_sample."""
    import open3d as o3d

    dec = decode_raw(raw)
    _, pts = transform_crop(dec.xyz, transform, crop_min, crop_max)
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(pts, dtype=np.float64)))
    pc = pc.voxel_down_sample(voxel)
    pc = pc.farthest_point_down_sample(num_points)
    out = np.asarray(pc.points, dtype=np.float32)
    return encode_points(out).data, out
