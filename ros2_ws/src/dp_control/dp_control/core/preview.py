"""The command preview: a limited continuation of the command that ends at rest.

A trajectory controller receives, with every tick's command, the next ``preview_s`` of motion: the
reference followed through the :class:`~dp_control.core.limits.MotionLimiter`, then braked to rest
at full deceleration, so the arm comes to rest if control stops sending.
"""

from __future__ import annotations

import math

import numpy as np

from .limits import MotionLimiter


def preview_unlimited(
    limiter: MotionLimiter, q_cmd: np.ndarray, v_cmd: np.ndarray, q_ref: np.ndarray, T: float
) -> np.ndarray | None:
    """The reference samples themselves when they already satisfy every limit, else None.

    Vectorized fast path of the preview (the common case while following smooth chunks): the
    samples are accepted when, starting from the current command, velocity and acceleration stay
    within limits and every point can still brake before the soft position limits.

    Args:
        q_cmd, v_cmd: (n,) current command.
        q_ref: (M, n) reference positions at the preview times, spaced by ``T`` [s].
    """
    q = np.vstack([q_cmd[None, :], q_ref])
    v = np.diff(q, axis=0) / T
    if (np.abs(v) > limiter.v_max).any():
        return None
    dv = np.diff(np.vstack([v_cmd[None, :], v]), axis=0)
    if (np.abs(dv) > limiter.a_max * T).any():
        return None
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Limited continuation: follow ``ref`` for ``preview_s``, then brake to rest.

    Args:
        ref: the reference the command follows (``sample(t) -> (q, v)``).
        q_cmd, v_cmd: (n,) current command at ``t_now`` [s].
        fast_path: try :func:`preview_unlimited` before running the limiter step by step (the
            results are equal; False is for tests).

    Returns:
        (times (M,), positions (M, n), velocities (M, n)) after ``t_now``, spaced by the limiter's
        period; the last velocity is 0.
    """
    T = limiter.period_s
    m = max(1, int(round(preview_s / T)))
    ts = t_now + T * np.arange(1, m + 1)
    q_ref, v_ref = ref.sample(ts)
    out_q = preview_unlimited(limiter, q_cmd, v_cmd, q_ref, T) if fast_path else None
    if out_q is None:  # the reference is not feasible as is: run the limiter step by step
        q, v = q_cmd, v_cmd
        out_q = np.empty((m, q_cmd.shape[0]))
        for j in range(m):
            r = limiter.step(q, v, q_ref[j], v_ref[j], T, classify=False)
            q, v = r.positions, r.velocities
            out_q[j] = q
    else:
        q = out_q[-1]
        v = (out_q[-1] - (out_q[-2] if m > 1 else q_cmd)) / T
    # Then brake at full deceleration (always feasible under the limiter's invariant).
    a = limiter.a_max
    n_brake = int(math.ceil(float(np.max(np.abs(v) / a)) / T - 1e-9))
    if n_brake > 0:
        steps = np.arange(1, n_brake + 1)[:, None]
        v_tail = np.sign(v) * np.maximum(np.abs(v) - a * T * steps, 0.0)
        out_q = np.vstack([out_q, q + np.cumsum(v_tail, axis=0) * T])
    pos = out_q
    times = t_now + T * np.arange(1, pos.shape[0] + 1)
    # Velocity at each point: central difference; the last point is at rest.
    padded = np.vstack([q_cmd[None, :], pos, pos[-1:]])
    vel = (padded[2:] - padded[:-2]) / (2.0 * T)
    vel[-1] = 0.0
    return times, pos, vel
