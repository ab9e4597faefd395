"""The command preview: a limited continuation of the command that ends at rest.

A trajectory controller receives, with every tick's command, the next ``preview_s`` of motion: the
reference followed through the :class:`~dp_control.core.limits.MotionLimiter`, then braked to rest
at full deceleration (with a binding jerk limit: by the limiter's jerk-limited brake), so the arm
comes to rest if control stops sending.
"""

from __future__ import annotations

import math

import numpy as np

from .limits import MotionLimiter


def preview_unlimited(
    limiter: MotionLimiter,
    q_cmd: np.ndarray,
    v_cmd: np.ndarray,
    q_ref: np.ndarray,
    T: float,
    a_cmd: np.ndarray | None = None,
) -> np.ndarray | None:
    """The reference samples themselves when they already satisfy every limit, else None.

    Vectorized fast path of the preview (the common case while following smooth chunks): the
    samples are accepted when, starting from the current command, velocity and acceleration stay
    within limits and every point can still brake before the soft position limits.

    With a binding jerk limit the samples must also keep the jerk limit (from ``a_cmd``), stay
    inside the soft limits, and end in a state from which the jerk-limited brake is viable.

    Args:
        q_cmd, v_cmd: (n,) current command; a_cmd: (n,) its last acceleration (None = 0).
        q_ref: (M, n) reference positions at the preview times, spaced by ``T`` [s].
    """
    q = np.vstack([q_cmd[None, :], q_ref])
    v = np.diff(q, axis=0) / T
    if (np.abs(v) > limiter.v_max).any():
        return None
    dv = np.diff(np.vstack([v_cmd[None, :], v]), axis=0)
    if (np.abs(dv) > limiter.a_max * T).any():
        return None
    if limiter.jerk_active(T):
        a = dv / T
        a0 = np.zeros_like(v_cmd) if a_cmd is None else a_cmd
        if (np.abs(np.diff(np.vstack([a0[None, :], a]), axis=0)) > limiter.j_max * T).any():
            return None
        if (q_ref > limiter.upper).any() or (q_ref < limiter.lower).any():
            return None
        if not limiter.viable(q_ref[-1], v[-1], a[-1], T).all():
            return None
        return q_ref
    reach = q[1:] + v * np.abs(v) / (2.0 * limiter.a_max)
    if (reach > limiter.upper).any() or (reach < limiter.lower).any():
        return None
    return q_ref


def preview_trajectory(
    ref,
    limiter: MotionLimiter,
    q_cmd: np.ndarray,
    v_cmd: np.ndarray,
    t_now: float,
    preview_s: float,
    fast_path: bool = True,
    a_cmd: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Limited continuation: follow ``ref`` for ``preview_s``, then brake to rest.

    Args:
        ref: the reference the command follows (``sample(t) -> (q, v)``).
        q_cmd, v_cmd: (n,) current command at ``t_now`` [s]; a_cmd: its last acceleration (jerk).
        fast_path: try :func:`preview_unlimited` before running the limiter step by step (the
            results are equal; False is for tests).

    Returns:
        (times (M,), positions (M, n), velocities (M, n)) after ``t_now``, spaced by the limiter's
        period; the last velocity is 0. With a binding jerk limit and a reference that is not
        feasible as sampled, the preview is the jerk-limited brake from the command.
    """
    T = limiter.period_s
    m = max(1, int(round(preview_s / T)))
    ts = t_now + T * np.arange(1, m + 1)
    q_ref, v_ref = ref.sample(ts)
    out_q = preview_unlimited(limiter, q_cmd, v_cmd, q_ref, T, a_cmd) if fast_path else None
    a = np.zeros_like(v_cmd) if a_cmd is None else a_cmd
    if out_q is None and limiter.jerk_active(T):
        # Jerk-limited and the reference is not feasible as is: the preview is the limiter's brake
        # from the command (viable by its invariant; running the jerk-limited limiter step by step
        # for every preview point costs too much at 50 Hz). The next tick's command follows the
        # reference again.
        tail, _, _ = limiter.brake_sequence(q_cmd, v_cmd, a, T)
        out_q = tail if tail.shape[0] else q_cmd[None, :].copy()
        return _timed(out_q, q_cmd, t_now, T)
    if out_q is None:  # the reference is not feasible as is: run the limiter step by step
        q, v = q_cmd, v_cmd
        out_q = np.empty((m, q_cmd.shape[0]))
        for j in range(m):
            r = limiter.step(q, v, q_ref[j], v_ref[j], T, classify=False, a_prev=a)
            q, v, a = r.positions, r.velocities, r.accelerations
            out_q[j] = q
    else:
        q = out_q[-1]
        v_prev = v_cmd if m == 1 else (out_q[-2] - (out_q[-3] if m > 2 else q_cmd)) / T
        v = (out_q[-1] - (out_q[-2] if m > 1 else q_cmd)) / T
        a = (v - v_prev) / T
    if limiter.jerk_active(T):
        # Then the jerk-limited brake to rest (viable by the limiter's invariant).
        tail, _, _ = limiter.brake_sequence(q, v, a, T)
        if tail.shape[0]:
            out_q = np.vstack([out_q, tail])
    else:
        # Then brake at full deceleration (always feasible under the limiter's invariant).
        a = limiter.a_max
        n_brake = int(math.ceil(float(np.max(np.abs(v) / a)) / T - 1e-9))
        if n_brake > 0:
            steps = np.arange(1, n_brake + 1)[:, None]
            v_tail = np.sign(v) * np.maximum(np.abs(v) - a * T * steps, 0.0)
            out_q = np.vstack([out_q, q + np.cumsum(v_tail, axis=0) * T])
    return _timed(out_q, q_cmd, t_now, T)


def _timed(pos: np.ndarray, q_cmd: np.ndarray, t_now: float, T: float):
    """(times, positions, velocities) of preview points ``pos`` one period apart after ``t_now``.

    Velocity at each point: central difference from ``q_cmd``; the last point is at rest.
    """
    times = t_now + T * np.arange(1, pos.shape[0] + 1)
    padded = np.vstack([q_cmd[None, :], pos, pos[-1:]])
    vel = (padded[2:] - padded[:-2]) / (2.0 * T)
    vel[-1] = 0.0
    return times, pos, vel
