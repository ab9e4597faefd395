"""The planned move to the policy's start pose without MoveIt: a jerk-limited minimum-jerk profile.

Each joint follows ``q0 + (q1 - q0) s(t / D)`` with the quintic ``s(u) = 10u^3 - 15u^4 + 6u^5``
(zero velocity and acceleration at both ends). Its peaks per unit distance are ``1.875 / D``
(velocity), ``10 / sqrt(3) / D^2`` (acceleration) and ``60 / D^3`` (jerk, at the ends), so the
shortest common duration ``D`` that keeps every joint within its velocity, acceleration and jerk
limits is the largest of the three per-joint bounds. Finite differences of a sampled quintic are
averages of its derivatives, so the sampled command keeps the same limits; the control core still
runs it through its limiter (position margin, the same checks as the policy's commands).
"""

from __future__ import annotations

import math

import numpy as np

from .interpolator import smoothstep5

#: Peaks of the quintic's derivatives on [0, 1]: velocity, acceleration, jerk.
PEAK_VELOCITY = 1.875
PEAK_ACCELERATION = 10.0 / math.sqrt(3.0)
PEAK_JERK = 60.0


def min_jerk_duration(
    distance: np.ndarray,
    max_velocity: np.ndarray,
    max_acceleration: np.ndarray,
    max_jerk: np.ndarray,
    period_s: float,
    margin: float = 1.05,
) -> float:
    """Shortest duration [s] of a common quintic move of ``distance`` (n,) within the limits (n,).

    Rounded up to whole periods, times ``margin`` (> 1: headroom for the sampling); 0 for no motion.
    """
    d = np.abs(np.asarray(distance, dtype=np.float64))
    if not (d > 0).any():
        return 0.0
    t_v = PEAK_VELOCITY * d / max_velocity
    t_a = np.sqrt(PEAK_ACCELERATION * d / max_acceleration)
    t_j = np.cbrt(PEAK_JERK * d / max_jerk)  # inf jerk limit -> 0
    duration = margin * float(np.max(np.maximum(np.maximum(t_v, t_a), t_j)))
    return math.ceil(duration / period_s - 1e-9) * period_s


class MinJerkMove:
    """Reference ``sample(t) -> (q, v)`` of a quintic move from ``q0`` at ``t0`` to ``q1`` in ``duration``."""

    def __init__(self, q0: np.ndarray, q1: np.ndarray, t0: float, duration: float) -> None:
        self.q0 = np.asarray(q0, dtype=np.float64).copy()
        self.q1 = np.asarray(q1, dtype=np.float64).copy()
        if self.q0.shape != self.q1.shape:
            raise ValueError(f"start and goal must have the same shape. Got {self.q0.shape}, {self.q1.shape}")
        self.t0 = float(t0)
        self.duration = float(duration)
        self.t_end = self.t0 + self.duration

    def sample(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position/velocity at ``t`` (a scalar gives (n,), an array (M, n)); holds ``q1`` after the end."""
        scalar = np.ndim(t) == 0
        tt = np.atleast_1d(np.asarray(t, dtype=np.float64))[:, None]
        if self.duration <= 0:
            q = np.broadcast_to(self.q1, (tt.shape[0], self.q1.size)).copy()
            v = np.zeros_like(q)
        else:
            s, ds = smoothstep5((tt - self.t0) / self.duration)
            q = self.q0 + (self.q1 - self.q0) * s
            v = (self.q1 - self.q0) * ds / self.duration
        if scalar:
            return q[0], v[0]
        return q, v
