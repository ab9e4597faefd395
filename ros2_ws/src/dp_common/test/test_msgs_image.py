"""sensor_msgs/Image -> RGB (dp_common.msgs.image.read_image): every supported encoding, every rejection."""

from __future__ import annotations

import numpy as np
import pytest

from dp_common.msgs.image import SUPPORTED_ENCODINGS, ImageConversionError, read_image

sensor_msgs = pytest.importorskip("sensor_msgs.msg")


def _rgb(h: int = 5, w: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _msg(pixels: np.ndarray, encoding: str, pad: int = 0) -> sensor_msgs.Image:
    """Image message of (H, W, C) ``pixels`` with ``pad`` bytes of row padding."""
    h, w, c = pixels.shape
    rows = pixels.reshape(h, w * c)
    if pad:
        rows = np.concatenate([rows, np.full((h, pad), 77, np.uint8)], axis=1)
    msg = sensor_msgs.Image()
    msg.height, msg.width, msg.encoding, msg.is_bigendian = h, w, encoding, 0
    msg.step = w * c + pad
    msg.data = rows.tobytes()
    return msg


@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_each_supported_encoding_converts_to_rgb(encoding, pad):
    rgb = _rgb()
    alpha = np.full(rgb.shape[:2] + (1,), 200, np.uint8)
    pixels = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([rgb[:, :, ::-1], alpha], axis=2),
        "mono8": rgb[:, :, :1],
    }[encoding]
    out = read_image(_msg(np.ascontiguousarray(pixels), encoding, pad), use_cv_bridge=False)
    expected = np.repeat(rgb[:, :, :1], 3, axis=2) if encoding == "mono8" else rgb
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, expected)


def test_default_path_matches_numpy_path():
    msg = _msg(_rgb(seed=3)[:, :, ::-1].copy(), "bgr8", pad=1)
    np.testing.assert_array_equal(read_image(msg), read_image(msg, use_cv_bridge=False))


def test_message_like_object_with_bytes_data():
    class Msg:
        height, width, encoding, step, is_bigendian = 2, 2, "rgb8", 6, 0
        data = bytes(range(12))

    np.testing.assert_array_equal(read_image(Msg()).reshape(-1), np.arange(12))


@pytest.mark.parametrize("encoding", ["16UC1", "rgb16", "bayer_rggb8", "yuv422", "32FC1", ""])
def test_unknown_encoding_is_rejected(encoding):
    msg = _msg(_rgb(), "rgb8")
    msg.encoding = encoding
    with pytest.raises(ImageConversionError, match="unsupported image encoding.*expected one of"):
        read_image(msg)


def test_wrong_step_is_rejected():
    msg = _msg(_rgb(), "rgb8")
    msg.step = 7 * 3 - 1
    with pytest.raises(ImageConversionError, match=r"step 20 .*expected step >= width \* 3 = 21"):
        read_image(msg)


def test_wrong_data_size_is_rejected():
    msg = _msg(np.zeros((5, 7, 4), np.uint8), "rgba8")
    msg.data = bytes(len(msg.data) - 4)
    with pytest.raises(ImageConversionError, match=r"136 bytes; expected height \* step = 5 \* 28 = 140"):
        read_image(msg)
    msg = _msg(_rgb()[:, :, :1].copy(), "mono8")
    msg.step = 8  # padded rows declared but data not padded
    with pytest.raises(ImageConversionError, match="expected height"):
        read_image(msg)


def test_empty_image_is_rejected():
    msg = _msg(_rgb(), "rgb8")
    msg.height, msg.data = 0, b""
    with pytest.raises(ImageConversionError, match="at least 1x1"):
        read_image(msg)
    assert issubclass(ImageConversionError, ValueError)
