"""policy_node: dp/points (or camera/image) + joint_states -> dp/action_chunk at rate_hz.

ROS wiring around the one policy tick, :class:`dp_policy.core.runner.PolicyRunner` (observation
history, timing rules, inference, delta -> absolute, inpainting; see its timeline). DP3 and
state-only checkpoints take `dp/points`; image Diffusion Policy checkpoints take `camera/image`
(rgb8, bgr8, rgba8, bgra8 or mono8, center-cropped and resized to the checkpoint's image_shape).
Anything wrong with the input means "no chunk" plus a reason on /diagnostics; the node keeps
running. Stamps stay integer ns: a chunk's header.stamp is its newest frame's stamp exactly.

The forward pass runs on a worker thread, so joint states and frames keep being received while
the model runs; the result comes back to the executor through a guard condition::

    executor   tick: prepare (obs, prefix) ─┐         ┌─> publish chunk, diagnostics, markers
    worker                                  └ infer ──┘   (a tick while busy: no chunk, "busy")

Mismatch policy (README): a cloud whose point count, channels or frame differ from the checkpoint
is refused. When `perception_node`'s parameters are reachable, crop box and voxel size are
compared with the checkpoint's: a loud warning, or a refusal with `strict_perception: true`.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import rclpy
from rcl_interfaces.srv import GetParameters
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, PointCloud2
from std_msgs.msg import String
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from dp_common.diagnostics import ERROR, WARN, DiagnosticsReporter
from dp_common.msgs.chunk import build_chunk
from dp_common.msgs.stamp import now_ns, ns_to_s, stamp_to_ns
from dp_common.params import declare_config
from dp_common.qos import chunk_qos, latched_qos, reliable_qos, sensor_qos
from dp_msgs.msg import ActionChunk
from dp_policy.core import observations as oh
from dp_policy.core.camera_sync import CameraSync, compare_perception
from dp_policy.core.checkpoint import CheckpointError
from dp_policy.core.node_config import PolicyNodeConfig, checkpoint_dir, load_policy
from dp_policy.core.runner import Chunk, NoChunk, Prepared, runner_from_checkpoint
from dp_policy.core.threads import single_threaded_numpy_blas
from dp_policy.image_conversion import fit_image, image_msg_to_rgb

__all__ = ["CheckpointError", "PolicyNode", "PolicyNodeConfig", "load_policy", "main"]
LEVELS = {"warn": WARN, "error": ERROR, None: None}


class PolicyNode(Node):
    """Runs a diffusion policy on stamp-aligned observation histories (see module docstring).

    Args:
        policy: an already loaded policy (tests, in-process tools); default: load ``checkpoint``.
    """

    def __init__(self, policy=None, **kwargs):
        super().__init__("policy_node", **kwargs)
        self.cfg = declare_config(self, PolicyNodeConfig)
        self.diag = DiagnosticsReporter(self)
        self.diag.set("state", "loading")
        checkpoint_dir(self.cfg.checkpoint)  # fail fast on a missing directory
        import torch

        def torch_threads():  # OpenMP thread counts are per thread: set them where inference runs
            if self.cfg.num_threads:
                torch.set_num_threads(self.cfg.num_threads)

        torch_threads()
        single_threaded_numpy_blas()  # numpy's spinning BLAS workers would contend with torch's
        self.runner = runner_from_checkpoint(self.cfg, policy)
        r = self.runner
        if not r.image_key and not r.uses_points:
            self.get_logger().warn(
                f"checkpoint encoder {r.pcfg.encoder.type!r} reads only {list(r.pcfg.obs_keys)}: dp/points "
                "is used as the observation clock, its points are ignored"
            )
        self.period_s = 1.0 / self.cfg.rate_hz
        self.sync = CameraSync(self.cfg.sync_wait_s, self.period_s)
        self.active = bool(self.cfg.autostart)
        self.refusal: str | None = None  # perception-parameter mismatch that blocks inference
        self._last_reason = ""
        self._last_inference_s = 0.0
        self.timer_ticks = self.ticks_done = self.clouds_received = self.joint_states_received = 0
        self.ee_path = None
        self._marker_frame = self.cfg.marker_frame
        per_run = r.warmup()
        if self.cfg.warmup_iters:
            self.get_logger().info(f"warm-up: {self.cfg.warmup_iters} runs, {per_run * 1e3:.1f} ms each")
        self._worker = ThreadPoolExecutor(1, "policy_inference", initializer=torch_threads)
        self._busy = False
        self._result: tuple[Prepared, Chunk | NoChunk] | None = None
        self._result_lock = threading.Lock()
        self._done = self.create_guard_condition(self.on_inference_done)

        self.pub_chunk = self.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
        self.pub_markers = None
        if self.cfg.publish_markers:
            self.pub_markers = self.create_publisher(MarkerArray, "dp/markers", reliable_qos(1))
            self.create_subscription(String, "robot_description", self.on_robot_description, latched_qos())
        # Best effort subscriptions match both reliable and best-effort publishers.
        if r.image_key:
            self.create_subscription(Image, "camera/image", self.on_image, sensor_qos(5))
        else:
            self.create_subscription(PointCloud2, "dp/points", self.on_cloud, sensor_qos(5))
        self.create_subscription(JointState, "joint_states", self.on_joint_states, sensor_qos(50))
        self.create_service(SetBool, "~/activate", self.on_activate)
        self.timer = self.create_timer(self.period_s, self.on_timer)
        self._param_client = None
        if self.cfg.perception_node and not r.image_key:
            self._param_client = self.create_client(
                GetParameters, f"{self.cfg.perception_node}/get_parameters"
            )
            self._param_future = None
            steady = Clock(clock_type=ClockType.STEADY_TIME)
            self._param_timer = self.create_timer(1.0, self.poll_perception_params, clock=steady)
        self.diag.set("policy_id", r.policy_id)
        self.diag.set("device", str(r.policy.device) if hasattr(r.policy, "device") else self.cfg.device)
        self.diag.set("perception params", "unchecked")
        self.diag.set("state", "active" if self.active else "inactive (call ~/activate)")
        self.get_logger().info(
            f"policy {r.policy_id}: n_obs_steps={r.n_obs} horizon={r.horizon} dt={r.dt} s, "
            f"{r.policy.num_inference_steps} denoising steps, joints {list(r.joint_names)}; "
            f"{'active' if self.active else 'inactive until ~/activate'}"
        )

    @property
    def chunk_id(self) -> int:
        """Id of the next chunk (= chunks made so far)."""
        return self.runner.chunk_id

    # ------------------------------------------------------------------ the tick
    def on_timer(self) -> None:
        """One inference per tick on the newest complete history (never queued); see CameraSync."""
        self.timer_ticks += 1
        now = now_ns(self)
        self.check_clock(now)
        if self.sync.waiting_since is not None:
            self.sync.waiting_since = None
            self.diag.count("sync waits expired (no cloud by the next tick)")
        elif self.active and not self.refusal and self.sync.should_wait(ns_to_s(now), self._last_inference_s):
            self.sync.waiting_since = ns_to_s(now)
            self.ticks_done += 1
            return
        self.start_tick(now)

    def start_tick(self, now: int) -> None:
        """Prepares the observation here and hands the forward pass to the worker thread."""
        if not self.active:
            return self.finish(NoChunk("inactive", "inactive: call ~/activate (std_srvs/SetBool)"))
        if self.refusal:
            return self.finish(NoChunk("refused", self.refusal, "error"))
        if self._busy:
            self.diag.count("overruns")
            return self.finish(NoChunk("busy", "previous inference still running: tick skipped", "warn"))
        prepared = self.runner.prepare(now)
        if isinstance(prepared, NoChunk):
            return self.finish(prepared)
        self.diag.set("observation age s", ns_to_s(now - prepared.obs.stamp_ns))
        if prepared.inpaint_skipped:
            self.diag.count("inpainting skipped (previous chunk does not cover)")
        self._busy = True
        self._worker.submit(self._infer, prepared)

    def _infer(self, prepared: Prepared) -> None:
        """Worker thread: the forward pass, then back to the executor (on_inference_done)."""
        result = self.runner.infer(prepared)
        with self._result_lock:
            self._result = (prepared, result)
        self._done.trigger()

    def on_inference_done(self) -> None:
        """Executor thread: publishes the worker's chunk (or reports why there is none)."""
        with self._result_lock:
            item, self._result = self._result, None
        if item is None:
            return
        self._busy = False
        self.finish(item[1])

    def finish(self, result: Chunk | NoChunk) -> None:
        """The end of a tick: publish a chunk, or record why there is none (/diagnostics, log)."""
        self.ticks_done += 1
        if isinstance(result, NoChunk):
            level = LEVELS[result.level]
            self.diag.set("no chunk reason", f"{result.reason}: {result.message}")
            self.diag.count(f"no chunk ({result.reason})")
            if level is not None:
                self.diag.problem(result.message, level)
            if result.reason != self._last_reason and level is not None:
                self.get_logger().warning(f"no chunk: {result.message}", throttle_duration_sec=2.0)
            self._last_reason = result.reason
            return
        self._last_inference_s = result.inference_s
        self.diag.latency("inference", result.inference_s)
        if result.inference_s > self.period_s:
            self.diag.count("overruns")
            self.diag.problem(
                f"inference took {result.inference_s * 1e3:.0f} ms > timer period {self.period_s * 1e3:.0f} "
                "ms: chunks come slower than rate_hz (running on the newest data, nothing queued)",
                WARN,
            )
        c = result
        msg = build_chunk(c.stamp_ns, c.rows, c.joint_names, c.dt, c.chunk_id, c.policy_id, c.action_space)
        self.pub_chunk.publish(msg)
        self.diag.tick("chunks")
        self.diag.latency("stamp to publish", ns_to_s(now_ns(self) - c.stamp_ns))
        self.diag.set("chunks published", self.runner.chunk_id)
        self.diag.set("no chunk reason", "")
        self._last_reason = ""
        if self.pub_markers is not None and self.ee_path is not None:
            self.publish_markers(c.rows)

    def check_clock(self, now: int) -> None:
        """Forgets buffered data when the node clock jumps back (replay restarted)."""
        if self.runner.check_clock(now):
            self.get_logger().warning("node clock jumped back: clearing observations")
            self.sync.clear()

    # ------------------------------------------------------------------ inputs
    def on_cloud(self, msg: PointCloud2) -> None:
        """Validates a dp/points cloud and adds it to the history."""
        if self.runner.target_frame and msg.header.frame_id != self.runner.target_frame:
            self.count_frame(msg)
            return self.reject(
                "frame_mismatch",
                f"cloud frame {msg.header.frame_id!r} != checkpoint perception target_frame "
                f"{self.runner.target_frame!r}: refusing it",
            )
        self.add_frame(msg, lambda: decode_cloud(msg, self.runner.channels == 6), "cloud", "dp/points")

    def on_image(self, msg: Image) -> None:
        """Converts a camera/image frame (image policies) and adds it to the history."""
        shape = self.runner.image_shape
        self.add_frame(msg, lambda: fit_image(image_msg_to_rgb(msg), shape), "image", "camera/image")

    def count_frame(self, msg) -> tuple[int, int]:
        """Counts a received frame; returns (now, stamp) in ns."""
        self.clouds_received += 1
        now, stamp = now_ns(self), stamp_to_ns(msg.header.stamp)
        self.check_clock(now)
        self.diag.set("stamp-to-now offset s", ns_to_s(now - stamp))
        return now, stamp

    def add_frame(self, msg, convert, noun: str, topic: str) -> None:
        """Converts (ValueError: bad message) and adds a frame; a waiting tick runs on it."""
        now, stamp = self.count_frame(msg)
        self.diag.tick(f"{noun}s" if noun == "image" else "clouds")
        try:
            self.runner.add_frame(stamp, convert(), now)
        except oh.ObservationError as exc:
            return self.reject(exc.reason, str(exc), noun)
        except ValueError as exc:  # PerceptionError / ImageConversionError: malformed message
            return self.reject(
                oh.BAD_CLOUD, f"cannot {'decode' if noun == 'cloud' else 'convert'} {topic}: {exc}", noun
            )
        self.sync.arrivals.append(ns_to_s(now))
        if self.sync.waiting_since is not None:  # a tick waited for this frame (sync_wait_s)
            self.diag.latency("sync wait", ns_to_s(now) - self.sync.waiting_since)
            self.sync.waiting_since = None
            self.ticks_done -= 1  # the waiting tick finishes now
            self.start_tick(now)

    def reject(self, reason: str, message: str, noun: str = "cloud") -> None:
        """Counts, reports and logs (throttled) a refused cloud (or image)."""
        self.diag.count(f"rejected {noun}s ({reason})")
        if reason in (oh.BAD_CLOUD, "frame_mismatch"):
            self.diag.count("mismatches")
        self.diag.problem(f"{noun} rejected: {message}", ERROR)
        self.get_logger().error(f"{noun} rejected: {message}", throttle_duration_sec=2.0)

    def on_joint_states(self, msg: JointState) -> None:
        """Merges a (possibly partial) JointState by name."""
        self.joint_states_received += 1
        try:
            self.runner.add_joint_state(stamp_to_ns(msg.header.stamp), msg.name, msg.position, now_ns(self))
        except ValueError as exc:
            self.diag.count("rejected joint_states")
            self.diag.problem(f"joint_states rejected: {exc}", ERROR)
            self.get_logger().error(f"joint_states rejected: {exc}", throttle_duration_sec=2.0)

    def on_activate(self, request, response):
        """std_srvs/SetBool: start (true) or stop (false) publishing chunks."""
        was, self.active = self.active, bool(request.data)
        if self.active and not was:
            self.runner.reset()  # observations made after activation only (see PolicyRunner.reset)
        self.diag.set("state", "active" if self.active else "inactive (call ~/activate)")
        response.success = True
        response.message = f"policy {'active' if self.active else 'inactive'} ({self.runner.policy_id})"
        self.get_logger().info(response.message)
        return response

    # ------------------------------------------------------------------ perception parameters
    def poll_perception_params(self) -> None:
        """Asks the perception node for its parameters until it answers (non-blocking)."""
        if self._param_future is None:
            if not self._param_client.service_is_ready():
                msg = f"{self.cfg.perception_node} not reachable: crop/voxel unchecked"
                return self.diag.set("perception params", msg)
            self._param_names = [
                "target_frame",
                "crop_min",
                "crop_max",
                "voxel_size",
                "num_points",
                "use_rgb",
            ]
            self._param_future = self._param_client.call_async(GetParameters.Request(names=self._param_names))
            return
        if not self._param_future.done():
            return
        try:
            values = self._param_future.result().values
        except Exception as exc:
            self.get_logger().warning(f"perception parameters: {exc}")
            self._param_future = None
            return
        from rclpy.parameter import parameter_value_to_python

        self.apply_perception_params(
            {n: parameter_value_to_python(v) for n, v in zip(self._param_names, values, strict=False)}
        )
        self._param_timer.cancel()

    def apply_perception_params(self, got: dict) -> None:
        """Compares the perception node's parameters with the checkpoint's; warns or refuses."""
        if all(v is None for v in got.values()):
            return self.diag.set("perception params", f"{self.cfg.perception_node} has none of {sorted(got)}")
        hard, soft = compare_perception(self.runner.perception, got)
        if not hard and not soft:
            return self.diag.set("perception params", "match the checkpoint")
        self.diag.count("mismatches", len(hard) + len(soft))
        text = "; ".join(hard + soft)
        self.diag.set("perception params", f"MISMATCH: {text}")
        if hard or self.cfg.strict_perception:
            self.refusal = f"perception parameters differ from the checkpoint, refusing: {text}"
            self.get_logger().error(self.refusal)
        else:
            self.diag.problem(f"perception crop/voxel differ from the checkpoint: {text}", WARN)
            self.get_logger().warning(
                f"perception crop/voxel differ (set strict_perception to refuse): {text}"
            )

    # ------------------------------------------------------------------ markers
    def on_robot_description(self, msg: String) -> None:
        """Builds the FK model for dp/markers (skipped with a warning when it cannot)."""
        try:
            from dp_policy.markers import EndEffectorPath

            self.ee_path = EndEffectorPath(msg.data, self.cfg.ee_frame)
            self._marker_frame = self._marker_frame or self.ee_path.root_link
            self.diag.set("markers", f"{self.ee_path.ee_frame} in {self._marker_frame}")
        except (ImportError, ValueError) as exc:
            self.ee_path = None
            self.diag.set("markers", f"off: {exc}")
            self.get_logger().warning(f"dp/markers off: {exc}")

    def publish_markers(self, rows: np.ndarray) -> None:
        """Predicted end-effector path of the published rows."""
        from dp_policy.markers import path_marker_array

        joints, names = self.runner.joints, list(self.runner.joint_names)
        try:
            others = [n for n in joints.names if n not in names]
            fixed = dict(zip(others, joints.latest(others)[1], strict=True)) if others else {}
            pts = self.ee_path.positions(rows, names, fixed)
        except Exception as exc:  # markers are best effort
            return self.diag.set("markers", f"failed: {exc}")
        self.pub_markers.publish(path_marker_array(pts, self._marker_frame, self.get_clock().now().to_msg()))

    def destroy_node(self):
        self._worker.shutdown(wait=True)
        return super().destroy_node()


def decode_cloud(msg: PointCloud2, use_rgb: bool) -> np.ndarray:
    """dp/points -> (N, 3) xyz or (N, 6) xyz + rgb in [0, 1] float32."""
    from dp_perception.conversions import cloud_msg_to_numpy

    cloud = cloud_msg_to_numpy(msg)
    if not use_rgb:
        return cloud.xyz
    rgb = cloud.rgb()
    if rgb is None:
        raise oh.ObservationError("cloud has no rgb; the checkpoint was trained with rgb", oh.BAD_CLOUD)
    return np.concatenate([cloud.xyz, rgb], axis=1)


def main(args=None) -> int:
    """Entry point: `ros2 run dp_policy policy_node --ros-args -p checkpoint:=DIR`."""
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = PolicyNode()
        rclpy.spin(node)
    except (CheckpointError, ValueError) as exc:
        print(f"policy_node: cannot start: {exc}", file=sys.stderr)
        code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if code:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
