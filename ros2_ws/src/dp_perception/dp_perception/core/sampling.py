"""Voxel grid and farthest point sampling on (M, 3) float32 arrays (ROS-free)."""

from __future__ import annotations

import logging
import threading

import numpy as np

logger = logging.getLogger(__name__)

# Dense voxel grids up to this many cells use an owner table (no sort); larger grids sort keys.
_DENSE_MAX_CELLS = 1 << 24
_scratch = threading.local()


def _owner_table(n_cells: int) -> np.ndarray:
    # Reused across calls: a fresh table costs a page fault per touched 4 KiB page, which was
    # most of the voxel time on a 300k-point cloud. Never initialized: only written cells are read.
    table = getattr(_scratch, "owner", None)
    if table is None or table.size < n_cells:
        table = np.empty(max(n_cells, 1 << 20), dtype=np.int32)
        _scratch.owner = table
    return table


def voxel_downsample(points: np.ndarray, voxel_size: float, origin=None) -> np.ndarray:
    """Indices of one point per occupied voxel (the last one in input order), ascending.

    Keeps real points rather than voxel centroids: the output lies on the sensed surfaces and
    no sort is needed. Cells are ``floor((p - origin) / voxel_size)``; `origin` defaults to the
    points' minimum (pass the crop box corner so the grid does not move between frames).

    Args:
        points: (M, 3) float32, finite. The transpose of a C-contiguous (3, M) array is fastest.
        voxel_size: edge length, m (> 0).
        origin: (3,) grid origin, m, <= every point; None = the points' minimum.

    Returns:
        (K,) int64 indices into `points`, K = number of occupied voxels.
    """
    return voxel_downsample_cols(np.ascontiguousarray(np.asarray(points).T), voxel_size, origin)


def voxel_downsample_cols(cols: np.ndarray, voxel_size: float, origin=None) -> np.ndarray:
    """voxel_downsample on column-major points: `cols` is (3, M) (rows x, y, z)."""
    m = cols.shape[1]
    if m == 0:
        return np.empty(0, dtype=np.int64)
    if origin is None:
        origin = [cols[k].min() for k in range(3)]
    inv = np.float32(1.0 / voxel_size)
    ijk = np.empty((3, m), dtype=np.int64)
    tmp = np.empty(m, dtype=np.float32)
    dims = []
    for k in range(3):
        # Row-wise 1-D operations: numpy's (M, 3) axis-0 reductions and broadcasts are ~10x slower.
        np.subtract(cols[k], np.float32(origin[k]), out=tmp)
        tmp *= inv
        np.maximum(tmp, 0, out=tmp)  # points on the box face may round below the origin
        ijk[k] = tmp
        dims.append(int(ijk[k].max()) + 1)
    n_cells = dims[0] * dims[1] * dims[2]
    if n_cells <= _DENSE_MAX_CELLS:
        key = ijk[0].astype(np.int32)
        key *= np.int32(dims[1])
        key += ijk[1].astype(np.int32)
        key *= np.int32(dims[2])
        key += ijk[2].astype(np.int32)
        owner = _owner_table(n_cells)
        arange = np.arange(m, dtype=np.int32)
        # Whichever write to a repeated cell wins (numpy writes in order for 1-D indices, so the
        # last), exactly one point per cell reads its own index back.
        owner[key] = arange
        return np.flatnonzero(owner[key] == arange)
    if n_cells < (1 << 62):
        key = (ijk[0] * dims[1] + ijk[1]) * dims[2] + ijk[2]
        _, first = np.unique(key[::-1], return_index=True)
    else:
        _, first = np.unique(ijk.T[::-1], axis=0, return_index=True)
    return np.sort(m - 1 - first)


def fps_fpsample(points: np.ndarray, n: int, start: int, h: int = 5) -> np.ndarray:
    """QuickFPS (fpsample.bucket_fps_kdline_sampling): (n,) indices, first = `start`."""
    import fpsample

    m = points.shape[0]
    h = max(1, min(int(h), int(np.log2(m))))
    return np.asarray(fpsample.bucket_fps_kdline_sampling(points, n, h, start_idx=int(start)))


def fps_exact(points: np.ndarray, n: int, start: int) -> np.ndarray:
    """Vanilla (exact) farthest point sampling via fpsample.fps_sampling: (n,) indices."""
    import fpsample

    return np.asarray(fpsample.fps_sampling(points, n, start_idx=int(start)))


def fps_torch(points: np.ndarray, n: int, start: int, device: str | None = None) -> np.ndarray:
    """Exact farthest point sampling in torch (CUDA when available, else CPU): (n,) indices.

    The loop keeps the running argmax on the device, so it never synchronizes per sample.
    """
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.inference_mode():
        p = torch.as_tensor(np.ascontiguousarray(points, dtype=np.float32), device=device)
        dist = torch.full((p.shape[0],), float("inf"), device=device)
        out = torch.empty(n, dtype=torch.long, device=device)
        far = torch.tensor(int(start), dtype=torch.long, device=device)
        for i in range(n):
            out[i] = far
            d = (p - p[far]).square_().sum(dim=1)
            torch.minimum(dist, d, out=dist)
            far = torch.argmax(dist)
        return out.cpu().numpy()


def torch_cuda_available() -> bool:
    """True when torch is importable and sees a CUDA device (imports torch only if installed)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def farthest_point_sample(
    points: np.ndarray, n: int, backend: str = "fpsample", h: int = 5, seed: int = 0
) -> np.ndarray:
    """Farthest point sampling of exactly `n` distinct indices from `points` (M >= n).

    The first sample is drawn from `seed`, so the result is deterministic for a seed.

    Args:
        points: (M, 3) float32, finite.
        n: samples (<= M).
        backend: fpsample | torch | exact ("auto" is resolved by the caller).
        h: fpsample KD-tree height.
        seed: seeds the start point.

    Returns:
        (n,) int64 indices into `points`, in sampling order.
    """
    m = points.shape[0]
    if n > m:
        raise ValueError(f"cannot sample {n} distinct points from {m}; expected n <= M")
    start = int(np.random.default_rng(seed).integers(m))
    if n == m:
        idx = np.arange(m)
        idx[[0, start]] = idx[[start, 0]]
        return idx
    points = np.ascontiguousarray(points, dtype=np.float32)
    if backend == "fpsample":
        idx = fps_exact(points, n, start) if m < 4 else fps_fpsample(points, n, start, h)
    elif backend == "exact":
        idx = fps_exact(points, n, start)
    elif backend == "torch":
        idx = fps_torch(points, n, start)
    else:
        raise ValueError(f"fps backend must be fpsample, torch or exact. Got {backend!r}")
    idx = np.asarray(idx, dtype=np.int64)
    _, first = np.unique(idx, return_index=True)
    if first.size < n:
        # Coincident points: once every remaining distance is 0, FPS repeats samples. Keep the
        # first occurrences in order and fill with unused indices (still n distinct indices).
        keep = idx[np.sort(first)]
        rest = np.setdiff1d(np.arange(m), keep, assume_unique=True)[: n - keep.size]
        idx = np.concatenate([keep, rest])
    return idx


def coverage_radius(points: np.ndarray, samples: np.ndarray) -> float:
    """Largest distance from any of `points` (M, 3) to its nearest of `samples` (S, 3), m."""
    from scipy.spatial import cKDTree

    if len(points) == 0:
        return 0.0
    d, _ = cKDTree(np.asarray(samples, dtype=np.float64)).query(points, k=1)
    return float(d.max())
