"""Cloud -> fixed-size policy input: transform, crop, voxel, FPS (ROS-free, numpy).

Pipeline of `preprocess_cloud` (the same for deployment and for training data)::

    N points (camera frame, NaN allowed)
      -> transform to the target frame + axis-aligned crop   (one pass; NaN/Inf fail the test)
      -> optional dominant-plane removal                     (open3d RANSAC on a subset)
      -> reject if fewer than min_points remain
      -> voxel grid: one real point per occupied voxel       (skipped if it would leave < num_points)
      -> farthest point sampling to exactly num_points       (or cyclic padding if M < num_points)
"""

from __future__ import annotations

import functools
import logging
import time

import numpy as np

from dp_common.core.pointcloud import unpack_rgb

from .config import PerceptionConfig
from .errors import PerceptionError
from .sampling import farthest_point_sample, voxel_downsample_cols

logger = logging.getLogger(__name__)

_PLANE_FIT_MAX_POINTS = 20_000
_CHUNK = 32_768  # points per transform/crop chunk: 3 x 128 KiB float32 rows fit in L2


def transform_crop(xyz: np.ndarray, transform, crop_min, crop_max) -> tuple[np.ndarray, np.ndarray]:
    """Transforms points and keeps those inside the box, in one vectorized pass.

    Points with NaN/Inf coordinates never pass the box test, so no separate finiteness pass is
    needed. The test runs on the rotated points against the box shifted by -t, so the
    translation is only added to the survivors (exact up to float32 rounding).

    Args:
        xyz: (N, 3) float32 or float64, any strides (e.g. a view of message bytes).
        transform: (4, 4) target<-source transform, or None for identity.
        crop_min, crop_max: (3,) box corners in the target frame, m (inclusive).

    Returns:
        idx: (M,) int64 indices of the kept points into `xyz`.
        points: (M, 3) float32 kept points in the target frame (a transposed (3, M) array).
    """
    mask, cols = transform_crop_cols(xyz, transform, crop_min, crop_max)
    return np.flatnonzero(mask), cols.T


def transform_crop_cols(xyz: np.ndarray, transform, crop_min, crop_max, chunk: int = _CHUNK):
    """transform_crop returning the (N,) bool mask and the kept points as C-contiguous (3, M)."""
    n = xyz.shape[0]
    lo = np.asarray(crop_min, dtype=np.float64)
    hi = np.asarray(crop_max, dtype=np.float64)
    if transform is None:
        rot, trans = None, np.zeros(3)
    else:
        transform = np.asarray(transform, dtype=np.float64)
        rot, trans = transform[:3, :3].astype(np.float32), transform[:3, 3]
    lo_s = (lo - trans).astype(np.float32)
    hi_s = (hi - trans).astype(np.float32)
    size = min(chunk, max(n, 1))
    # Work in cache-sized chunks (the ~15 passes below then stay in L2: ~30% less CPU than whole-
    # array passes), on a column-major copy (contiguous rows; numpy's loops over a small inner
    # dimension of (N, 3) arrays are slow).
    x = np.empty((3, size), dtype=np.float32)
    w = x if rot is None else np.empty((3, size), dtype=np.float32)
    tmp = np.empty(size, dtype=np.float32)
    part = np.empty(size, dtype=bool)
    mask = np.empty(n, dtype=bool)
    kept = []
    for start in range(0, n, size):
        stop = min(n, start + size)
        k = stop - start
        xc, wc, tc, pc = x[:, :k], w[:, :k], tmp[:k], part[:k]
        np.copyto(xc.T, xyz[start:stop], casting="same_kind")
        if rot is not None:
            for a in range(3):
                np.multiply(xc[0], rot[a, 0], out=wc[a])
                np.multiply(xc[1], rot[a, 1], out=tc)
                wc[a] += tc
                np.multiply(xc[2], rot[a, 2], out=tc)
                wc[a] += tc
        mc = mask[start:stop]
        np.greater_equal(wc[0], lo_s[0], out=mc)
        for a in range(3):
            if a:
                mc &= np.greater_equal(wc[a], lo_s[a], out=pc)
            mc &= np.less_equal(wc[a], hi_s[a], out=pc)
        kept.append(np.compress(mc, wc, axis=1))
    cols = np.concatenate(kept, axis=1) if kept else np.empty((3, 0), dtype=np.float32)
    for a in range(3):
        cols[a] += np.float32(trans[a])
    return mask, cols


def plane_inliers(points: np.ndarray, distance: float, iterations: int, seed: int = 0) -> np.ndarray:
    """Boolean (M,) mask of the points within `distance` of the dominant plane (open3d RANSAC).

    The plane is fitted on at most 20k points drawn with `seed` (open3d's RANSAC is seeded
    too), then every point is tested against it.
    """
    import open3d as o3d

    m = points.shape[0]
    if m < 3:
        return np.zeros(m, dtype=bool)
    rng = np.random.default_rng(seed)
    sub = points if m <= _PLANE_FIT_MAX_POINTS else points[rng.integers(m, size=_PLANE_FIT_MAX_POINTS)]
    o3d.utility.random.seed(int(seed))
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(sub.astype(np.float64)))
    model, _ = cloud.segment_plane(
        distance_threshold=float(distance), ransac_n=3, num_iterations=int(iterations)
    )
    a, b, c, d = (float(v) for v in model)
    norm = np.sqrt(a * a + b * b + c * c)
    if not np.isfinite(norm) or norm < 1e-9:
        return np.zeros(m, dtype=bool)
    dist = np.abs(points @ np.asarray([a, b, c], dtype=np.float32) + np.float32(d)) / norm
    return dist <= distance


@functools.cache
def resolve_fps_backend(backend: str) -> str:
    """Maps "auto" to a concrete backend: fpsample (QuickFPS) when installed, else torch.

    QuickFPS on the few thousand voxel points takes a few ms on a CPU; a per-sample torch loop
    is launch-bound on CUDA (several kernels per sample), so auto does not pick it.
    """
    if backend != "auto":
        return backend
    import importlib.util

    return "fpsample" if importlib.util.find_spec("fpsample") is not None else "torch"


def preprocess_cloud(
    xyz: np.ndarray,
    rgb: np.ndarray | None,
    cfg: PerceptionConfig,
    transform: np.ndarray | None = None,
    seed: int = 0,
    timings: dict | None = None,
) -> np.ndarray:
    """Turns a raw cloud into exactly `cfg.num_points` points in `cfg.target_frame`.

    Fewer than `num_points` valid points (but at least `min_points`) are padded by repeating
    the valid points cyclically: output row i is valid point i mod M. Deterministic for a seed.

    Args:
        xyz: (N, 3) or organized (H, W, 3) points in the source frame, m; NaN/Inf allowed. May
            be a strided read-only view (e.g. of message bytes); it is never written.
        rgb: None, (N, 3) float colors in [0, 1] (or uint8 0..255), or (N,) uint32 packed
            0x00RRGGBB.
        cfg: the perception configuration.
        transform: (4, 4) target<-source transform, or None when already in the target frame.
        seed: seeds the FPS start point and the plane fit.
        timings: optional dict that receives per-stage wall times in seconds.

    Returns:
        (num_points, 3) float32 xyz, or (num_points, 6) xyz + rgb in [0, 1] when `cfg.use_rgb`.

    Raises:
        PerceptionError (ValueError) with a `reason`: empty, too_large, too_few_points, no_rgb,
        bad_shape.
    """
    t0 = time.perf_counter()
    xyz = np.asarray(xyz)
    if xyz.ndim == 3 and xyz.shape[-1] == 3:
        xyz = xyz.reshape(-1, 3)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or xyz.dtype.kind != "f":
        raise PerceptionError(
            f"xyz must be a float (N, 3) array; got {xyz.dtype} {xyz.shape}", reason="bad_shape"
        )
    n = xyz.shape[0]
    if n == 0:
        raise PerceptionError("cloud has no points; expected at least min_points", reason="empty")
    if n > cfg.max_input_points:
        raise PerceptionError(
            f"cloud has {n} points; expected at most max_input_points={cfg.max_input_points}",
            reason="too_large",
        )
    if cfg.use_rgb:
        if rgb is None:
            raise PerceptionError("use_rgb is set but the cloud has no color", reason="no_rgb")
        rgb = np.asarray(rgb)
        if rgb.ndim == 3:
            rgb = rgb.reshape(-1, 3)
        if rgb.shape not in ((n, 3), (n,)):
            raise PerceptionError(
                f"rgb must be (N, 3) or packed (N,) with N={n}; got {rgb.shape}", reason="bad_shape"
            )
    if transform is not None and np.shape(transform) != (4, 4):
        raise ValueError(f"transform must be a (4, 4) matrix; got shape {np.shape(transform)}")

    mask, cols = transform_crop_cols(xyz, transform, cfg.crop_min, cfg.crop_max)
    t1 = time.perf_counter()
    if cfg.remove_plane and cols.shape[1] >= 3:
        keep = ~plane_inliers(cols.T, cfg.plane_distance, cfg.plane_iterations, seed)
        idx = np.flatnonzero(mask)[keep]
        cols = np.ascontiguousarray(cols[:, keep])
    else:
        idx = None  # computed only if colors are needed
    t2 = time.perf_counter()

    m = cols.shape[1]
    if m < cfg.min_points:
        raise PerceptionError(
            f"only {m} valid points of {n} inside the crop box {cfg.crop_min}..{cfg.crop_max} "
            f"in {cfg.target_frame!r}; expected at least min_points={cfg.min_points}",
            reason="too_few_points",
        )
    k = cfg.num_points
    candidates = None
    if cfg.voxel_size > 0 and m > k:
        vox = voxel_downsample_cols(cols, cfg.voxel_size, origin=cfg.crop_min)
        if vox.size >= k:  # a coarse grid must not cost distinct points
            candidates = vox
    t3 = time.perf_counter()
    if m >= k:
        cand = cols if candidates is None else cols[:, candidates]
        sel = farthest_point_sample(
            np.ascontiguousarray(cand.T),
            k,
            backend=resolve_fps_backend(cfg.fps_backend),
            h=cfg.fps_h,
            seed=seed,
        )
        if candidates is not None:
            sel = candidates[sel]
    else:
        sel = np.resize(np.arange(m), k)
    t4 = time.perf_counter()

    if cfg.use_rgb:
        if idx is None:
            idx = np.flatnonzero(mask)
        colors = rgb[idx[sel]]
        if colors.ndim == 1:
            colors = unpack_rgb(colors)
        elif colors.dtype == np.uint8:
            colors = colors * np.float32(1.0 / 255.0)
        out = np.empty((k, 6), dtype=np.float32)
        out[:, :3] = cols[:, sel].T
        out[:, 3:] = colors
    else:
        out = np.ascontiguousarray(cols[:, sel].T)
    t5 = time.perf_counter()
    if timings is not None:
        timings.update(crop=t1 - t0, plane=t2 - t1, voxel=t3 - t2, fps=t4 - t3, gather=t5 - t4, total=t5 - t0)
    return out


def cloud_preprocessor(perception: dict | None = None):
    """The deployment preprocessing as a dataset tool calls it: ``(fn, cfg_dict)``.

    ``fn(xyz, rgb, transform, seed)`` runs :func:`preprocess_cloud` with
    ``PerceptionConfig(**perception)`` (rgb is dropped unless ``use_rgb``; ``fn.needs_rgb`` says
    so); ``cfg_dict`` is the full config a dataset records.

    Raises:
        ValueError / TypeError: for an invalid or unknown PerceptionConfig field.
    """
    cfg = PerceptionConfig(**(perception or {}))

    def fn(xyz, rgb, transform, seed):
        return preprocess_cloud(xyz, rgb if cfg.use_rgb else None, cfg, transform=transform, seed=seed)

    fn.needs_rgb = cfg.use_rgb
    return fn, cfg.to_dict()
