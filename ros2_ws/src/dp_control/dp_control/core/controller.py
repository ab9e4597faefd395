"""ControlCore: action chunks in, limited joint commands out, with an explicit safety state machine.

States (``ControlState``) and transitions::

    INACTIVE --enable--> ARMED --first chunk near the commanded state--> RUNNING
        ^                  |  \\--first chunk too far (max_start_distance)--> HOLDING
        |                  |                                                  |
        +----disable-------+------ (brakes to rest first if moving) ----------+
    RUNNING --no valid chunk for chunk_timeout--------------------> HOLDING (watchdog)
    RUNNING/ARMED --joint_states silent for state_timeout----------> HOLDING
    HOLDING --valid chunk near the commanded state, states fresh---> RUNNING (ramp-in, no jump)
    RUNNING/HOLDING --|commanded - measured| > max_tracking_error--> FAULT (latched; enable resets)
    INACTIVE/ARMED/HOLDING (at rest) --start_move / begin_external_move--> MOVING
    MOVING --start pose reached--> the state it came from (INACTIVE stays INACTIVE, else ARMED)
    MOVING --joint_states silent / tracking error / disable--> HOLDING / FAULT / braking (aborted)

HOLDING and FAULT brake the command to rest within the acceleration (and jerk) limits and hold it there.
``state`` and ``reason`` always say where the controller is and why.

The core never calls into ROS: the node feeds it chunks (``submit_chunk``) and measured joint
positions (``step``), and sends what ``step`` returns.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from .chunk import Chunk, ChunkError, RawChunk, validate_chunk
from .command import Command, ControlState, ControlStats
from .config import ControlConfig
from .gripper import GripperHysteresis
from .handover import blend_rows, ensemble_rows
from .interpolator import (
    BrakeReference,
    ChunkReference,
    Crossfade,
    HoldReference,
    JointInterpolator,
    prune,
)
from .limits import CLAMP_KINDS, JointLimits, MotionLimiter
from .preview import preview_trajectory
from .start_move import MinJerkMove, min_jerk_duration

_log = logging.getLogger(__name__)

#: Braking reference decelerates at this fraction of the acceleration limit (headroom for jitter).
BRAKE_FRACTION = 0.9
_REST_VELOCITY = 1e-6  # rad/s: "at rest"


class ControlCore:
    """Turns validated chunks into a limited 50 Hz command stream (see module docstring).

    Args:
        cfg: the validated configuration.
        limits: limits of ``cfg.joint_names`` (same order).
    """

    def __init__(self, cfg: ControlConfig, limits: JointLimits) -> None:
        self.cfg = cfg
        self.stats = ControlStats()
        self.state = ControlState.INACTIVE
        self.reason = "not enabled"
        self._hold_kind = ""
        self.q_cmd: np.ndarray | None = None
        self.v_cmd: np.ndarray | None = None
        self.a_cmd: np.ndarray | None = None  # finite-difference acceleration of the last step
        self.t_cmd: float | None = None
        self._ref = None  # what the limiter follows: hold/brake, ramp-in or the chunk stream
        self._stream = None  # chunk-following reference (hand-over crossfades), None when holding
        self._ramp: Crossfade | None = None  # ramp-in from the held state into self._stream
        self._ref_end = -math.inf  # end of the newest chunk's rows (blend coverage)
        self.chunk: Chunk | None = None
        self._history: list[tuple[Chunk, ChunkReference]] = []
        self._gripper: float | None = None
        self.gripper_filter = GripperHysteresis(cfg.gripper_hysteresis_m, cfg.gripper_min_dwell_s)
        self._measured: np.ndarray | None = None
        self._last_state_time: float | None = None
        self._last_chunk_time = -math.inf
        self._disable_pending = False
        self._move: MinJerkMove | None = None  # the start move in progress (streamed by the core)
        self._move_external = False  # the start move is executed by MoveIt (nothing is sent)
        self._after_move = ControlState.INACTIVE
        #: Outcome of the last start move, for /diagnostics ("none", "moving ...", "done ...", ...).
        self.move_result = "none"
        self.set_limits(limits)

    # ------------------------------------------------------------------ configuration
    def set_limits(self, limits: JointLimits) -> None:
        """Use new limits (e.g. from robot_description) from the next tick on."""
        if tuple(limits.names) != tuple(self.cfg.joint_names):
            raise ValueError(f"limits are for joints {list(limits.names)}; expected {self.cfg.joint_names}")
        self.limits = limits
        self.limiter = MotionLimiter(limits, self.cfg.period_s, self.cfg.position_margin)

    @property
    def n_joints(self) -> int:
        """Number of controlled arm joints."""
        return len(self.cfg.joint_names)

    # ------------------------------------------------------------------ state machine
    def enable(self) -> str:
        """Arm the controller (INACTIVE/FAULT -> ARMED). Returns a message for the service reply."""
        if self._disable_pending:
            self._disable_pending = False
            self._set_state(ControlState.HOLDING, "re-enabled while braking; waiting for a chunk")
            self._hold_kind = "disable"
            return "re-enabled"
        if self.state == ControlState.MOVING:
            self._after_move = ControlState.ARMED
            return "armed after the start move"
        if self.state in (ControlState.INACTIVE, ControlState.FAULT):
            self._reset_command()
            self._set_state(ControlState.ARMED, "enabled; waiting for the first chunk")
            return "armed"
        return f"already enabled ({self.state.value})"

    def disable(self) -> str:
        """Stop following chunks: brake to rest (HOLDING) if moving, then INACTIVE."""
        if self.state == ControlState.INACTIVE:
            return "already inactive"
        if self.state == ControlState.MOVING:
            self._abort_move("disable requested")
            if self._move_external:
                self._move_external = False
                self._go_inactive("disabled (the MoveIt execution is not stopped by control_node)")
                return "inactive"
        if self.v_cmd is not None and np.abs(self.v_cmd).max() > _REST_VELOCITY:
            self._disable_pending = True
            self._hold("disable", "disable requested: braking to rest")
            return "braking to rest, then inactive"
        self._go_inactive("disabled")
        return "inactive"

    def hold(self, kind: str, reason: str, fault: bool = False) -> None:
        """Brake to rest and hold (e.g. the node's MoveIt validity check failed)."""
        self._hold(kind, reason, fault=fault)

    # ------------------------------------------------------------------ start move
    def _move_refusal(self) -> str | None:
        if self.state == ControlState.RUNNING:
            return "refused: the controller is following chunks; disable it first (~/enable false)"
        if self.state == ControlState.MOVING:
            return "refused: a start move is already in progress"
        if self.state == ControlState.FAULT:
            return f"refused: fault ({self.reason}); re-enable or disable first"
        if self._disable_pending or (self.v_cmd is not None and np.abs(self.v_cmd).max() > _REST_VELOCITY):
            return "refused: the command is still braking to rest; try again when it is at rest"
        return None

    def start_move(self, goal: np.ndarray, t_now: float) -> str:
        """Move to ``goal`` (n,) with a jerk-limited quintic streamed through the limiter (MOVING).

        Returns:
            ``"started: ..."`` or ``"refused: ..."`` (following chunks, fault, braking, no or silent
            joint_states, goal outside the soft position limits).
        """
        goal = np.asarray(goal, dtype=np.float64)
        if goal.shape != (self.n_joints,) or not np.isfinite(goal).all():
            return f"refused: start pose must be {self.n_joints} finite joint positions. Got {goal.tolist()}"
        refusal = self._move_refusal()
        if refusal:
            return refusal
        lo, hi = self.limiter.lower, self.limiter.upper
        out = (goal < lo) | (goal > hi)
        if out.any():
            j = int(np.argmax(out))
            return (
                f"refused: start pose {self.cfg.joint_names[j]}={goal[j]:.4f} is outside the soft position"
                f" limits [{lo[j]:.4f}, {hi[j]:.4f}] (position_margin={self.cfg.position_margin})"
            )
        if self._measured is None or self._states_silent(t_now):
            return "refused: no recent joint_states"
        if self.q_cmd is None:
            self.q_cmd = self._measured.copy()
            self.v_cmd = np.zeros(self.n_joints)
            self.a_cmd = np.zeros(self.n_joints)
            self.t_cmd = t_now
        lim = self.limits
        duration = min_jerk_duration(
            goal - self.q_cmd, lim.max_velocity, lim.max_acceleration, lim.max_jerk, self.cfg.period_s
        )
        inactive = self.state == ControlState.INACTIVE
        self._after_move = ControlState.INACTIVE if inactive else ControlState.ARMED
        self._move = MinJerkMove(self.q_cmd, goal, t_now, duration)
        self._move_external = False
        self._ref = self._move
        self._stream = self._ramp = None
        self.chunk = None
        self._history = []
        dist = float(np.abs(goal - self.q_cmd).max())
        self.move_result = f"moving ({duration:.2f} s, largest joint distance {dist:.3f} rad)"
        self._set_state(ControlState.MOVING, "moving to the start pose")
        return f"started: {duration:.2f} s to the start pose (largest joint distance {dist:.3f} rad)"

    def begin_external_move(self, t_now: float) -> str:
        """MOVING while MoveIt executes the start move: nothing is commanded until ``end_external_move``."""
        refusal = self._move_refusal()
        if refusal:
            return refusal
        if self._measured is None or self._states_silent(t_now):
            return "refused: no recent joint_states"
        inactive = self.state == ControlState.INACTIVE
        self._after_move = ControlState.INACTIVE if inactive else ControlState.ARMED
        self._reset_command()
        self._move = None
        self._move_external = True
        self.move_result = "moving (MoveIt: planning and executing)"
        self._set_state(ControlState.MOVING, "MoveIt is moving the arm to the start pose")
        return "started"

    def end_external_move(self, ok: bool, message: str) -> None:
        """The MoveIt move ended: back to the state before it (the command restarts from joint_states)."""
        if not (self._move_external and self.state == ControlState.MOVING):
            return  # disabled meanwhile
        self._move_external = False
        self.move_result = ("done: " if ok else "failed: ") + message
        self._finish_move("start pose reached (MoveIt)" if ok else f"start move failed: {message}")

    def _finish_move(self, reason: str) -> None:
        self._move = None
        if self._after_move == ControlState.INACTIVE:
            self._go_inactive(reason)
            return
        if self.q_cmd is None:  # after MoveIt: re-captured from joint_states on the next step
            self._reset_command()
        else:  # after the streamed move: hold the reached pose (no step in the command)
            self._ref = HoldReference(self.q_cmd)
        self._set_state(ControlState.ARMED, reason + "; waiting for the first chunk")

    def _abort_move(self, why: str) -> None:
        if self.state == ControlState.MOVING:
            self.move_result = f"aborted: {why}"
            self._move = None

    def _go_inactive(self, reason: str) -> None:
        self._disable_pending = False
        self._reset_command()
        self._set_state(ControlState.INACTIVE, reason)

    def _reset_command(self) -> None:
        self.q_cmd = self.v_cmd = self.a_cmd = self.t_cmd = None
        self._ref = self._stream = self._ramp = None
        self.chunk = None
        self._history = []
        self._ref_end = -math.inf
        # A gripper target belongs to the chunks it came from: after disable / re-enable (a new
        # episode, a reset hand) no gripper command is sent until a chunk is followed again.
        self._gripper = None
        self.gripper_filter.reset()

    def _set_state(self, state: ControlState, reason: str) -> None:
        if state != self.state or reason != self.reason:
            _log.info("control state %s -> %s: %s", self.state.value, state.value, reason)
        self.state = state
        self.reason = reason

    def _hold(self, kind: str, reason: str, fault: bool = False) -> None:
        self._abort_move(reason)
        new_state = ControlState.FAULT if fault else ControlState.HOLDING
        entering = self.state != new_state or self._hold_kind != kind
        if entering:
            self.stats.holds[kind] += 1
            self.stats.last_hold_reason = reason
        if self.state not in (ControlState.HOLDING, ControlState.FAULT) and self.q_cmd is not None:
            self._ref = BrakeReference(
                self.t_cmd, self.q_cmd, self.v_cmd, BRAKE_FRACTION * self.limits.max_acceleration
            )
        self.chunk = None
        self._stream = self._ramp = None
        self._history = []
        self._hold_kind = kind
        self._set_state(new_state, reason)

    # ------------------------------------------------------------------ chunks
    def submit_chunk(self, raw: RawChunk, t_now: float) -> str:
        """Validate and schedule a received chunk.

        Args:
            raw: the chunk as received.
            t_now: [s] arrival time on the control clock.

        Returns:
            ``"engaged"`` (first chunk, ramp-in starts), ``"accepted"`` (hand-over),
            ``"ignored: ..."`` (valid but not usable now: inactive, fault, no joint_states) or
            ``"refused: ..."`` (first chunk too far from the commanded state -> HOLDING).

        Raises:
            ChunkError: the chunk is invalid (counted in ``stats.rejected``).
        """
        try:
            chunk = validate_chunk(
                raw,
                self.cfg.joint_names,
                self.cfg.gripper_joint,
                t_now,
                self.cfg.max_future_s,
                self.cfg.max_age_s,
            )
        except ChunkError as exc:
            self.stats.rejected[exc.reason] += 1
            raise
        if (
            self.state in (ControlState.INACTIVE, ControlState.FAULT, ControlState.MOVING)
            or self._disable_pending
        ):
            self.stats.chunks_ignored += 1
            return f"ignored: controller is {self.state.value}"
        if self.state == ControlState.RUNNING:
            self._handover(chunk, t_now)
            self._last_chunk_time = t_now
            self.stats.chunks_accepted += 1
            return "accepted"
        # ARMED or HOLDING: engagement.
        if self.q_cmd is None:
            self.stats.chunks_ignored += 1
            return "ignored: waiting for joint_states"
        if self._states_silent(t_now):
            self.stats.chunks_ignored += 1
            return "ignored: joint_states silent"
        target = chunk.first_future_row(t_now)
        dist = np.abs(target - self.q_cmd)
        worst = int(np.argmax(dist))
        if dist[worst] > self.cfg.max_start_distance:
            self.stats.rejected["start_distance"] += 1
            reason = (
                f"first chunk too far: {self.cfg.joint_names[worst]} is {dist[worst]:.3f} rad from"
                f" the commanded state; at most max_start_distance={self.cfg.max_start_distance}"
            )
            self._hold("start_distance", reason)
            return "refused: " + reason
        new = self._chunk_reference(chunk, *chunk.schedule(t_now))
        old = self._ref if self._ref is not None else HoldReference(self.q_cmd)
        self._stream = new
        self._ramp = Crossfade(old, new, t_now, self.cfg.ramp_in_s)
        self._ref = self._ramp
        self._ref_end = float(chunk.times[-1])
        self._history = [(chunk, new)]
        self.chunk = chunk
        self._last_chunk_time = t_now
        self._hold_kind = ""
        self.stats.chunks_accepted += 1
        self._set_state(ControlState.RUNNING, f"following chunks (engaged on chunk {chunk.chunk_id})")
        return "engaged"

    def _chunk_reference(self, chunk: Chunk, times: np.ndarray, rows: np.ndarray) -> ChunkReference:
        return ChunkReference(JointInterpolator(times, rows, self.cfg.interpolation))

    def _handover(self, chunk: Chunk, t_now: float) -> None:
        """Combine the new chunk with the current reference (resampled at the new row times)."""
        times, rows = chunk.schedule(t_now)
        mode = self.cfg.handover
        self._stream = prune(self._stream, t_now)
        if mode == "blend" and self._stream is not None:
            old_q = self._stream.sample(times)[0]
            rows = blend_rows(times, rows, old_q, t_now, self.cfg.blend_window_s, self._ref_end)
        elif mode == "ensemble":
            own = self._chunk_reference(chunk, chunk.times, chunk.arm)
            hist = [(c, r) for c, r in self._history if c.times[-1] >= t_now]
            hist.append((chunk, own))
            hist = hist[-self.cfg.ensemble_max_chunks :]
            self._history = hist
            rows = ensemble_rows(times, rows.shape[1], hist, self.cfg.ensemble_decay)
        new = self._chunk_reference(chunk, times, rows)
        if mode != "ensemble":
            self._history = [(chunk, new)]
        self._stream = Crossfade(self._stream, new, t_now, self.cfg.handover_s)
        if self._ramp is not None and t_now < self._ramp.t_end:
            self._ramp.new = self._stream  # keep ramping in, now towards the updated stream
            self._ref = self._ramp
        else:
            self._ramp = None
            self._ref = self._stream
        self._ref_end = float(chunk.times[-1])
        self.chunk = chunk

    # ------------------------------------------------------------------ control loop
    def _states_silent(self, t_now: float) -> bool:
        return self._last_state_time is None or (t_now - self._last_state_time > self.cfg.state_timeout)

    def step(
        self,
        t_now: float,
        measured_positions: np.ndarray | None,
        measured_time: float | None = None,
    ) -> Command | None:
        """Advance the controller to ``t_now`` and return this tick's command.

        Args:
            t_now: [s] tick time on the control clock.
            measured_positions: (n,) newest measured arm positions (``cfg.joint_names`` order), or
                None when there is no new measurement.
            measured_time: [s] when that measurement arrived (default ``t_now``).

        Returns:
            The command, or None when nothing must be sent (INACTIVE, or no joint_states yet).
        """
        if measured_positions is not None:
            self._measured = np.asarray(measured_positions, dtype=np.float64)
            self._last_state_time = t_now if measured_time is None else float(measured_time)
        if self.state == ControlState.INACTIVE:
            return None
        if self.state == ControlState.MOVING and self._move_external:
            return None  # MoveIt's trajectory execution commands the arm
        if self.q_cmd is None:
            if self._measured is None:
                self.reason = "enabled; waiting for joint_states"
                return None
            self.q_cmd = self._measured.copy()
            self.v_cmd = np.zeros(self.n_joints)
            self.a_cmd = np.zeros(self.n_joints)
            self.t_cmd = t_now
            self._ref = HoldReference(self.q_cmd)
        dt = t_now - self.t_cmd
        if dt <= 0.0 and self.stats.ticks > 0:
            return self._command(t_now, clamped=False)  # clock did not advance (sim paused)
        self._safety_checks(t_now)
        self._ref = prune(self._ref, t_now)
        q_ref, v_ref = self._ref.sample(t_now)
        period = self.cfg.period_s
        dt = min(max(dt, 0.5 * period), 2.0 * period)
        res = self.limiter.step(self.q_cmd, self.v_cmd, q_ref, v_ref, dt, a_prev=self.a_cmd)
        self.q_cmd, self.v_cmd, self.a_cmd = res.positions, res.velocities, res.accelerations
        self.t_cmd = t_now
        self.stats.ticks += 1
        clamped = bool(res.clamped.any())
        if clamped:
            self.stats.clamp_ticks += 1
            for kind, active in zip(CLAMP_KINDS, res.kinds, strict=True):
                if active:
                    self.stats.clamps[kind] += 1
        if self.chunk is not None and self.chunk.gripper is not None:
            self._gripper = self.gripper_filter.update(self.chunk.gripper_at(t_now), t_now)
        if (
            self.state == ControlState.MOVING
            and self._move is not None
            and t_now >= self._move.t_end
            and np.abs(self.v_cmd).max() <= _REST_VELOCITY
            and np.abs(self.q_cmd - self._move.q1).max() <= 1e-9
        ):
            cmd = self._command(t_now, clamped)
            self.move_result = f"done: start pose reached at t={t_now:.3f} s"
            self._finish_move("start pose reached")
            return cmd
        if self._disable_pending and np.abs(self.v_cmd).max() <= _REST_VELOCITY:
            cmd = self._command(t_now, clamped)
            self._go_inactive("disabled")
            return cmd
        return self._command(t_now, clamped)

    def _safety_checks(self, t_now: float) -> None:
        st = self.state
        if st == ControlState.FAULT:
            return
        if self._states_silent(t_now):
            if st in (ControlState.ARMED, ControlState.RUNNING, ControlState.MOVING) or (
                st == ControlState.HOLDING and self._hold_kind != "state_timeout"
            ):
                age = math.inf if self._last_state_time is None else t_now - self._last_state_time
                self._hold(
                    "state_timeout",
                    f"joint_states silent for {age:.3f} s > state_timeout={self.cfg.state_timeout}",
                )
            return
        tracked = (ControlState.RUNNING, ControlState.HOLDING, ControlState.MOVING)
        if st in tracked and self._measured is not None:
            err = np.abs(self._measured - self.q_cmd)
            worst = int(np.argmax(err))
            if err[worst] > self.cfg.max_tracking_error:
                self._hold(
                    "tracking_error",
                    f"tracking error {err[worst]:.3f} rad on {self.cfg.joint_names[worst]} > "
                    f"max_tracking_error={self.cfg.max_tracking_error}; re-enable to resume",
                    fault=True,
                )
                return
        if st == ControlState.RUNNING and t_now - self._last_chunk_time > self.cfg.chunk_timeout:
            self._hold(
                "chunk_timeout",
                f"no valid chunk for {t_now - self._last_chunk_time:.3f} s > "
                f"chunk_timeout={self.cfg.chunk_timeout}",
            )

    def _command(self, t_now: float, clamped: bool) -> Command:
        times, pos, vel = preview_trajectory(
            self._ref, self.limiter, self.q_cmd, self.v_cmd, t_now, self.cfg.preview_s, a_cmd=self.a_cmd
        )
        age = None
        if self.state == ControlState.RUNNING and self.chunk is not None:
            age = t_now - self.chunk.stamp
        return Command(
            t=t_now,
            positions=self.q_cmd.copy(),
            velocities=self.v_cmd.copy(),
            gripper=self._gripper,
            preview_times=times,
            preview_positions=pos,
            preview_velocities=vel,
            state=self.state,
            reason=self.reason,
            clamped=clamped,
            chunk_age=age,
        )
