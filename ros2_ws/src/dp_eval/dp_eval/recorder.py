"""bag_recorder: records the pipeline's outputs into a rosbag2 (mcap or sqlite3) with `rosbags`.

Subscribes with ``raw=True`` (messages arrive as CDR bytes, nothing is deserialized) and writes
them with the rosbags Writer, stamped with the node clock at reception (bag time; /clock under
use_sim_time), like `ros2 bag record`. Topics whose type is not known in advance are subscribed
as soon as they appear in the graph.

    ros2 run dp_eval bag_recorder --ros-args -p output:=eval/out_bag -p storage:=sqlite3
"""

from __future__ import annotations

from dataclasses import dataclass

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from dp_common.bags import STORAGES, BagWriter
from dp_common.core.validation import one_of, param
from dp_common.msgs import ROS
from dp_common.params import declare_config
from dp_common.qos import record_qos, reliable_qos

#: Types of the pipeline's output topics (interface contract in DESIGN.md).
KNOWN_TYPES = {
    "dp/points": "sensor_msgs/msg/PointCloud2",
    "dp/action_chunk": "dp_msgs/msg/ActionChunk",
    "dp/markers": "visualization_msgs/msg/MarkerArray",
    "dp/control_markers": "visualization_msgs/msg/MarkerArray",
    "joint_trajectory_controller/joint_trajectory": "trajectory_msgs/msg/JointTrajectory",
    "forward_position_controller/commands": "std_msgs/msg/Float64MultiArray",
    "gripper_controller/commands": "std_msgs/msg/Float64MultiArray",
    "diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
    "joint_states": "sensor_msgs/msg/JointState",
    "camera/points": "sensor_msgs/msg/PointCloud2",
}

DEFAULT_TOPICS = [
    "dp/points",
    "dp/action_chunk",
    "joint_trajectory_controller/joint_trajectory",
    "forward_position_controller/commands",
    "gripper_controller/commands",
    "/diagnostics",
]


@dataclass
class RecorderConfig:
    """Parameters of bag_recorder."""

    output: str = param("Output bag directory (must not exist).", default="")
    storage: str = param("mcap | sqlite3.", default="mcap")
    topics: list[str] = param("Topics to record.", default_factory=lambda: list(DEFAULT_TOPICS))
    reliable: bool = param(
        "Subscribe reliable (only reliable publishers match) instead of best effort.", default=False
    )

    def __post_init__(self) -> None:
        one_of(self, "storage", STORAGES)
        self.topics = [t for t in self.topics if t]
        if not self.topics:
            raise ValueError("topics must name at least one topic. Got []")


class BagRecorder:
    """Records `topics` seen by `node` into a new bag (usable in-process).

    Args:
        node: the node that owns the subscriptions (its clock stamps the messages).
        output: output bag directory.
        topics: topic names (relative names resolve in the node's namespace).
        storage: 'mcap' or 'sqlite3'.
        types: {topic: type name} for topics not in KNOWN_TYPES (else discovered from the graph).
        qos: subscription QoS (default :func:`record_qos`).
    """

    def __init__(self, node: Node, output, topics, storage: str = "mcap", types=None, qos=None):
        self.node = node
        self.writer = BagWriter(output, storage=storage).open()
        self.qos = qos or record_qos()
        self.types = {**KNOWN_TYPES, **(types or {})}
        self.counts: dict[str, int] = {}
        self._subs = {}
        self._pending = []
        self._closed = False
        for topic in topics:
            fq = node.resolve_topic_name(topic)
            msgtype = self.types.get(topic.lstrip("/")) or self.types.get(fq.lstrip("/"))
            if msgtype:
                self._subscribe(fq, msgtype)
            else:
                self._pending.append(fq)
        self._timer = node.create_timer(0.5, self._discover) if self._pending else None

    def _subscribe(self, topic: str, msgtype: str) -> None:
        cls = ROS[msgtype]
        self.writer.add_topic(topic, msgtype)
        self.counts[topic] = 0

        def callback(data: bytes, topic=topic) -> None:
            if self._closed:
                return
            self.writer.write_cdr(topic, self.node.get_clock().now().nanoseconds, data)
            self.counts[topic] += 1

        self._subs[topic] = self.node.create_subscription(cls, topic, callback, self.qos, raw=True)

    def _discover(self) -> None:
        if not self._pending:
            return
        graph = dict(self.node.get_topic_names_and_types())
        for topic in list(self._pending):
            if topic in graph and graph[topic]:
                self._subscribe(topic, graph[topic][0])
                self._pending.remove(topic)

    def close(self) -> None:
        """Stops recording and finishes the bag."""
        if self._closed:
            return
        self._closed = True
        for sub in self._subs.values():
            self.node.destroy_subscription(sub)
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
        self.writer.close()


class BagRecorderNode(Node):
    """Node wrapper of BagRecorder with parameters (RecorderConfig)."""

    def __init__(self, **kwargs):
        super().__init__("bag_recorder", **kwargs)
        self.cfg = declare_config(self, RecorderConfig)
        if not self.cfg.output:
            raise ValueError("parameter 'output' must name a new bag directory. Got ''")
        qos = None
        if self.cfg.reliable:
            qos = reliable_qos(100)
        self.recorder = BagRecorder(self, self.cfg.output, self.cfg.topics, self.cfg.storage, qos=qos)
        self.get_logger().info(f"recording {self.cfg.topics} to {self.cfg.output} ({self.cfg.storage})")


def main(args=None) -> None:
    """Console script `bag_recorder` (stops and finishes the bag on Ctrl-C / SIGINT)."""
    rclpy.init(args=args)
    node = None
    try:
        node = BagRecorderNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.recorder.close()
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
