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

Mismatch policy (README): clouds whose point count, channels or frame differ from the checkpoint are
refused; perception_node's crop box / voxel size differing: a warning (refusal if strict_perception).
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, PointCloud2
from std_srvs.srv import SetBool

from dp_common.diagnostics import ERROR, WARN, DiagnosticsReporter
from dp_common.msgs.chunk import build_chunk
from dp_common.msgs.image import read_image
from dp_common.msgs.stamp import now_ns, ns_to_s, stamp_to_ns
from dp_common.params import declare_config
from dp_common.qos import chunk_qos, sensor_qos
from dp_msgs.msg import ActionChunk
from dp_policy.core import observations as oh
from dp_policy.core.camera_sync import CameraSync
from dp_policy.core.checkpoint import CheckpointError
from dp_policy.core.node_config import PolicyNodeConfig, checkpoint_dir, load_policy
from dp_policy.core.resize import fit_image
from dp_policy.core.runner import Chunk, NoChunk, Prepared, runner_from_checkpoint
from dp_policy.core.threads import single_threaded_numpy_blas
from dp_policy.node_helpers import PathMarkers, PerceptionParamCheck, decode_cloud

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
        per_run = r.warmup()
        if self.cfg.warmup_iters:
            self.get_logger().info(f"warm-up: {self.cfg.warmup_iters} runs, {per_run * 1e3:.1f} ms each")
        self._worker = ThreadPoolExecutor(1, "policy_inference", initializer=torch_threads)
        self._busy = False
        self._result: tuple[Prepared, Chunk | NoChunk] | None = None
        self._result_lock = threading.Lock()
        self._done = self.create_guard_condition(self.on_inference_done)

        self.pub_chunk = self.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
        self.markers = (
            PathMarkers(self, self.cfg.ee_frame, self.cfg.marker_frame) if self.cfg.publish_markers else None
        )
        # Best effort subscriptions match both reliable and best-effort publishers.
        if r.image_key:
            self.create_subscription(Image, "camera/image", self.on_image, sensor_qos(5))
        else:
            self.create_subscription(PointCloud2, "dp/points", self.on_cloud, sensor_qos(5))
        self.create_subscription(JointState, "joint_states", self.on_joint_states, sensor_qos(50))
        self.create_service(SetBool, "~/activate", self.on_activate)
        self.timer = self.create_timer(self.period_s, self.on_timer)
        check = self.cfg.perception_node and not r.image_key
        args = (self, self.cfg.perception_node, r.perception, self.cfg.strict_perception)
        self.perception_check = PerceptionParamCheck(*args) if check else None
        self.diag.set("policy_id", r.policy_id)
        self.diag.set("device", str(getattr(r.policy, "device", self.cfg.device)))
        self.diag.set("perception params", "unchecked")
        self.diag.set("state", "active" if self.active else "inactive (call ~/activate)")
        state = "active" if self.active else "inactive until ~/activate"
        self.get_logger().info(f"policy {r.policy_id}: n_obs_steps={r.n_obs} dt={r.dt} s; {state}")

    chunk_id = property(lambda self: self.runner.chunk_id, doc="Id of the next chunk (= chunks made so far).")

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
        if not self.cfg.inference_thread:  # blocks the executor (comparison only)
            return self.finish(self.runner.infer(prepared))
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
        if item is not None:
            self._busy = False  # a chunk of before a deactivation is not published
            self.finish(item[1] if self.active else NoChunk("inactive", "deactivated during inference"))

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
        if self.markers is not None:
            self.markers.publish(c.rows, self.runner.joints, c.joint_names)

    def check_clock(self, now: int) -> None:
        """Forgets buffered data when the node clock jumps back (replay restarted)."""
        if self.runner.check_clock(now):
            self.get_logger().warning("node clock jumped back: clearing observations")
            self.sync.clear()

    # ------------------------------------------------------------------ inputs
    def on_cloud(self, msg: PointCloud2) -> None:
        """Validates a dp/points cloud (frame, points) and adds it to the history."""
        frame = self.runner.target_frame

        def convert():
            if frame and msg.header.frame_id != frame:
                text = f"cloud frame {msg.header.frame_id!r} != checkpoint perception target_frame {frame!r}"
                raise oh.ObservationError(f"{text}: refusing it", "frame_mismatch")
            return decode_cloud(msg, self.runner.channels == 6)

        self.add_frame(msg, convert, "cloud", "dp/points")

    def on_image(self, msg: Image) -> None:
        """Converts a camera/image frame (image policies) and adds it to the history."""
        shape = self.runner.image_shape
        self.add_frame(msg, lambda: fit_image(read_image(msg), shape), "image", "camera/image")

    def add_frame(self, msg, convert, noun: str, topic: str) -> None:
        """Converts (ValueError: bad message) and adds a frame; a waiting tick runs on it."""
        self.clouds_received += 1
        now, stamp = now_ns(self), stamp_to_ns(msg.header.stamp)
        self.check_clock(now)
        self.diag.set("stamp-to-now offset s", ns_to_s(now - stamp))
        self.diag.tick(f"{noun}s")
        try:
            self.runner.add_frame(stamp, convert(), now)
        except oh.ObservationError as exc:
            return self.reject(exc.reason, str(exc), noun)
        except ValueError as exc:  # PerceptionError / ImageConversionError: malformed message
            return self.reject(oh.BAD_CLOUD, f"cannot read {topic}: {exc}", noun)
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

    def destroy_node(self):
        self._worker.shutdown(wait=True)
        return super().destroy_node()


def main(args=None) -> int:
    """Entry point: `ros2 run dp_policy policy_node --ros-args -p checkpoint:=DIR`."""
    rclpy.init(args=args)
    node = None
    try:
        node = PolicyNode()
        rclpy.spin(node)
    except (CheckpointError, ValueError) as exc:
        print(f"policy_node: cannot start: {exc}", file=sys.stderr)
        sys.exit(1)  # after finally
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    main()
