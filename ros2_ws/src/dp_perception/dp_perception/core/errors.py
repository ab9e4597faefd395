"""Errors raised for clouds that must be rejected; each carries a short machine-readable reason.

Perception's rejections are the cloud codec's error class (``dp_common.core.pointcloud``), so one
``except PerceptionError`` catches a malformed PointCloud2 layout and a cloud preprocessing refuses.
Reasons used: ``empty``, ``too_large``, ``too_few_points``, ``no_rgb``, ``bad_shape``, ``no_xyz``,
``unsupported_field_type``, ``inconsistent_layout``, ``short_data`` (core), and ``unknown_frame``,
``tf_lookup_failed`` (node; which also counts ``internal_error``).
"""

from __future__ import annotations

from dp_common.core.pointcloud import CloudError as PerceptionError
from dp_common.core.pointcloud import CloudFormatError

__all__ = ["CloudFormatError", "PerceptionError"]
