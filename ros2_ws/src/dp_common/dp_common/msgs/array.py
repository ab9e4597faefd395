"""std_msgs/Float64MultiArray (forward_position / gripper_controller commands): builder and reader."""

from __future__ import annotations

import numpy as np

from dp_common.msgs.types import ROS, MsgTypes, as_numpy

FLOAT64_ARRAY_TYPE = "std_msgs/msg/Float64MultiArray"


def build_float64_array(values, types: MsgTypes = ROS):
    """Values (any array-like, flattened) -> std_msgs/Float64MultiArray with an empty layout."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    layout = types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    return types[FLOAT64_ARRAY_TYPE](layout=layout, data=types.numeric_array(arr, np.float64))


def read_float64_array(msg) -> np.ndarray:
    """std_msgs/Float64MultiArray (rclpy or rosbags) -> (N,) float64 data (the layout is not interpreted)."""
    return as_numpy(msg.data, np.float64).reshape(-1)
