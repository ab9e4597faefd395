"""The policy tick, once: observation history -> inference -> delta -> inpainting -> chunk rows (ROS-free).

policy_node, dp_eval's stepped replay and any in-process loop drive the same :class:`PolicyRunner`;
they differ only in where frames, joint states and "now" come from. Stamps are integer nanoseconds
of the node clock; a chunk's stamp is its newest frame's stamp, exactly.

Timeline of one chunk (n_obs_steps = 2, horizon = 16, dt = 0.1 s)::

    model rows     0    1    2   ...   15
    time        t-dt    t  t+dt  ... t+14dt     t = stamp of the newest frame ("now")
    published          |<-- rows 1..15 = ActionChunk rows 0..14 -->|
    inpainted     |<-- n_obs_steps-1 + inpaint_rows -->|  (previous chunk resampled at these times)

A tick is ``prepare(now_ns)`` (fast: builds the observation, the inpainting prefix and the delta
base) followed by ``infer(prepared)`` (the forward pass), so a node can run the second part off its
executor thread; ``tick(now_ns)`` does both. Each returns a :class:`Chunk` or a :class:`NoChunk`
(reason for /diagnostics). Frames are clouds ``(N, 3|6)`` float32 (DP3, state-only) or RGB images
``(H, W, 3)`` uint8 of the checkpoint's image_shape (image Diffusion Policy).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dp_common.core.joint_states import JointStateBuffer
from dp_common.core.time import ns_to_s, s_to_ns
from dp_policy.core import observations as oh
from dp_policy.core.checkpoint import CheckpointError
from dp_policy.core.node_config import PolicyNodeConfig

WARN, ERROR = "warn", "error"
# Reasons of a tick without chunk besides the history's (oh.NO_CLOUD, oh.STALE, ...).
INFERENCE_ERROR = "inference_error"
NON_FINITE = "non_finite_actions"


@dataclass(frozen=True)
class Chunk:
    """One published chunk: ``rows[k]`` targets ``stamp_ns + k * dt`` (absolute joint positions).

    Attributes:
        stamp_ns: the newest observation's stamp, integer ns.
        rows: (horizon - n_obs_steps + 1, action_dim) float32.
        obs_stamps_ns: stamps of the observation steps, oldest first.
        inference_s: wall time of the forward pass, s.
    """

    stamp_ns: int
    rows: np.ndarray
    joint_names: tuple[str, ...]
    dt: float
    chunk_id: int
    policy_id: str
    action_space: str
    obs_stamps_ns: tuple[int, ...]
    inference_s: float


@dataclass(frozen=True)
class NoChunk:
    """Why a tick produced no chunk: a stable ``reason`` key, a message, a level (None: normal)."""

    reason: str
    message: str
    level: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A tick's input, ready for :meth:`PolicyRunner.infer` (built by :meth:`PolicyRunner.prepare`)."""

    now_ns: int
    obs: oh.Observation
    base: np.ndarray | None  # (A,) joint positions at "now" (delta policies), else None
    prefix: np.ndarray | None  # (n_obs_steps - 1 + inpaint_rows, A) in model units, else None
    inpaint_skipped: bool  # inpainting is on but the previous chunk does not cover the rows
    generation: int  # reset() count when prepared (a result of before a reset is not remembered)


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
        prev_times: (H,) times of the previous prediction's rows, s (any origin shared with `stamp`).
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


class PolicyRunner:
    """Runs a loaded policy on stamp-aligned observation histories (see module docstring).

    Args:
        policy: a :class:`dp_policy.core.Policy` (anything with ``config``, ``num_inference_steps``
            and ``predict_action_chunk(obs, generator=, prefix=)``).
        cfg: timing rules, seed, inpainting and warm-up (the node's parameters).
        policy_id: what chunks carry as ``policy_id`` (:func:`~dp_policy.core.node_config.policy_id_of`).

    Raises:
        CheckpointError: the checkpoint cannot drive a robot by joint names (see checks below).
        ValueError: ``inpaint_rows`` too large for the checkpoint's horizon.
    """

    def __init__(self, policy, cfg: PolicyNodeConfig, policy_id: str):
        self.policy = policy
        self.cfg = cfg
        self.policy_id = policy_id
        pc = policy.config
        self.pcfg = pc
        self.joint_names: tuple[str, ...] = tuple(pc.joint_names)
        if not self.joint_names:
            raise CheckpointError(
                "checkpoint config has no joint_names: cannot map joint_states to agent_pos"
            )
        if pc.state_dim != len(self.joint_names):
            raise CheckpointError(
                f"checkpoint state_dim {pc.state_dim} != {len(self.joint_names)} joint_names: agent_pos "
                "is built from the joint positions of joint_names"
            )
        if pc.action_dim != len(self.joint_names):
            raise CheckpointError(
                f"checkpoint action_dim {pc.action_dim} != {len(self.joint_names)} joint_names: chunk "
                "columns are named by joint_names"
            )
        self.delta_actions = pc.action_space == "joint_position_delta"
        self.uses_points = "point_cloud" in tuple(pc.obs_keys)
        self.image_key: str | None = None
        self.image_shape: tuple[int, ...] = ()
        if pc.encoder.type == "image":
            if len(pc.encoder.camera_keys) != 1:
                raise CheckpointError(
                    f"the policy runtime serves one camera; the checkpoint has "
                    f"{len(pc.encoder.camera_keys)}: {list(pc.encoder.camera_keys)}"
                )
            self.image_key = str(pc.encoder.camera_keys[0])
            self.image_shape = tuple(int(v) for v in pc.encoder.image_shape)
        self.perception = dict(pc.perception)
        self.num_points = int(self.perception.get("num_points", pc.encoder.num_points))
        self.channels = pc.encoder.point_channels
        self.target_frame = str(self.perception.get("target_frame", ""))
        self.n_obs = pc.n_obs_steps
        self.dt = float(pc.dt)
        self.horizon = pc.horizon
        if self.n_obs - 1 + cfg.inpaint_rows >= pc.horizon:
            raise ValueError(
                f"inpaint_rows must be < horizon - n_obs_steps + 1 = {pc.horizon - self.n_obs + 1}. "
                f"Got {cfg.inpaint_rows}"
            )
        self.history = oh.ObservationHistory(
            oh.ObsHistoryConfig(
                n_obs_steps=self.n_obs,
                dt=self.dt,
                num_points=self.num_points,
                point_channels=self.channels,
                obs_timeout_s=cfg.obs_timeout_s,
                future_tolerance_s=cfg.future_tolerance_s,
                step_tolerance_s=min(cfg.step_tolerance_s, 0.49 * self.dt),
                joint_tolerance_s=cfg.joint_tolerance_s,
                obs_key=self.image_key or "point_cloud",
                image_shape=self.image_shape,
            )
        )
        self.joints = JointStateBuffer(history_s=max(2.0, 2 * self.n_obs * self.dt + cfg.obs_timeout_s))
        self.chunk_id = 0
        self._prev: tuple[int, np.ndarray] | None = None  # (stamp_ns, (horizon, A) absolute rows)
        self._generation = 0
        self._last_now_ns: int | None = None
        self._lock = threading.Lock()  # chunk_id / previous chunk: infer() may run on another thread

    @property
    def noun(self) -> str:
        """'image' or 'cloud' (for messages)."""
        return self.history.noun

    # ------------------------------------------------------------------ inputs
    def add_frame(self, stamp_ns: int, frame: np.ndarray, now_ns: int) -> None:
        """Adds a cloud or image stamped `stamp_ns` received at `now_ns`.

        Raises:
            ObservationError: BAD_CLOUD, FUTURE or STALE (nothing stored).
        """
        self.history.add_cloud(stamp_ns, frame, now_ns)

    def add_joint_state(self, stamp_ns: int, names: Sequence[str], positions, now_ns: int) -> None:
        """Merges a (possibly partial) joint state by name; stamp 0 (unstamped) counts as `now_ns`.

        Raises:
            ValueError: future-stamped beyond ``future_tolerance_s``, NaN, length mismatch.
        """
        if stamp_ns == 0:
            stamp_ns = now_ns  # unstamped publisher: best effort
        if stamp_ns - now_ns > s_to_ns(self.cfg.future_tolerance_s):
            raise ValueError(
                f"stamped {ns_to_s(stamp_ns - now_ns):.3f} s in the future (tolerance "
                f"{self.cfg.future_tolerance_s:.3f} s): unsynchronized clocks?"
            )
        self.joints.update(ns_to_s(stamp_ns), list(names), list(positions))

    def check_clock(self, now_ns: int) -> bool:
        """Forgets all buffered data when the clock jumps back > 1 s (replay restarted); True then."""
        jumped = self._last_now_ns is not None and now_ns < self._last_now_ns - 1_000_000_000
        if jumped:
            self.reset()
            self.joints = JointStateBuffer(history_s=self.joints.history_s)
        self._last_now_ns = now_ns
        return jumped

    def reset(self) -> None:
        """Starts from fresh observations (activation, new episode): no history, no inpainting source.

        A history mixing frames from before a pause with new ones is not an observation the policy
        was trained on; a chunk from before the pause must not be inpainted from either.
        """
        self.history.clear()
        with self._lock:
            self._prev = None
            self._generation += 1

    # ------------------------------------------------------------------ the tick
    def prepare(self, now_ns: int) -> Prepared | NoChunk:
        """Builds the newest complete, not yet used observation history at node time `now_ns`."""
        try:
            obs = self.history.build(now_ns, self.joints, self.joint_names)
        except oh.ObservationError as exc:
            # An unchanged history is the normal case between camera frames: not a problem.
            level = WARN if exc.reason in (oh.NO_CLOUD, oh.INCOMPLETE) else ERROR
            return NoChunk(exc.reason, str(exc), None if exc.reason == oh.UNCHANGED else level)
        self.history.mark_used(obs)
        # Delta policies predict targets minus the joint positions at "now" (the newest observation).
        base = obs.agent_pos[-1].astype(np.float32) if self.delta_actions else None
        prefix, skipped = None, False
        with self._lock:
            prev, generation = self._prev, self._generation
        if self.cfg.inpaint_rows and prev is not None:
            prev_stamp_ns, prev_rows = prev
            # Times relative to the new stamp: epoch-scale float seconds would lose precision.
            rel_s = ns_to_s(prev_stamp_ns - obs.stamp_ns)
            prev_times = rel_s + (np.arange(len(prev_rows)) - (self.n_obs - 1)) * self.dt
            prefix = inpaint_prefix(prev_times, prev_rows, 0.0, self.n_obs, self.dt, self.cfg.inpaint_rows)
            skipped = prefix is None
            if prefix is not None and base is not None:
                prefix = (prefix - base).astype(np.float32)
        return Prepared(now_ns, obs, base, prefix, skipped, generation)

    def predict(self, policy_input: dict, chunk_id: int, prefix: np.ndarray | None = None) -> np.ndarray:
        """The policy's (horizon, A) prediction with this runner's noise: seed + chunk_id (-1: unseeded)."""
        import torch

        generator = None
        if self.cfg.seed >= 0:
            # The core draws the initial noise on the CPU with this generator (then moves it).
            generator = torch.Generator().manual_seed(self.cfg.seed + chunk_id)
        out = self.policy.predict_action_chunk(policy_input, generator=generator, prefix=prefix)
        return np.asarray(out, dtype=np.float32)

    def infer(self, prepared: Prepared) -> Chunk | NoChunk:
        """Runs the forward pass of a prepared tick; absolute rows from "now" on, or why not."""
        with self._lock:
            chunk_id = self.chunk_id
        t0 = time.perf_counter()
        try:
            actions = self.predict(prepared.obs.as_policy_input(), chunk_id, prepared.prefix)
        except Exception as exc:  # a failing forward pass must not kill the caller
            return NoChunk(INFERENCE_ERROR, f"inference failed: {type(exc).__name__}: {exc}", ERROR)
        elapsed = time.perf_counter() - t0
        if prepared.base is not None:
            actions = (actions + prepared.base).astype(np.float32)
        if not np.all(np.isfinite(actions)):
            return NoChunk(NON_FINITE, "policy returned NaN/Inf actions", ERROR)
        stamp_ns = prepared.obs.stamp_ns
        with self._lock:
            self.chunk_id = chunk_id + 1
            if prepared.generation == self._generation:
                self._prev = (stamp_ns, actions.astype(np.float64))
        return Chunk(
            stamp_ns=stamp_ns,
            rows=np.ascontiguousarray(actions[self.n_obs - 1 :], dtype=np.float32),
            joint_names=self.joint_names,
            dt=self.dt,
            chunk_id=chunk_id,
            policy_id=self.policy_id,
            action_space="joint_position",  # delta policies were converted to absolute targets
            obs_stamps_ns=prepared.obs.key,
            inference_s=elapsed,
        )

    def tick(self, now_ns: int) -> Chunk | NoChunk:
        """One tick at node time `now_ns`: :meth:`prepare` then :meth:`infer`."""
        prepared = self.prepare(now_ns)
        return prepared if isinstance(prepared, NoChunk) else self.infer(prepared)

    # ------------------------------------------------------------------ warm-up
    def dummy_observation(self) -> dict:
        """A plausible observation of the checkpoint's shapes (for warm-up)."""
        agent_pos = np.zeros((self.n_obs, self.pcfg.state_dim), np.float32)
        if self.image_key:  # the core's warm-up frames (mid-gray, checkpoint's shape)
            from dp_policy.core.vision import dummy_image_obs

            return {"agent_pos": agent_pos, **dummy_image_obs(self.pcfg)}
        rng = np.random.default_rng(0)
        lo = np.asarray(self.perception.get("crop_min", [-0.5] * 3), np.float32)
        hi = np.asarray(self.perception.get("crop_max", [0.5] * 3), np.float32)
        pts = rng.uniform(lo, hi, size=(self.n_obs, self.num_points, 3)).astype(np.float32)
        if self.channels == 6:
            pts = np.concatenate([pts, np.full_like(pts, 0.5)], axis=-1)
        return {"agent_pos": agent_pos, "point_cloud": pts}

    def warmup(self, iters: int | None = None) -> float:
        """Runs the policy `iters` (default cfg.warmup_iters) times; returns s per run (nan if none).

        Raises:
            CheckpointError: the policy returns another shape than (horizon, action_dim).
        """
        iters = self.cfg.warmup_iters if iters is None else iters
        if not iters:
            return math.nan
        obs = self.dummy_observation()
        t0 = time.perf_counter()
        for _ in range(iters):
            out = self.predict(obs, 0)
        expected = (self.pcfg.horizon, self.pcfg.action_dim)
        if out.shape != expected:
            raise CheckpointError(f"policy returned shape {out.shape}; expected {expected}")
        return (time.perf_counter() - t0) / iters


def runner_from_checkpoint(cfg: PolicyNodeConfig, policy=None) -> PolicyRunner:
    """A runner for ``cfg.checkpoint`` (loaded on ``cfg.device`` unless `policy` is given).

    Raises:
        CheckpointError: missing / unreadable / unsupported checkpoint, with the cause.
    """
    from dp_policy.core.node_config import checkpoint_dir, load_policy, policy_id_of, resolve_device

    path = checkpoint_dir(cfg.checkpoint)
    if policy is None:
        policy, path = load_policy(cfg.checkpoint, resolve_device(cfg.device), cfg.num_inference_steps)
    return PolicyRunner(policy, cfg, policy_id_of(path, getattr(policy, "policy_id", "")))
