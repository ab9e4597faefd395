"""ROS-side helpers of policy_node: dp/points decoding, the perception-parameter check, dp/markers.

Both are best-effort side channels of the node (never block a chunk); kept here so that
``policy_node.py`` stays the wiring of the tick.
"""

from __future__ import annotations

import numpy as np
from rcl_interfaces.srv import GetParameters
from rclpy.clock import Clock, ClockType
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from dp_common.diagnostics import WARN
from dp_common.msgs.cloud import read_cloud
from dp_common.qos import latched_qos, reliable_qos
from dp_policy.core import observations as oh
from dp_policy.core.camera_sync import compare_perception


def decode_cloud(msg, use_rgb: bool) -> np.ndarray:
    """dp/points -> (N, 3) xyz or (N, 6) xyz + rgb in [0, 1] float32."""
    cloud = read_cloud(msg)
    if not use_rgb:
        return cloud.xyz
    rgb = cloud.rgb()
    if rgb is None:
        raise oh.ObservationError("cloud has no rgb; the checkpoint was trained with rgb", oh.BAD_CLOUD)
    return np.concatenate([cloud.xyz, rgb], axis=1)


PERCEPTION_PARAMS = ["target_frame", "crop_min", "crop_max", "voxel_size", "num_points", "use_rgb"]


class PerceptionParamCheck:
    """Asks `perception_node` for its parameters (steady 1 s timer) until it answers, then compares.

    A hard mismatch (frame, point count, rgb), or any with ``strict``, sets ``node.refusal``; a crop
    box / voxel size difference is a loud warning.
    """

    def __init__(self, node, perception_node: str, checkpoint_perception: dict, strict: bool):
        self.node, self.name, self.expected, self.strict = (
            node,
            perception_node,
            checkpoint_perception,
            strict,
        )
        self.client = node.create_client(GetParameters, f"{perception_node}/get_parameters")
        self.future = None
        self.timer = node.create_timer(1.0, self.poll, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def poll(self) -> None:
        """One non-blocking step: send the request, or read its answer."""
        if self.future is None:
            if not self.client.service_is_ready():
                self.node.diag.set("perception params", f"{self.name} not reachable: crop/voxel unchecked")
                return
            self.future = self.client.call_async(GetParameters.Request(names=PERCEPTION_PARAMS))
            return
        if not self.future.done():
            return
        try:
            values = self.future.result().values
        except Exception as exc:
            self.node.get_logger().warning(f"perception parameters: {exc}")
            self.future = None
            return
        from rclpy.parameter import parameter_value_to_python

        self.apply({n: parameter_value_to_python(v) for n, v in zip(PERCEPTION_PARAMS, values, strict=False)})
        self.timer.cancel()

    def apply(self, got: dict) -> None:
        """Compares the perception node's parameters with the checkpoint's; warns or refuses."""
        node = self.node
        if all(v is None for v in got.values()):
            node.diag.set("perception params", f"{self.name} has none of {sorted(got)}")
            return
        hard, soft = compare_perception(self.expected, got)
        if not hard and not soft:
            node.diag.set("perception params", "match the checkpoint")
            return
        node.diag.count("mismatches", len(hard) + len(soft))
        text = "; ".join(hard + soft)
        node.diag.set("perception params", f"MISMATCH: {text}")
        if hard or self.strict:
            node.refusal = f"perception parameters differ from the checkpoint, refusing: {text}"
            node.get_logger().error(node.refusal)
        else:
            node.diag.problem(f"perception crop/voxel differ from the checkpoint: {text}", WARN)
            node.get_logger().warning(
                f"perception crop/voxel differ (set strict_perception to refuse): {text}"
            )


class PathMarkers:
    """dp/markers: the predicted end-effector path of each published chunk (needs robot_description).

    Args:
        node: the policy node (its diag and logger).
        ee_frame, marker_frame: '' = the URDF's last link / root link.
    """

    def __init__(self, node, ee_frame: str, marker_frame: str):
        self.node, self.ee_frame, self.frame = node, ee_frame, marker_frame
        self.ee_path = None
        self.pub = node.create_publisher(MarkerArray, "dp/markers", reliable_qos(1))
        node.create_subscription(String, "robot_description", self.on_robot_description, latched_qos())

    def on_robot_description(self, msg: String) -> None:
        """Builds the FK model (skipped with a warning when it cannot)."""
        try:
            from dp_policy.markers import EndEffectorPath

            self.ee_path = EndEffectorPath(msg.data, self.ee_frame)
            self.frame = self.frame or self.ee_path.root_link
            self.node.diag.set("markers", f"{self.ee_path.ee_frame} in {self.frame}")
        except (ImportError, ValueError) as exc:
            self.ee_path = None
            self.node.diag.set("markers", f"off: {exc}")
            self.node.get_logger().warning(f"dp/markers off: {exc}")

    def publish(self, rows: np.ndarray, joints, names) -> None:
        """Path of `rows` (H, len(names)); other joints held at their latest positions."""
        if self.ee_path is None:
            return
        from dp_policy.markers import path_marker_array

        try:
            others = [n for n in joints.names if n not in names]
            fixed = dict(zip(others, joints.latest(others)[1], strict=True)) if others else {}
            pts = self.ee_path.positions(rows, list(names), fixed)
        except Exception as exc:  # markers are best effort
            self.node.diag.set("markers", f"failed: {exc}")
            return
        self.pub.publish(path_marker_array(pts, self.frame, self.node.get_clock().now().to_msg()))
