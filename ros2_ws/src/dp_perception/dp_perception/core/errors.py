"""Errors raised for clouds that must be rejected; each carries a short machine-readable reason."""

from __future__ import annotations


class PerceptionError(ValueError):
    """A cloud that cannot be turned into a policy input; `reason` names the drop counter.

    Reasons used: ``empty``, ``too_large``, ``too_few_points``, ``no_rgb``, ``bad_shape``,
    ``no_xyz``, ``unsupported_field_type``, ``inconsistent_layout``, ``short_data`` (core), and
    ``unknown_frame``, ``tf_lookup_failed`` (node; which also counts ``internal_error``).
    """

    reason = "invalid"

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class CloudFormatError(PerceptionError):
    """The PointCloud2 layout (fields, steps, data length) is malformed or unsupported."""

    reason = "inconsistent_layout"
