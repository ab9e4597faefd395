"""sensor_msgs/Image -> RGB conversion (every supported encoding, every rejection) and fit_image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dp_policy.image_conversion import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    fit_image,
    fit_images,
    image_msg_to_rgb,
)

sensor_msgs = pytest.importorskip("sensor_msgs.msg")

PKG = Path(__file__).resolve().parents[1]


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
    out = image_msg_to_rgb(_msg(np.ascontiguousarray(pixels), encoding, pad), use_cv_bridge=False)
    expected = np.repeat(rgb[:, :, :1], 3, axis=2) if encoding == "mono8" else rgb
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, expected)


def test_default_path_matches_numpy_path():
    msg = _msg(_rgb(seed=3)[:, :, ::-1].copy(), "bgr8", pad=1)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), image_msg_to_rgb(msg, use_cv_bridge=False))


def test_message_like_object_with_bytes_data():
    class Msg:
        height, width, encoding, step, is_bigendian = 2, 2, "rgb8", 6, 0
        data = bytes(range(12))

    np.testing.assert_array_equal(image_msg_to_rgb(Msg()).reshape(-1), np.arange(12))


@pytest.mark.parametrize("encoding", ["16UC1", "rgb16", "bayer_rggb8", "yuv422", "32FC1", ""])
def test_unknown_encoding_is_rejected(encoding):
    msg = _msg(_rgb(), "rgb8")
    msg.encoding = encoding
    with pytest.raises(ImageConversionError, match="unsupported image encoding.*expected one of"):
        image_msg_to_rgb(msg)


def test_wrong_step_is_rejected():
    msg = _msg(_rgb(), "rgb8")
    msg.step = 7 * 3 - 1
    with pytest.raises(ImageConversionError, match=r"step 20 .*expected step >= width \* 3 = 21"):
        image_msg_to_rgb(msg)


def test_wrong_data_size_is_rejected():
    msg = _msg(np.zeros((5, 7, 4), np.uint8), "rgba8")
    msg.data = bytes(len(msg.data) - 4)
    with pytest.raises(ImageConversionError, match=r"136 bytes; expected height \* step = 5 \* 28 = 140"):
        image_msg_to_rgb(msg)
    msg = _msg(_rgb()[:, :, :1].copy(), "mono8")
    msg.step = 8  # padded rows declared but data not padded
    with pytest.raises(ImageConversionError, match="expected height"):
        image_msg_to_rgb(msg)


def test_empty_image_is_rejected():
    msg = _msg(_rgb(), "rgb8")
    msg.height, msg.data = 0, b""
    with pytest.raises(ImageConversionError, match="at least 1x1"):
        image_msg_to_rgb(msg)
    assert issubclass(ImageConversionError, ValueError)


def test_fit_image_crops_to_aspect_then_area_resizes():
    img = np.zeros((120, 160, 3), np.uint8)
    img[:, :20] = 255  # left band: cropped away for a square target (160 -> 120 columns)
    img[40:80, 60:100] = 100
    out = fit_image(img, (60, 60))
    assert out.shape == (60, 60, 3) and out.dtype == np.uint8
    assert out.max() == 100  # the white band is outside the centered 120x120 crop
    assert np.all(out[20:40, 20:40] == 100)  # the gray block, scaled by 1/2 around the center
    # exact 2x block averaging on an aspect-preserving downscale
    src = np.random.default_rng(1).integers(0, 256, (8, 10, 3)).astype(np.uint8)
    ref = src.reshape(4, 2, 5, 2, 3).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_array_equal(fit_image(src, (4, 5)), np.floor(ref + 0.5).astype(np.uint8))
    # non-integer factors: area weights (a 3 -> 2 row shrink mixes the middle row half and half)
    col = np.array([[0], [100], [200]], np.uint8)[:, :, None].repeat(3, axis=1).repeat(3, axis=2)
    np.testing.assert_array_equal(fit_image(col, (2, 2))[:, 0, 0], [33, 167])
    np.testing.assert_array_equal(fit_image(src, (8, 10)), src)
    stack = fit_images(np.stack([src, src]), (4, 5))
    assert stack.shape == (2, 4, 5, 3)
    with pytest.raises(ValueError, match="RGB"):
        fit_image(src[:, :, 0], (4, 5))


def test_conversion_module_does_not_import_rclpy():
    code = "import sys, dp_policy.image_conversion; assert 'rclpy' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(PKG), timeout=60)
    assert r.returncode == 0, r.stderr
