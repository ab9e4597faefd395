"""Conversions between builtin_interfaces/Time and float seconds."""

from __future__ import annotations

import math

from builtin_interfaces.msg import Time


def stamp_to_sec(stamp) -> float:
    """Returns a builtin_interfaces/Time (or anything with sec/nanosec) as float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def sec_to_stamp(t: float) -> Time:
    """Returns float seconds as builtin_interfaces/Time (nanosecond rounding, t >= 0)."""
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"time must be finite and >= 0 s. Got {t}")
    ns = int(round(t * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def now_sec(node) -> float:
    """Returns the node clock's current time in seconds (ROS time or /clock with use_sim_time)."""
    return node.get_clock().now().nanoseconds * 1e-9
