"""sensor_msgs/Image: the one builder (rgb8 / bgr8) and the one reader (-> RGB uint8).

:func:`read_image` takes any object with ``height``, ``width``, ``encoding``, ``step``, ``data``
and ``is_bigendian`` (an rclpy ``sensor_msgs/msg/Image`` or a rosbags message).

- Supported encodings: ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8`` (8 bits per channel, so
  ``is_bigendian`` does not matter). Rows may be padded (``step >= width * channels``).
- ``cv_bridge`` converts when it imports (robot / Docker image); otherwise numpy does (vectorized,
  no per-pixel loops). Both paths check the message the same way first and return the same array.
- Anything else -- another encoding, a ``step`` shorter than a row, ``data`` not ``height * step``
  bytes -- raises :class:`ImageConversionError` (a ValueError) saying what was wrong and what was
  expected.
"""

from __future__ import annotations

import numpy as np

from dp_common.msgs.stamp import make_header
from dp_common.msgs.types import ROS, MsgTypes

IMAGE_TYPE = "sensor_msgs/msg/Image"

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


def read_image(msg, use_cv_bridge: bool | None = None) -> np.ndarray:
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


def build_image(stamp_ns: int, frame_id: str, rgb: np.ndarray, encoding: str = "rgb8", types: MsgTypes = ROS):
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image stamped `stamp_ns` (``rgb8``, or ``bgr8`` reordered).

    Raises:
        ValueError: when `rgb` is not (H, W, 3) or `encoding` is neither rgb8 nor bgr8.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image. Got shape {rgb.shape}")
    if encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"image encoding must be rgb8 or bgr8. Got {encoding!r}")
    pixels = np.ascontiguousarray(rgb if encoding == "rgb8" else rgb[:, :, ::-1], dtype=np.uint8)
    h, w = pixels.shape[:2]
    return types[IMAGE_TYPE](
        header=make_header(stamp_ns, frame_id, types),
        height=int(h),
        width=int(w),
        encoding=encoding,
        is_bigendian=0,
        step=int(w * 3),
        data=types.uint8_array(pixels),
    )
