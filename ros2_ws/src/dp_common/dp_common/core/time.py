"""Time as integer nanoseconds (ROS-free): the one representation dp stores and compares.

Float seconds lose ~0.2 us at today's epoch times, so a chunk stamped through floats no longer
matches its cloud exactly. Convert to float seconds only for arithmetic on durations.
"""

from __future__ import annotations

import math

NS_PER_S = 1_000_000_000


def s_to_ns(t_s: float) -> int:
    """Float seconds -> integer ns (nearest), for times computed as durations."""
    if not math.isfinite(t_s):
        raise ValueError(f"time must be finite. Got {t_s}")
    return int(round(t_s * NS_PER_S))


def ns_to_s(ns: int) -> float:
    """Integer ns -> float seconds (for duration arithmetic only)."""
    return ns * 1e-9
