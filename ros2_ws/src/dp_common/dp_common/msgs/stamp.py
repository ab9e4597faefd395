"""Message stamps (builtin_interfaces/Time) <-> integer nanoseconds (see ``dp_common.core.time``)."""

from __future__ import annotations

import numpy as np

from dp_common.core.time import NS_PER_S, ns_to_s, s_to_ns
from dp_common.msgs.types import ROS, MsgTypes

__all__ = ["NS_PER_S", "make_header", "now_ns", "ns_to_s", "ns_to_stamp", "s_to_ns", "stamp_to_ns"]


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


def now_ns(node) -> int:
    """The node clock's current time in integer ns (ROS time, or /clock with use_sim_time)."""
    return int(node.get_clock().now().nanoseconds)
