"""sensor_msgs/Image -> numpy RGB, and the resize the image policy's data and deployment share.

ROS-free: :func:`image_msg_to_rgb` takes any object with ``height``, ``width``, ``encoding``,
``step``, ``data`` and ``is_bigendian`` (a ``sensor_msgs/msg/Image`` or a rosbags message).

- Supported encodings: ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8`` (8 bits per channel, so
  ``is_bigendian`` does not matter). Rows may be padded (``step >= width * channels``).
- ``cv_bridge`` converts when it imports (robot / Docker image); otherwise numpy does (vectorized,
  no per-pixel loops). Both paths check the message the same way first and return the same array.
- Anything else -- another encoding, a ``step`` shorter than a row, ``data`` not ``height * step``
  bytes -- raises :class:`ImageConversionError` (a ValueError) saying what was wrong and what was
  expected.

:func:`fit_image` is the resize the training data (``dp_sim.make_dataset --image-shape``,
``dp_sim.bag_to_zarr --image-shape``) and the policy node apply, so both see the same pixels: a
center crop to the target aspect ratio, then an area-average resize (OpenCV's ``INTER_AREA`` when
shrinking).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: encoding -> (channels, channel indices that give R, G, B)
ENCODINGS: dict[str, tuple[int, tuple[int, int, int]]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
SUPPORTED_ENCODINGS = tuple(ENCODINGS)


class ImageConversionError(ValueError):
    """An image message that cannot be converted (encoding, step or data size)."""


def check_image_msg(msg) -> tuple[int, int, int, int, str]:
    """Validate the layout fields of an image message -> (height, width, channels, step, encoding).

    Raises:
        ImageConversionError: unsupported encoding, zero size, ``step`` < ``width * channels``, or
            ``len(data) != height * step``.
    """
    encoding = str(msg.encoding)
    key = encoding.strip().lower()
    if key not in ENCODINGS:
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r}; expected one of {list(SUPPORTED_ENCODINGS)}"
        )
    channels = ENCODINGS[key][0]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageConversionError(f"image must be at least 1x1 pixels. Got height={h} width={w}")
    if step < w * channels:
        raise ImageConversionError(
            f"step {step} is shorter than one row of a {w}-pixel {key} image; expected step >= "
            f"width * {channels} = {w * channels} bytes"
        )
    n = len(msg.data)
    if n != h * step:
        raise ImageConversionError(
            f"image data has {n} bytes; expected height * step = {h} * {step} = {h * step} for a "
            f"{w}x{h} {key} image"
        )
    return h, w, channels, step, key


def _data_as_uint8(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype.itemsize == 1 else data.astype(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)  # bytes, bytearray, array.array('B'), memoryview
    except TypeError:
        return np.asarray(data, dtype=np.uint8)  # a list of ints


def _cv_bridge():
    try:
        from cv_bridge import CvBridge
    except Exception:  # not installed, or PyPI's ROS 1 build that breaks on numpy 2
        return None
    return CvBridge()


def image_msg_to_rgb(msg, use_cv_bridge: bool | None = None) -> np.ndarray:
    """Convert an image message to an (H, W, 3) uint8 RGB array (a fresh, contiguous copy).

    Args:
        msg: ``sensor_msgs/msg/Image`` (or an object with the same fields).
        use_cv_bridge: None = use cv_bridge when it imports; False = always numpy.
    Raises:
        ImageConversionError: see :func:`check_image_msg`.
    """
    h, w, channels, step, key = check_image_msg(msg)
    if use_cv_bridge is not False:
        bridge = _cv_bridge()
        if bridge is not None:
            rgb = bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")
            return np.ascontiguousarray(rgb, dtype=np.uint8).reshape(h, w, 3)
    buf = _data_as_uint8(msg.data).reshape(h, step)[:, : w * channels].reshape(h, w, channels)
    order = ENCODINGS[key][1]
    if key == "rgb8":
        return np.ascontiguousarray(buf)
    if key == "mono8":
        return np.ascontiguousarray(np.broadcast_to(buf, (h, w, 3)))
    return np.ascontiguousarray(buf[:, :, list(order)])


# ----------------------------------------------------------------------------- resizing


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
