"""The image resize the image policy's training data and deployment share (numpy only).

:func:`fit_image` is what the training data (``dp_sim.make_dataset --image-shape``,
``dp_eval.bag_to_zarr --image-shape``) and the policy node apply, so both see the same pixels: a
center crop to the target aspect ratio, then an area-average resize (OpenCV's ``INTER_AREA`` when
shrinking).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=32)
def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: the overlap of every output pixel's footprint with each input pixel."""
    scale = n_in / n_out
    edges = np.arange(n_out + 1) * scale
    j = np.arange(n_in)[None, :]
    overlap = np.minimum(edges[1:, None], j + 1) - np.maximum(edges[:-1, None], j)
    m = np.clip(overlap, 0.0, None) / scale
    return (m / m.sum(axis=1, keepdims=True)).astype(np.float32)


def center_crop_to_aspect(rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Largest centered crop of ``rgb`` (H, W, C) with the aspect ratio of ``shape`` (h, w)."""
    h_in, w_in = rgb.shape[:2]
    h, w = shape
    if h_in * w > w_in * h:  # too tall
        ch = max(1, int(round(w_in * h / w)))
        top = (h_in - ch) // 2
        return rgb[top : top + ch]
    cw = max(1, int(round(h_in * w / h)))
    left = (w_in - cw) // 2
    return rgb[:, left : left + cw]


def fit_image(rgb: np.ndarray, shape: tuple[int, int] | list[int]) -> np.ndarray:
    """Center-crop (H, W, 3) uint8 ``rgb`` to the aspect ratio of ``shape`` = (h, w), then area-resize.

    Returns (h, w, 3) uint8 (the input itself, copied, when it already has that size).
    """
    h, w = int(shape[0]), int(shape[1])
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image. Got shape {rgb.shape}")
    if h <= 0 or w <= 0:
        raise ValueError(f"target shape must be positive (h, w). Got {shape}")
    if rgb.shape[:2] == (h, w):
        return np.array(rgb, dtype=np.uint8)
    crop = center_crop_to_aspect(rgb, (h, w))
    fy, fx = crop.shape[0] // h, crop.shape[1] // w
    if fy >= 1 and fx >= 1 and crop.shape[:2] == (fy * h, fx * w):  # integer factors: block means
        acc = np.zeros((h, w, 3), np.uint32)
        for i in range(fy):
            for j in range(fx):
                acc += crop[i::fy, j::fx]
        n = fy * fx
        return ((2 * acc + n) // (2 * n)).astype(np.uint8)  # mean, rounded half up
    ay = _area_matrix(crop.shape[0], h)
    ax = _area_matrix(crop.shape[1], w)
    x = crop.astype(np.float32)
    x = np.tensordot(ay, x, axes=(1, 0))  # (h, W, 3)
    x = np.tensordot(ax, x, axes=(1, 1)).transpose(1, 0, 2)  # (h, w, 3)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def fit_images(images: np.ndarray, shape: tuple[int, int] | list[int]) -> np.ndarray:
    """:func:`fit_image` over a stack (T, H, W, 3) uint8 -> (T, h, w, 3) uint8."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected (T, H, W, 3) images. Got shape {images.shape}")
    out = np.empty((len(images), int(shape[0]), int(shape[1]), 3), np.uint8)
    for i, im in enumerate(images):
        out[i] = fit_image(im, shape)
    return out
