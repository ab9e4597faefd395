"""policy_node: dp/points + joint_states -> dp/action_chunk at rate_hz (DP3 / Diffusion Policy).

The checkpoint decides the input: DP3 (and state-only) checkpoints take `dp/points`; image Diffusion
Policy checkpoints (encoder type `image`) take `camera/image` (sensor_msgs/Image: rgb8, bgr8,
rgba8, bgra8 or mono8, center-cropped and resized to the checkpoint's image_shape exactly as the
training data was), aligned with joint_states the same way.

Thin ROS wiring around ROS-free code: `dp_policy.observations` (stamp-aligned
observation history) and `dp_policy.core` (the policy). Everything that can go wrong with the
input (stale, future-stamped, wrong-sized or wrong-frame clouds, NaN or missing joints, a
perception node configured differently from the training data) means "no chunk" plus a reason on
/diagnostics; the node keeps running and resumes when good data returns.

Timeline of one chunk (n_obs_steps = 2, horizon = 16, dt = 0.1 s)::

    model rows     0    1    2   ...   15
    time        t-dt    t  t+dt  ... t+14dt     t = stamp of the newest cloud ("now")
    published          |<-- rows 1..15 = ActionChunk rows 0..14 -->|
    inpainted     |<-- n_obs_steps-1 + inpaint_rows -->|  (previous chunk resampled at these times)

Mismatch policy (documented in the README): a cloud whose point count, channels (rgb) or frame
differ from the checkpoint is refused (no chunk). When the perception node's parameters are
reachable (`perception_node`), crop box and voxel size are compared with the checkpoint's; a
difference is a loud warning, or a refusal with `strict_perception: true`.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

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

from dp_common.core.joint_states import JointStateBuffer
from dp_common.diagnostics import ERROR, WARN, DiagnosticsReporter
from dp_common.params import declare_config
from dp_common.qos import chunk_qos, latched_qos, reliable_qos, sensor_qos
from dp_common.time import now_sec, sec_to_stamp, stamp_to_sec
from dp_msgs.msg import ActionChunk
from dp_policy import observations as oh
from dp_policy.core.threads import single_threaded_numpy_blas
from dp_policy.image_conversion import fit_image, image_msg_to_rgb

DEVICES = ("auto", "cuda", "cpu")


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class PolicyNodeConfig:
    """Parameters of policy_node (defaults in config/policy.yaml). Times in s of the node clock."""

    checkpoint: str = field(default="", metadata=_help("Checkpoint directory (config.json + weights)."))
    device: str = field(default="auto", metadata=_help("auto (cuda when available) | cuda | cpu."))
    rate_hz: float = field(default=10.0, metadata=_help("Inference timer rate on the node clock, Hz."))
    sync_wait_s: float = field(
        default=0.0,
        metadata=_help(
            "Camera sync: a timer tick that expects the next cloud within this time waits for it and "
            "runs inference on its arrival (one chunk per tick, on a fresher cloud: cloud stamp -> "
            "chunk latency = inference instead of up to a camera period more); 0 = run at the tick."
        ),
    )
    obs_timeout_s: float = field(
        default=0.5, metadata=_help("Newest cloud older than this (now - stamp): no chunk, s.")
    )
    future_tolerance_s: float = field(
        default=0.05, metadata=_help("Clouds stamped more than this after now are rejected, s.")
    )
    step_tolerance_s: float = field(
        default=0.04,
        metadata=_help("Older history steps use the cloud closest to newest - k*dt within this, s."),
    )
    joint_tolerance_s: float = field(
        default=0.05,
        metadata=_help("A cloud stamp may be this much after the newest joint state (held), s."),
    )
    autostart: bool = field(default=False, metadata=_help("Publish chunks without ~/activate."))
    num_inference_steps: int = field(
        default=0, metadata=_help("Denoising steps; 0 = the checkpoint's num_inference_steps.")
    )
    inpaint_rows: int = field(
        default=0,
        metadata=_help(
            "Rows from 'now' fixed to the previous chunk resampled at their times (hard "
            "inpainting, together with the observation rows before 'now'); 0 = off."
        ),
    )
    seed: int = field(default=-1, metadata=_help("Noise seed: chunk i uses seed + chunk_id; -1 = unseeded."))
    warmup_iters: int = field(default=2, metadata=_help("Inference runs before the first publish."))
    num_threads: int = field(
        default=1,
        metadata=_help(
            "torch CPU threads; 0 = torch default (all cores). 1 avoids OpenMP contention with the "
            "other dp processes on small machines (measured 2 threads 5-30x slower on a loaded 2-core CPU)."
        ),
    )
    publish_markers: bool = field(
        default=True, metadata=_help("Publish dp/markers (needs robot_description + pinocchio).")
    )
    ee_frame: str = field(default="", metadata=_help("Frame drawn in dp/markers; '' = last link."))
    marker_frame: str = field(default="", metadata=_help("Frame of dp/markers; '' = URDF root link."))
    perception_node: str = field(
        default="perception_node",
        metadata=_help("Perception node whose parameters are checked against the checkpoint; '' = skip."),
    )
    strict_perception: bool = field(
        default=False,
        metadata=_help("Refuse (instead of warn) when perception's crop box / voxel size differ."),
    )

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}. Got {self.device!r}")
        for name in ("rate_hz", "obs_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0. Got {value}")
        for name in ("future_tolerance_s", "step_tolerance_s", "joint_tolerance_s", "sync_wait_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 s. Got {value}")
        for name in ("num_inference_steps", "inpaint_rows", "warmup_iters", "num_threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0. Got {getattr(self, name)}")
        if self.seed < -1:
            raise ValueError(f"seed must be >= 0, or -1 for unseeded. Got {self.seed}")


class CheckpointError(RuntimeError):
    """The checkpoint cannot be used (missing, unreadable or unsupported)."""


def policy_id_of(path: Path, name: str = "") -> str:
    """`<name or dir name>@<sha256[:8] of the weights>` (what ActionChunk.policy_id carries)."""
    h = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")):
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return f"{name or path.resolve().name}@{h.hexdigest()[:8]}"


def resolve_device(device: str) -> str:
    """auto -> cuda when available else cpu; cuda when unavailable raises CheckpointError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("device 'cuda' requested but torch sees no CUDA device; use auto or cpu")
    return device


def checkpoint_dir(checkpoint: str) -> Path:
    """The checkpoint parameter as an existing directory, else CheckpointError."""
    if not checkpoint:
        raise CheckpointError("parameter 'checkpoint' is empty: set it to a checkpoint directory")
    path = Path(checkpoint).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {str(path)!r} does not exist")
    return path


def load_policy(checkpoint: str, device: str, num_inference_steps: int = 0):
    """Loads `checkpoint` with the core's Policy.from_checkpoint; CheckpointError with a reason."""
    path = checkpoint_dir(checkpoint)
    from dp_policy.core import Policy

    try:
        policy = Policy.from_checkpoint(
            path, device=device, num_inference_steps=num_inference_steps or None, warmup=False
        )
    except Exception as exc:  # any failure to load is fatal for the node, with the cause
        raise CheckpointError(f"cannot load checkpoint {str(path)!r}: {exc}") from exc
    return policy, path


def resample_rows(times: np.ndarray, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear resampling of `rows` (T, A) at `times` (T,) onto `t` (K,), clamped at the ends."""
    return np.stack([np.interp(t, times, rows[:, j]) for j in range(rows.shape[1])], axis=1)


def inpaint_prefix(
    prev_times: np.ndarray, prev_rows: np.ndarray, stamp: float, n_obs_steps: int, dt: float, rows: int
) -> np.ndarray | None:
    """The previous prediction resampled at the new chunk's first model rows.

    Model row i of the chunk stamped `stamp` targets ``stamp + (i - (n_obs_steps - 1)) * dt``; the
    prefix covers the observation rows before "now" and `rows` rows from "now" on
    (``n_obs_steps - 1 + rows`` rows). Rows before the previous prediction's first time are
    clamped to it.

    Args:
        prev_times: (H,) times of the previous prediction's rows, s.
        prev_rows: (H, A) previous prediction (all model rows).
        stamp: the new chunk's stamp ("now"), s.
        n_obs_steps, dt: the policy's timing.
        rows: inpainted rows from "now" on (>= 1).

    Returns:
        (n_obs_steps - 1 + rows, A) float32, or None when the rows from "now" are not within the
        previous prediction (too old, or a gap).
    """
    t_new = stamp + (np.arange(n_obs_steps - 1 + rows) - (n_obs_steps - 1)) * dt
    if t_new[n_obs_steps - 1] < prev_times[0] - 1e-6 or t_new[-1] > prev_times[-1] + 1e-6:
        return None
    return resample_rows(prev_times, prev_rows, t_new).astype(np.float32)


class PolicyNode(Node):
    """Runs a diffusion policy on stamp-aligned observation histories (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__("policy_node", **kwargs)
        self.cfg = declare_config(self, PolicyNodeConfig)
        self.diag = DiagnosticsReporter(self)
        self.diag.set("state", "loading")
        checkpoint_dir(self.cfg.checkpoint)  # fail fast, before importing torch
        import torch

        if self.cfg.num_threads:
            torch.set_num_threads(self.cfg.num_threads)
        single_threaded_numpy_blas()  # numpy's spinning BLAS workers would contend with torch's
        self.device = resolve_device(self.cfg.device)
        self.policy, ckpt_path = load_policy(self.cfg.checkpoint, self.device, self.cfg.num_inference_steps)
        pc = self.policy.config
        self.pcfg = pc
        self.policy_id = policy_id_of(ckpt_path, getattr(self.policy, "policy_id", ""))
        self.joint_names = list(pc.joint_names)
        if not self.joint_names:
            raise CheckpointError(
                "checkpoint config has no joint_names: cannot map joint_states to agent_pos"
            )
        if pc.state_dim != len(self.joint_names):
            raise CheckpointError(
                f"checkpoint state_dim {pc.state_dim} != {len(self.joint_names)} joint_names: the "
                "node builds agent_pos from the joint positions of joint_names"
            )
        self.delta_actions = pc.action_space == "joint_position_delta"
        self.uses_points = "point_cloud" in tuple(pc.obs_keys)
        self.image_key: str | None = None
        self.image_shape: tuple[int, ...] = ()
        if pc.encoder.type == "image":
            # Image Diffusion Policy: camera/image is the observation clock instead of dp/points.
            if len(pc.encoder.camera_keys) != 1:
                raise CheckpointError(
                    f"policy_node serves one camera (topic camera/image); the checkpoint has "
                    f"{len(pc.encoder.camera_keys)}: {list(pc.encoder.camera_keys)}"
                )
            self.image_key = str(pc.encoder.camera_keys[0])
            self.image_shape = tuple(int(v) for v in pc.encoder.image_shape)
        elif not self.uses_points:
            # The history stays aligned to cloud stamps: the camera is the observation clock, and the
            # policy reads only agent_pos (e.g. the state-only baseline of an ablation).
            self.get_logger().warn(
                f"checkpoint encoder {pc.encoder.type!r} reads only {list(pc.obs_keys)}: dp/points is "
                "used as the observation clock, its points are ignored"
            )
        self.perception = dict(pc.perception)
        self.num_points = int(self.perception.get("num_points", pc.encoder.num_points))
        self.channels = pc.encoder.point_channels
        self.target_frame = str(self.perception.get("target_frame", ""))
        self.n_obs = pc.n_obs_steps
        self.dt = float(pc.dt)
        self.num_steps = self.policy.num_inference_steps
        if self.n_obs - 1 + self.cfg.inpaint_rows >= pc.horizon:
            raise ValueError(
                f"inpaint_rows must be < horizon - n_obs_steps + 1 = {pc.horizon - self.n_obs + 1}. "
                f"Got {self.cfg.inpaint_rows}"
            )
        self.history = oh.ObservationHistory(
            oh.ObsHistoryConfig(
                n_obs_steps=self.n_obs,
                dt=self.dt,
                num_points=self.num_points,
                point_channels=self.channels,
                obs_timeout_s=self.cfg.obs_timeout_s,
                future_tolerance_s=self.cfg.future_tolerance_s,
                step_tolerance_s=min(self.cfg.step_tolerance_s, 0.49 * self.dt),
                joint_tolerance_s=self.cfg.joint_tolerance_s,
                obs_key=self.image_key or "point_cloud",
                image_shape=self.image_shape,
            )
        )
        self.joints = JointStateBuffer(history_s=max(2.0, 2 * self.n_obs * self.dt + self.cfg.obs_timeout_s))
        self.active = bool(self.cfg.autostart)
        self.chunk_id = 0
        self.prev_chunk: tuple[np.ndarray, np.ndarray] | None = None  # (times (H,), rows (H, A))
        self.refusal: str | None = None  # perception-parameter mismatch that blocks inference
        self.perception_checked = False
        self._last_now = -math.inf
        self._last_reason = ""
        self._arrivals: deque[float] = deque(maxlen=9)  # node-clock arrival times of accepted clouds
        self._waiting_since: float | None = None  # a tick is waiting for the next cloud (sync_wait_s)
        self._last_inference_s = 0.0
        # Message / tick counters (for tests and introspection).
        self.timer_ticks = 0
        self.clouds_received = 0
        self.joint_states_received = 0
        self.ee_path = None
        self._marker_frame = self.cfg.marker_frame

        self.warmup()

        self.pub_chunk = self.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
        self.pub_markers = None
        if self.cfg.publish_markers:
            self.pub_markers = self.create_publisher(MarkerArray, "dp/markers", reliable_qos(1))
            self.create_subscription(String, "robot_description", self.on_robot_description, latched_qos())
        # Best effort subscriptions match both reliable and best-effort publishers.
        if self.image_key:
            self.create_subscription(Image, "camera/image", self.on_image, sensor_qos(5))
        else:
            self.create_subscription(PointCloud2, "dp/points", self.on_cloud, sensor_qos(5))
        self.create_subscription(JointState, "joint_states", self.on_joint_states, sensor_qos(50))
        self.create_service(SetBool, "~/activate", self.on_activate)
        self.timer = self.create_timer(1.0 / self.cfg.rate_hz, self.on_timer)
        self._param_client = None
        if self.cfg.perception_node and not self.image_key:
            self._param_client = self.create_client(
                GetParameters, f"{self.cfg.perception_node}/get_parameters"
            )
            self._param_future = None
            self._param_timer = self.create_timer(
                1.0, self.poll_perception_params, clock=Clock(clock_type=ClockType.STEADY_TIME)
            )
        self.diag.set("policy_id", self.policy_id)
        self.diag.set("device", self.device)
        self.diag.set("perception params", "unchecked")
        self.diag.set("state", "active" if self.active else "inactive (call ~/activate)")
        self.get_logger().info(
            f"policy {self.policy_id} on {self.device}: n_obs_steps={self.n_obs} horizon={pc.horizon} "
            f"dt={self.dt} s, {self.num_steps} denoising steps, joints {self.joint_names}; "
            f"{'active' if self.active else 'inactive until ~/activate'}"
        )

    # ------------------------------------------------------------------ inference
    def predict(self, obs: dict, chunk_id: int, prefix: np.ndarray | None = None) -> np.ndarray:
        """The core's prediction (horizon, A) for `obs`, with this node's noise and steps."""
        import torch

        generator = None
        if self.cfg.seed >= 0:
            # The core draws the initial noise on the CPU with this generator (then moves it).
            generator = torch.Generator().manual_seed(self.cfg.seed + chunk_id)
        out = self.policy.predict_action_chunk(obs, generator=generator, prefix=prefix)
        return np.asarray(out, dtype=np.float32)

    def dummy_observation(self) -> dict:
        """A plausible observation of the checkpoint's shapes (for warm-up)."""
        if self.image_key:  # the core's warm-up frames (mid-gray, checkpoint's shape)
            from dp_policy.core.vision import dummy_image_obs

            return {
                "agent_pos": np.zeros((self.n_obs, self.pcfg.state_dim), np.float32),
                **dummy_image_obs(self.pcfg),
            }
        rng = np.random.default_rng(0)
        lo = np.asarray(self.perception.get("crop_min", [-0.5] * 3), np.float32)
        hi = np.asarray(self.perception.get("crop_max", [0.5] * 3), np.float32)
        pts = rng.uniform(lo, hi, size=(self.n_obs, self.num_points, 3)).astype(np.float32)
        if self.channels == 6:
            pts = np.concatenate([pts, np.full_like(pts, 0.5)], axis=-1)
        return {"agent_pos": np.zeros((self.n_obs, self.pcfg.state_dim), np.float32), "point_cloud": pts}

    def warmup(self) -> None:
        """Runs the policy a few times so the first real chunk has steady-state latency."""
        obs = self.dummy_observation()
        t0 = time.perf_counter()
        for _ in range(self.cfg.warmup_iters):
            out = self.predict(obs, 0)
        if self.cfg.warmup_iters:
            expected = (self.pcfg.horizon, self.pcfg.action_dim)
            if out.shape != expected:
                raise CheckpointError(f"policy returned shape {out.shape}; expected {expected}")
            self.get_logger().info(
                f"warm-up: {self.cfg.warmup_iters} runs, "
                f"{(time.perf_counter() - t0) / self.cfg.warmup_iters * 1e3:.1f} ms each"
            )

    def inpaint_prefix(self, stamp: float) -> np.ndarray | None:
        """Prefix for the chunk stamped `stamp` from the previous chunk (None: no inpainting)."""
        if not self.cfg.inpaint_rows or self.prev_chunk is None:
            return None
        prefix = inpaint_prefix(*self.prev_chunk, stamp, self.n_obs, self.dt, self.cfg.inpaint_rows)
        if prefix is None:
            self.diag.count("inpainting skipped (previous chunk does not cover)")
        return prefix

    def no_chunk(self, reason: str, message: str, level: int | None = None) -> None:
        """Records why this timer tick produced no chunk."""
        self.diag.set("no chunk reason", f"{reason}: {message}")
        self.diag.count(f"no chunk ({reason})")
        if level is not None:
            self.diag.problem(message, level)
        if reason != self._last_reason and level is not None:
            self.get_logger().warning(f"no chunk: {message}", throttle_duration_sec=2.0)
        self._last_reason = reason

    def check_clock(self, now: float) -> None:
        """Forgets buffered data when the node clock jumps back (replay restarted)."""
        if now < self._last_now - 1.0:
            self.get_logger().warning(
                f"node clock jumped back {self._last_now - now:.2f} s: clearing observations"
            )
            self.history.clear()
            self.joints = JointStateBuffer(history_s=self.joints.history_s)
            self.prev_chunk = None
            self._arrivals.clear()
            self._waiting_since = None
        self._last_now = now

    def expected_next_cloud(self) -> tuple[float, float] | None:
        """(node-clock time the next cloud should arrive, camera period) from recent arrivals."""
        if len(self._arrivals) < 3:
            return None
        period = float(np.median(np.diff(np.asarray(self._arrivals))))
        return (self._arrivals[-1] + period, period) if period > 0 else None

    def should_wait_for_cloud(self, now: float) -> bool:
        """sync_wait_s: is the next cloud due within sync_wait_s (or just overdue), with headroom?"""
        expected = self.expected_next_cloud()
        if expected is None:
            return False
        wait = expected[0] - now
        # A cloud due at the tick itself may arrive a moment after it (same-time events on a
        # simulated clock): up to half a camera period overdue still counts as "coming".
        if not -0.5 * expected[1] <= wait <= self.cfg.sync_wait_s:
            return False
        # Wait only with headroom: when inference plus the wait exceeds the period, the node is
        # behind (clouds queue up) and waiting would only add latency.
        return self._last_inference_s + max(wait, 0.0) < 1.0 / self.cfg.rate_hz

    def on_timer(self) -> None:
        """One inference per tick on the newest complete history (never queued).

        With ``sync_wait_s`` > 0 a tick that expects the next cloud within that time leaves the
        inference to that cloud's arrival (see :meth:`on_cloud`); if it has not come by the next
        tick, that tick runs on what there is.
        """
        self.timer_ticks += 1
        now = now_sec(self)
        self.check_clock(now)
        if self._waiting_since is not None:
            self._waiting_since = None
            self.diag.count("sync waits expired (no cloud by the next tick)")
        elif (
            self.cfg.sync_wait_s > 0 and self.active and not self.refusal and self.should_wait_for_cloud(now)
        ):
            self._waiting_since = now
            return
        self.infer(now)

    def infer(self, now: float) -> None:
        """Runs the policy on the newest complete history at node time `now` and publishes."""
        if not self.active:
            self.no_chunk("inactive", "inactive: call ~/activate (std_srvs/SetBool)")
            return
        if self.refusal:
            self.no_chunk("refused", self.refusal, ERROR)
            return
        try:
            obs = self.history.build(now, self.joints, self.joint_names)
        except oh.ObservationError as exc:
            # An unchanged history is the normal case between camera frames: not a problem.
            level = WARN if exc.reason in (oh.NO_CLOUD, oh.INCOMPLETE) else ERROR
            self.no_chunk(exc.reason, str(exc), None if exc.reason == oh.UNCHANGED else level)
            return
        self.diag.set("observation age s", now - obs.stamp)
        policy_input = obs.as_policy_input()
        # Delta policies predict targets minus the joint positions at "now" (the newest observation).
        base = policy_input["agent_pos"][-1] if self.delta_actions else None
        prefix = self.inpaint_prefix(obs.stamp)
        if prefix is not None and base is not None:
            prefix = (prefix - base).astype(np.float32)
        t0 = time.perf_counter()
        try:
            actions = self.predict(policy_input, self.chunk_id, prefix)
            if base is not None:
                actions = (actions + base).astype(np.float32)
        except Exception as exc:  # a failing forward pass must not kill the node
            self.no_chunk("inference_error", f"inference failed: {type(exc).__name__}: {exc}", ERROR)
            self.history.mark_used(obs)
            return
        elapsed = time.perf_counter() - t0
        self._last_inference_s = elapsed
        self.diag.latency("inference", elapsed)
        if elapsed > 1.0 / self.cfg.rate_hz:
            self.diag.count("overruns")
            self.diag.problem(
                f"inference took {elapsed * 1e3:.0f} ms > timer period {1e3 / self.cfg.rate_hz:.0f} ms: "
                "chunks come slower than rate_hz (running on the newest data, nothing queued)",
                WARN,
            )
        self.history.mark_used(obs)
        if not np.all(np.isfinite(actions)):
            self.no_chunk("non_finite_actions", "policy returned NaN/Inf actions", ERROR)
            return
        self.publish_chunk(obs.stamp, actions)

    def publish_chunk(self, stamp: float, actions: np.ndarray) -> None:
        """Publishes rows n_obs_steps-1 .. horizon-1 of `actions` (horizon, A) as an ActionChunk."""
        rows = np.ascontiguousarray(actions[self.n_obs - 1 :], dtype=np.float32)
        msg = ActionChunk()
        msg.header.stamp = sec_to_stamp(stamp)
        msg.chunk_id = self.chunk_id
        msg.policy_id = self.policy_id
        msg.action_space = "joint_position"  # delta policies were converted to absolute targets
        msg.joint_names = list(self.joint_names)
        msg.dt = self.dt
        msg.horizon = rows.shape[0]
        msg.action_dim = rows.shape[1]
        msg.data = rows.reshape(-1).tolist()
        self.pub_chunk.publish(msg)
        now = now_sec(self)
        self.chunk_id += 1
        times = stamp + (np.arange(actions.shape[0]) - (self.n_obs - 1)) * self.dt
        self.prev_chunk = (times, actions.astype(np.float64))
        self.diag.tick("chunks")
        self.diag.latency("stamp to publish", now - stamp)
        self.diag.set("chunks published", self.chunk_id)
        self.diag.set("no chunk reason", "")
        self._last_reason = ""
        if self.pub_markers is not None and self.ee_path is not None:
            self.publish_markers(rows)

    # ------------------------------------------------------------------ inputs
    def on_cloud(self, msg: PointCloud2) -> None:
        """Validates a dp/points cloud and adds it to the history."""
        self.clouds_received += 1
        now = now_sec(self)
        self.check_clock(now)
        stamp = stamp_to_sec(msg.header.stamp)
        self.diag.set("stamp-to-now offset s", now - stamp)
        self.diag.tick("clouds")
        if self.target_frame and msg.header.frame_id != self.target_frame:
            self.reject_cloud(
                "frame_mismatch",
                f"cloud frame {msg.header.frame_id!r} != checkpoint perception target_frame "
                f"{self.target_frame!r}: refusing it",
            )
            return
        try:
            points = decode_cloud(msg, self.channels == 6)
            self.history.add_cloud(stamp, points, now)
        except oh.ObservationError as exc:
            self.reject_cloud(exc.reason, str(exc))
            return
        except ValueError as exc:  # PerceptionError: malformed PointCloud2
            self.reject_cloud(oh.BAD_CLOUD, f"cannot decode dp/points: {exc}")
            return
        self.frame_added(now)

    def on_image(self, msg: Image) -> None:
        """Converts a camera/image frame (image policies) and adds it to the history."""
        self.clouds_received += 1
        now = now_sec(self)
        self.check_clock(now)
        stamp = stamp_to_sec(msg.header.stamp)
        self.diag.set("stamp-to-now offset s", now - stamp)
        self.diag.tick("images")
        try:
            rgb = image_msg_to_rgb(msg)  # ImageConversionError (a ValueError): encoding, step, size
            self.history.add_cloud(stamp, fit_image(rgb, self.image_shape), now)
        except oh.ObservationError as exc:
            self.reject_cloud(exc.reason, str(exc), "image")
            return
        except ValueError as exc:
            self.reject_cloud(oh.BAD_CLOUD, f"cannot convert camera/image: {exc}", "image")
            return
        self.frame_added(now)

    def frame_added(self, now: float) -> None:
        """A cloud / image was accepted: camera-rate bookkeeping; run a waiting tick's inference."""
        self._arrivals.append(now)
        if self._waiting_since is not None:  # a tick waited for this cloud (sync_wait_s)
            self.diag.latency("sync wait", now - self._waiting_since)
            self._waiting_since = None
            self.infer(now)

    def reject_cloud(self, reason: str, message: str, noun: str = "cloud") -> None:
        """Counts, reports and logs (throttled) a refused cloud (or image)."""
        self.diag.count(f"rejected {noun}s ({reason})")
        if reason in (oh.BAD_CLOUD, "frame_mismatch"):
            self.diag.count("mismatches")
        self.diag.problem(f"{noun} rejected: {message}", ERROR)
        self.get_logger().error(f"{noun} rejected: {message}", throttle_duration_sec=2.0)

    def on_joint_states(self, msg: JointState) -> None:
        """Merges a (possibly partial) JointState by name."""
        self.joint_states_received += 1
        now = now_sec(self)
        stamp = stamp_to_sec(msg.header.stamp)
        if stamp == 0.0:
            stamp = now  # unstamped publisher: best effort
        try:
            if stamp - now > self.cfg.future_tolerance_s:
                raise ValueError(
                    f"stamped {stamp - now:.3f} s in the future (tolerance "
                    f"{self.cfg.future_tolerance_s:.3f} s): unsynchronized clocks?"
                )
            self.joints.update(stamp, list(msg.name), list(msg.position))
        except ValueError as exc:
            self.diag.count("rejected joint_states")
            self.diag.problem(f"joint_states rejected: {exc}", ERROR)
            self.get_logger().error(f"joint_states rejected: {exc}", throttle_duration_sec=2.0)

    def on_activate(self, request, response):
        """std_srvs/SetBool: start (true) or stop (false) publishing chunks."""
        was = self.active
        self.active = bool(request.data)
        if self.active and not was:
            # Start from observations made after activation: a history mixing clouds from before a
            # pause (or a reset of the scene) with new ones is not an observation the policy was
            # trained on. Never inpaint from a chunk of before the pause either.
            self.history.clear()
            self.prev_chunk = None
        self.diag.set("state", "active" if self.active else "inactive (call ~/activate)")
        response.success = True
        response.message = f"policy {'active' if self.active else 'inactive'} ({self.policy_id})"
        self.get_logger().info(response.message)
        return response

    # ------------------------------------------------------------------ perception parameters
    def poll_perception_params(self) -> None:
        """Asks the perception node for its parameters until it answers (non-blocking)."""
        if self.perception_checked or self._param_client is None:
            return
        if self._param_future is None:
            if not self._param_client.service_is_ready():
                self.diag.set(
                    "perception params", f"{self.cfg.perception_node} not reachable: crop/voxel unchecked"
                )
                return
            names = ["target_frame", "crop_min", "crop_max", "voxel_size", "num_points", "use_rgb"]
            self._param_future = self._param_client.call_async(GetParameters.Request(names=names))
            self._param_names = names
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

        got = {n: parameter_value_to_python(v) for n, v in zip(self._param_names, values, strict=False)}
        self.apply_perception_params(got)
        self.perception_checked = True
        self._param_timer.cancel()

    def apply_perception_params(self, got: dict) -> None:
        """Compares the perception node's parameters with the checkpoint's; warns or refuses."""
        if all(v is None for v in got.values()):
            self.diag.set("perception params", f"{self.cfg.perception_node} has none of {sorted(got)}")
            return
        hard, soft = [], []
        for key in ("target_frame", "num_points", "use_rgb"):
            if key in self.perception and got.get(key) is not None and got[key] != self.perception[key]:
                hard.append(f"{key}: perception {got[key]!r} vs checkpoint {self.perception[key]!r}")
        for key in ("crop_min", "crop_max", "voxel_size"):
            if key not in self.perception or got.get(key) is None:
                continue
            a = np.atleast_1d(np.asarray(got[key], float))
            b = np.atleast_1d(np.asarray(self.perception[key], float))
            if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
                soft.append(f"{key}: perception {a.tolist()} vs checkpoint {b.tolist()}")
        if not hard and not soft:
            self.diag.set("perception params", "match the checkpoint")
            return
        self.diag.count("mismatches", len(hard) + len(soft))
        text = "; ".join(hard + soft)
        self.diag.set("perception params", f"MISMATCH: {text}")
        if hard or self.cfg.strict_perception:
            self.refusal = f"perception parameters differ from the checkpoint, refusing: {text}"
            self.get_logger().error(self.refusal)
        else:
            self.diag.problem(f"perception crop/voxel differ from the checkpoint: {text}", WARN)
            self.get_logger().warning(
                f"perception crop/voxel differ from the checkpoint (set strict_perception to refuse): {text}"
            )

    # ------------------------------------------------------------------ markers
    def on_robot_description(self, msg: String) -> None:
        """Builds the FK model for dp/markers (skipped with a warning when it cannot)."""
        try:
            from dp_policy.markers import EndEffectorPath

            self.ee_path = EndEffectorPath(msg.data, self.cfg.ee_frame)
            if not self._marker_frame:
                self._marker_frame = self.ee_path.root_link
            self.diag.set("markers", f"{self.ee_path.ee_frame} in {self._marker_frame}")
        except (ImportError, ValueError) as exc:
            self.ee_path = None
            self.diag.set("markers", f"off: {exc}")
            self.get_logger().warning(f"dp/markers off: {exc}")

    def publish_markers(self, rows: np.ndarray) -> None:
        """Predicted end-effector path of the published rows."""
        from dp_policy.markers import path_marker_array

        try:
            fixed = {}
            others = [n for n in self.joints.names if n not in self.joint_names]
            if others:
                fixed = dict(zip(others, self.joints.latest(others)[1], strict=True))
            pts = self.ee_path.positions(rows, self.joint_names, fixed)
        except Exception as exc:  # markers are best effort
            self.diag.set("markers", f"failed: {exc}")
            return
        self.pub_markers.publish(path_marker_array(pts, self._marker_frame, self.get_clock().now().to_msg()))


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
