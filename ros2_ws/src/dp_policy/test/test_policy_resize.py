"""fit_image: the resize training data and policy_node share (dp_policy.core.resize)."""

from __future__ import annotations

import numpy as np
import pytest

from dp_policy.core.resize import fit_image, fit_images


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
