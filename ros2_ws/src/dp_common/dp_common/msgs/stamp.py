"""Stamps as integer nanoseconds: the one representation dp stores and compares.

Float seconds lose ~0.2 us at today's epoch times, so a chunk stamped through floats no longer
matches its cloud exactly. Convert to float seconds only for arithmetic on durations.
"""

from __future__ import annotations

import math

import numpy as np

from dp_common.msgs.types import ROS, MsgTypes

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time (rclpy or rosbags; anything with sec/nanosec) -> integer ns."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int, types: MsgTypes = ROS):
    """Integer ns (>= 0) -> builtin_interfaces/Time of `types`' kind."""
    if isinstance(ns, bool) or not isinstance(ns, int | np.integer):
        raise ValueError(f"stamp must be integer nanoseconds. Got {ns!r} ({type(ns).__name__})")
    ns = int(ns)
    if ns < 0:
        raise ValueError(f"stamp must be >= 0 ns. Got {ns}")
    return types["builtin_interfaces/msg/Time"](sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


def make_header(ns: int, frame_id: str = "", types: MsgTypes = ROS):
    """std_msgs/Header with stamp `ns` (integer ns) and `frame_id`."""
    return types["std_msgs/msg/Header"](stamp=ns_to_stamp(ns, types), frame_id=frame_id)


def s_to_ns(t_s: float) -> int:
    """Float seconds -> integer ns (nearest), for times computed as durations."""
    if not math.isfinite(t_s):
        raise ValueError(f"time must be finite. Got {t_s}")
    return int(round(t_s * NS_PER_S))


def ns_to_s(ns: int) -> float:
    """Integer ns -> float seconds (for duration arithmetic only)."""
    return ns * 1e-9


def now_ns(node) -> int:
    """The node clock's current time in integer ns (ROS time, or /clock with use_sim_time)."""
    return int(node.get_clock().now().nanoseconds)
