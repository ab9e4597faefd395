"""perception_node: camera/points (PointCloud2) -> dp/points (exactly num_points, target frame).

Thin wiring around dp_perception.core: parameters (PerceptionConfig + PerceptionNodeConfig, all
declared with descriptions, defaults in config/perception.yaml), sensor-data QoS, the transform
(tf2 at the cloud's stamp when tf2_ros is importable, else the static `camera_to_target`
parameter), and /diagnostics. A bad cloud never stops the node: it is dropped with a throttled
error log and a per-reason drop counter, and the next good cloud is processed normally.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import PointCloud2

from dp_common.core.transforms import pose7_to_matrix
from dp_common.diagnostics import ERROR, WARN, DiagnosticsReporter
from dp_common.msgs import now_ns, ns_to_s
from dp_common.msgs.cloud import build_cloud, read_cloud
from dp_common.msgs.transform import read_transform
from dp_common.params import declare_config
from dp_common.qos import sensor_qos
from dp_perception.core import PerceptionConfig, PerceptionError, preprocess_cloud

try:  # Not on PyPI: present on robots / in the Docker image only.
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the installation
    tf2_ros = None


@dataclass
class PerceptionNodeConfig:
    """Node-only settings (not part of the preprocessing a checkpoint records)."""

    camera_frame: str = field(
        default="camera_optical_frame",
        metadata={"help": "Frame of the incoming clouds that camera_to_target maps from (static mode)."},
    )
    camera_to_target: list[float] = field(
        default_factory=lambda: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        metadata={
            "help": "Static pose of camera_frame in target_frame [x, y, z (m), qx, qy, qz, qw]; "
            "used when tf2_ros is not importable or use_tf is false."
        },
    )
    use_tf: bool = field(
        default=True,
        metadata={"help": "Look transforms up with tf2 at the cloud's stamp when tf2_ros is importable."},
    )
    tf_timeout_s: float = field(
        default=0.05, metadata={"help": "How long a tf2 lookup may wait for the transform, s."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the FPS start point (deterministic output)."})
    queue_depth: int = field(
        default=1,
        metadata={
            "help": "Subscription depth (sensor-data QoS). 1: a cloud that arrives while one is being "
            "processed replaces any older waiting one, so the newest is processed next and no backlog builds."
        },
    )
    error_log_period_s: float = field(
        default=2.0, metadata={"help": "Drop errors are logged at most once per period per reason, s."}
    )

    def __post_init__(self):
        if len(self.camera_to_target) != 7 or not all(math.isfinite(v) for v in self.camera_to_target):
            raise ValueError(
                "camera_to_target must be 7 finite numbers [x, y, z, qx, qy, qz, qw]. "
                f"Got {self.camera_to_target}"
            )
        if np.linalg.norm(self.camera_to_target[3:]) < 1e-6:
            raise ValueError(f"camera_to_target quaternion must be non-zero. Got {self.camera_to_target[3:]}")
        if not self.camera_frame:
            raise ValueError("camera_frame must be a non-empty frame id. Got ''")
        if self.tf_timeout_s < 0:
            raise ValueError(f"tf_timeout_s must be >= 0. Got {self.tf_timeout_s}")
        if self.queue_depth < 1:
            raise ValueError(f"queue_depth must be >= 1. Got {self.queue_depth}")
        if self.error_log_period_s < 0:
            raise ValueError(f"error_log_period_s must be >= 0. Got {self.error_log_period_s}")


class PerceptionNode(Node):
    """Subscribes camera/points, publishes dp/points; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__("perception_node", **kwargs)
        self.cfg = declare_config(self, PerceptionConfig)
        self.node_cfg = declare_config(self, PerceptionNodeConfig)
        self._static_transform = pose7_to_matrix(self.node_cfg.camera_to_target)
        self._tf_buffer = None
        if tf2_ros is not None and self.node_cfg.use_tf:
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self, spin_thread=True)
        self.diag = DiagnosticsReporter(self)
        self.diag.set("target_frame", self.cfg.target_frame)
        self.diag.set("num_points", self.cfg.num_points)
        self.diag.set("transform_source", "tf2" if self._tf_buffer is not None else "static parameter")
        self._last_log: dict[str, float] = {}
        self.pub = self.create_publisher(PointCloud2, "dp/points", sensor_qos(self.node_cfg.queue_depth))
        self.sub = self.create_subscription(
            PointCloud2, "camera/points", self._on_cloud, sensor_qos(self.node_cfg.queue_depth)
        )
        self.get_logger().info(
            f"perception_node: camera/points -> dp/points ({self.cfg.num_points} points in "
            f"'{self.cfg.target_frame}', transform from "
            f"{'tf2' if self._tf_buffer is not None else 'camera_to_target'})"
        )

    def _transform_for(self, msg: PointCloud2) -> np.ndarray | None:
        """target<-cloud transform, or None when the cloud is already in target_frame."""
        frame = msg.header.frame_id.lstrip("/")
        target = self.cfg.target_frame.lstrip("/")
        if frame == target:
            return None
        if self._tf_buffer is not None:
            try:
                tf = self._tf_buffer.lookup_transform(
                    target,
                    frame,
                    Time.from_msg(msg.header.stamp),
                    timeout=Duration(seconds=self.node_cfg.tf_timeout_s),
                )
            except Exception as exc:  # tf2 raises several exception types
                raise PerceptionError(
                    f"no transform {target!r} <- {frame!r} at the cloud's stamp: {exc}",
                    reason="tf_lookup_failed",
                ) from exc
            return read_transform(tf).matrix
        if frame == self.node_cfg.camera_frame.lstrip("/"):
            return self._static_transform
        raise PerceptionError(
            f"unknown frame {frame!r} with no transform; expected camera_frame "
            f"{self.node_cfg.camera_frame!r} or target_frame {target!r} (tf2_ros is not available)",
            reason="unknown_frame",
        )

    def _on_cloud(self, msg: PointCloud2) -> None:
        t0 = time.perf_counter()
        self.diag.tick("input")
        self.diag.count("received")
        try:
            cloud = read_cloud(msg, max_points=self.cfg.max_input_points)
            transform = self._transform_for(msg)
            points = preprocess_cloud(
                cloud.xyz,
                cloud.rgb_packed if self.cfg.use_rgb else None,
                self.cfg,
                transform=transform,
                seed=self.node_cfg.seed,
            )
            self.pub.publish(build_cloud(cloud.stamp_ns, self.cfg.target_frame, points))
        except PerceptionError as exc:
            self._drop(exc.reason, str(exc), WARN)
            return
        except Exception as exc:  # never die on a message
            self._drop("internal_error", f"{type(exc).__name__}: {exc}", ERROR)
            return
        self.diag.latency("processing", time.perf_counter() - t0)
        self.diag.latency("stamp_to_publish", ns_to_s(now_ns(self) - cloud.stamp_ns))
        self.diag.tick("output")
        self.diag.count("published")

    def _drop(self, reason: str, message: str, level: int) -> None:
        self.diag.count(f"dropped_{reason}")
        self.diag.count("dropped")
        self.diag.problem(f"dropped cloud ({reason})", level)
        now = time.monotonic()
        if now - self._last_log.get(reason, -math.inf) >= self.node_cfg.error_log_period_s:
            self._last_log[reason] = now
            self.get_logger().error(f"dropped cloud ({reason}): {message}")


def main(args=None):
    """Entry point of the `perception_node` executable."""
    rclpy.init(args=args)
    node = None
    try:
        node = PerceptionNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
