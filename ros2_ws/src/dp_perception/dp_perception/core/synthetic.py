"""Seeded synthetic depth-camera clouds for tests and benchmarks (ROS-free).

The scene is a tabletop seen by a pinhole camera tilted down at the table: a table plane
(z = 0 in the target frame), a few boxes and a sphere on it, a floor below and a wall behind.
The cloud comes back organized (H, W) in the camera optical frame (z forward, x right, y down),
with NaN for pixels whose ray hits nothing within range or that are marked invalid, plus the
target<-camera transform. With the defaults about a third of the points lie in `TABLETOP_CROP`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Crop box (min xyz, max xyz) in the target frame that holds the table and its objects.
TABLETOP_CROP = ((0.2, -0.5, -0.02), (1.0, 0.5, 0.4))


@dataclass
class SyntheticCloud:
    """An organized synthetic cloud.

    Attributes:
        xyz: (H, W, 3) float32 points in the camera optical frame, m; NaN where invalid.
        rgb: (H, W, 3) uint8 colors.
        transform: (4, 4) float64 target<-camera transform.
    """

    xyz: np.ndarray
    rgb: np.ndarray
    transform: np.ndarray


def look_at(eye, target) -> np.ndarray:
    """Return the (4, 4) target<-camera transform of an optical-frame camera at `eye` aimed at `target`."""
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    t = np.eye(4)
    t[:3, :3] = np.stack([x, y, z], axis=1)
    t[:3, 3] = eye
    return t


def _ray_box(o, d, lo, hi):
    """Entry distance of rays (o + t d) into an axis-aligned box; inf where missed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (np.asarray(lo) - o) * inv
        t2 = (np.asarray(hi) - o) * inv
    tmin = np.nanmax(np.minimum(t1, t2), axis=-1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=-1)
    hit = (tmax >= tmin) & (tmin > 0)
    return np.where(hit, tmin, np.inf)


def _ray_sphere(o, d, center, radius):
    oc = o - np.asarray(center)
    b = np.einsum("ij,ij->i", d, oc)
    c = np.einsum("ij,ij->i", oc, oc) - radius * radius
    a = np.einsum("ij,ij->i", d, d)
    disc = b * b - a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / a
    return np.where((disc >= 0) & (t > 0), t, np.inf)


def _ray_plane(o, d, axis, value, lo=None, hi=None):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (value - o[:, axis]) / d[:, axis]
    ok = np.isfinite(t) & (t > 0)
    if lo is not None:
        p = o + t[:, None] * d
        for k in range(3):
            if k != axis:
                ok &= (p[:, k] >= lo[k]) & (p[:, k] <= hi[k])
    return np.where(ok, t, np.inf)


def tabletop_cloud(
    width: int = 640,
    height: int = 480,
    seed: int = 0,
    invalid_fraction: float = 0.02,
    noise_m: float = 0.001,
    max_range_m: float = 3.0,
) -> SyntheticCloud:
    """Ray-cast a seeded organized tabletop cloud (see the module docstring)."""
    rng = np.random.default_rng(seed)
    fx = fy = 525.0 * width / 640.0
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    transform = look_at(eye=(-0.27, 0.0, 0.53), target=(0.8, 0.0, -0.35))
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    d_cam = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u, dtype=np.float64)], axis=-1).reshape(
        -1, 3
    )
    rot, eye = transform[:3, :3], transform[:3, 3]
    d = d_cam @ rot.T
    o = np.broadcast_to(eye, d.shape)

    surfaces = [
        (_ray_plane(o, d, 2, 0.0, lo=(0.25, -0.45, 0), hi=(0.95, 0.45, 0)), (150, 110, 70)),
        (_ray_plane(o, d, 2, -0.75), (90, 90, 90)),
        (_ray_plane(o, d, 0, 1.8), (220, 220, 210)),
        (_ray_box(o, d, (0.45, 0.05, 0.0), (0.55, 0.15, 0.10)), (200, 30, 30)),
        (_ray_box(o, d, (0.66, -0.21, 0.0), (0.74, -0.09, 0.16)), (30, 160, 40)),
        (_ray_sphere(o, d, (0.45, -0.2, 0.06), 0.06), (40, 60, 200)),
        (_ray_box(o, d, (0.78, 0.18, 0.0), (0.86, 0.30, 0.05)), (220, 200, 40)),
    ]
    ts = np.stack([s[0] for s in surfaces], axis=0)
    which = np.argmin(ts, axis=0)
    t = ts[which, np.arange(ts.shape[1])]
    colors = np.asarray([s[1] for s in surfaces], dtype=np.float64)[which]
    t = t + rng.normal(0.0, noise_m, size=t.shape) * np.minimum(t, 10.0) ** 2
    invalid = ~np.isfinite(t) | (t > max_range_m) | (rng.random(t.shape) < invalid_fraction)
    xyz = (d_cam * t[:, None]).astype(np.float32)
    xyz[invalid] = np.nan
    colors = np.clip(colors + rng.normal(0.0, 8.0, size=colors.shape), 0, 255).astype(np.uint8)
    return SyntheticCloud(
        xyz=xyz.reshape(height, width, 3),
        rgb=colors.reshape(height, width, 3),
        transform=transform,
    )
