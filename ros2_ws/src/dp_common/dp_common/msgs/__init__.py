"""The one message layer of dp: numpy <-> ROS messages, for rclpy and rosbags messages alike.

Every message type the pipeline exchanges has one builder and one reader here. Builders take a
``MsgTypes`` (``ROS`` for rclpy's generated classes, ``bag_types(typestore)`` for a rosbags
typestore) so that a node publishing over DDS and a tool writing a bag build the same message; readers
are duck-typed and accept either kind. Stamps are integer nanoseconds (``stamp.py``).

Modules: ``chunk`` (dp_msgs/ActionChunk), ``cloud`` (sensor_msgs/PointCloud2, over the ROS-free
codec ``dp_common.core.pointcloud``), ``image`` (sensor_msgs/Image), ``joint_state``
(sensor_msgs/JointState), ``transform`` (geometry_msgs/TransformStamped, tf2_msgs/TFMessage; the
quaternion math is ``dp_common.core.transforms``), ``array`` (std_msgs/Float64MultiArray commands),
``markers`` (visualization_msgs/Marker(Array) for rviz, rclpy only), ``stamp`` and ``types``. Bags:
``dp_common.bags``.

This package is message handling, not core: it may import message packages (lazily, through
``MsgTypes``), never rclpy itself.
"""

from dp_common.msgs.stamp import NS_PER_S, make_header, now_ns, ns_to_s, ns_to_stamp, s_to_ns, stamp_to_ns
from dp_common.msgs.types import ROS, MsgTypes, bag_types

__all__ = [
    "NS_PER_S",
    "ROS",
    "MsgTypes",
    "bag_types",
    "make_header",
    "now_ns",
    "ns_to_s",
    "ns_to_stamp",
    "s_to_ns",
    "stamp_to_ns",
]
