"""Pure joint-space interpolators and time-composed references.

In the style of diffusion_policy's ``PoseTrajectoryInterpolator``: an interpolator is a function of
time; the control loop owns time and asks ``interp(t)`` / ``interp.velocity(t)``.

A *reference* is anything with ``sample(t) -> (q, v)`` for a scalar or an array of times. The
controller composes references at hand-overs::

    chunk rows      o-----o-----o-----o-----o            (row k at stamp + k*dt)
    old reference ==========\\
                             \\  crossfade (quintic smoothstep over handover_s / ramp_in_s)
    new reference             \\=========================
                         t_handover

The crossfade keeps position, velocity and acceleration continuous at the hand-over whatever the
two references are.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline, make_interp_spline

INTERPOLATION_MODES = ("linear", "cubic", "quintic")


class JointInterpolator:
    """Interpolates joint positions through knots ``(times[k], positions[k])``.

    Modes: ``linear`` (position-continuous), ``cubic`` (not-a-knot cubic spline: position, velocity
    and acceleration continuous), ``quintic`` (degree-5 B-spline; falls back to lower degrees when
    there are too few knots). Outside ``[times[0], times[-1]]`` the end position is held with zero
    velocity.

    Args:
        times: (K,) strictly increasing [s], K >= 1.
        positions: (K, D) joint positions.
        mode: one of ``INTERPOLATION_MODES``.
    """

    def __init__(self, times: np.ndarray, positions: np.ndarray, mode: str = "cubic") -> None:
        times = np.asarray(times, dtype=np.float64)
        positions = np.asarray(positions, dtype=np.float64)
        if mode not in INTERPOLATION_MODES:
            raise ValueError(f"interpolation mode must be one of {INTERPOLATION_MODES}. Got {mode!r}")
        if times.ndim != 1 or times.size < 1:
            raise ValueError(f"times must be a non-empty 1-D array. Got shape {times.shape}")
        if positions.ndim != 2 or positions.shape[0] != times.size:
            raise ValueError(f"positions must be (K={times.size}, D). Got shape {positions.shape}")
        if times.size > 1 and not (np.diff(times) > 0).all():
            raise ValueError("times must be strictly increasing")
        self.times = times
        self.positions = positions
        self.mode = mode
        self._spline = None
        k = times.size
        if mode == "cubic" and k >= 3:
            self._spline = CubicSpline(times, positions, axis=0, bc_type="not-a-knot")
        elif mode == "quintic" and k >= 3:
            degree = min(5, k - 1)
            self._spline = make_interp_spline(times, positions, k=degree, axis=0)
        if self._spline is not None:
            self._dspline = self._spline.derivative()

    @property
    def start_time(self) -> float:
        """Time of the first knot [s]."""
        return float(self.times[0])

    @property
    def end_time(self) -> float:
        """Time of the last knot [s]."""
        return float(self.times[-1])

    def _linear(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        times, pos = self.times, self.positions
        if times.size == 1:
            return np.broadcast_to(pos[0], (t.size, pos.shape[1])).copy(), np.zeros((t.size, pos.shape[1]))
        tc = np.clip(t, times[0], times[-1])
        idx = np.clip(np.searchsorted(times, tc, side="right") - 1, 0, times.size - 2)
        h = times[idx + 1] - times[idx]
        w = ((tc - times[idx]) / h)[:, None]
        q = pos[idx] * (1.0 - w) + pos[idx + 1] * w
        v = (pos[idx + 1] - pos[idx]) / h[:, None]
        return q, v

    def sample(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities at ``t``: (D,) each for a scalar, (M, D) for (M,) times."""
        scalar = np.ndim(t) == 0
        ta = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if self._spline is None:
            q, v = self._linear(ta)
        else:
            tc = np.clip(ta, self.times[0], self.times[-1])
            q = self._spline(tc)
            v = self._dspline(tc)
        outside = (ta < self.times[0]) | (ta > self.times[-1])
        if outside.any():
            v = np.where(outside[:, None], 0.0, v)
        if scalar:
            return q[0], v[0]
        return q, v

    def __call__(self, t: float | np.ndarray) -> np.ndarray:
        """Positions at ``t``."""
        return self.sample(t)[0]

    def velocity(self, t: float | np.ndarray) -> np.ndarray:
        """Velocities at ``t``."""
        return self.sample(t)[1]

    def trim(self, t0: float, t1: float) -> JointInterpolator:
        """A new interpolator over ``[t0, t1]``: the knots inside plus the end points evaluated."""
        if not t1 > t0:
            raise ValueError(f"trim: expected t1 > t0. Got t0={t0}, t1={t1}")
        inside = (self.times > t0) & (self.times < t1)
        times = np.concatenate([[t0], self.times[inside], [t1]])
        return JointInterpolator(times, self(times), self.mode)


class HoldReference:
    """Constant position ``q`` with zero velocity."""

    def __init__(self, q: np.ndarray) -> None:
        self.q = np.asarray(q, dtype=np.float64).copy()

    def sample(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(q, 0) at ``t`` (broadcast to (M, D) for an array of times)."""
        if np.ndim(t) == 0:
            return self.q.copy(), np.zeros_like(self.q)
        m = np.size(t)
        return np.tile(self.q, (m, 1)), np.zeros((m, self.q.size))


class BrakeReference:
    """From ``(t0, q0, v0)`` decelerate each joint at ``decel`` [rad/s^2] to rest, then hold."""

    def __init__(self, t0: float, q0: np.ndarray, v0: np.ndarray, decel: np.ndarray) -> None:
        self.t0 = float(t0)
        self.q0 = np.asarray(q0, dtype=np.float64).copy()
        self.v0 = np.asarray(v0, dtype=np.float64).copy()
        self.decel = np.asarray(decel, dtype=np.float64)
        self.t_stop = np.abs(self.v0) / self.decel  # (D,) seconds until rest
        self.q_rest = self.q0 + self.v0 * self.t_stop / 2.0

    def sample(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position/velocity of the braking profile at ``t``."""
        scalar = np.ndim(t) == 0
        tau = np.atleast_1d(np.asarray(t, dtype=np.float64))[:, None] - self.t0
        tau = np.clip(tau, 0.0, self.t_stop[None, :])
        a = -np.sign(self.v0) * self.decel
        v = self.v0 + a * tau
        q = self.q0 + self.v0 * tau + 0.5 * a * tau * tau
        if scalar:
            return q[0], v[0]
        return q, v


class ChunkReference:
    """Reference given by an interpolator through (possibly combined) chunk rows."""

    def __init__(self, interp: JointInterpolator) -> None:
        self.interp = interp

    def sample(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated position/velocity at ``t``."""
        return self.interp.sample(t)


def smoothstep5(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quintic smoothstep s(u) = 10u^3 - 15u^4 + 6u^5 on [0, 1] and its derivative ds/du."""
    u = np.clip(u, 0.0, 1.0)
    s = u * u * u * (10.0 + u * (-15.0 + 6.0 * u))
    ds = 30.0 * u * u * (1.0 - u) * (1.0 - u)
    return s, ds


class Crossfade:
    """``old`` before ``t0``, ``new`` after ``t0 + duration``, a C2 blend in between."""

    def __init__(self, old, new, t0: float, duration: float) -> None:
        self.old = old
        self.new = new
        self.t0 = float(t0)
        self.duration = float(duration)

    @property
    def t_end(self) -> float:
        """When the blend is complete [s]."""
        return self.t0 + self.duration

    def sample(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Blended position/velocity at ``t``."""
        qn, vn = self.new.sample(t)
        if self.duration <= 0.0 or np.min(t) >= self.t_end:
            return qn, vn
        qo, vo = self.old.sample(t)
        u = (np.asarray(t, dtype=np.float64) - self.t0) / self.duration
        s, ds = smoothstep5(u)
        if np.ndim(t) != 0:
            s, ds = s[:, None], ds[:, None]
        q = qo + (qn - qo) * s
        v = vo + (vn - vo) * s + (qn - qo) * ds / self.duration
        return q, v


def prune(ref, t_now: float):
    """Drop crossfades (at any depth) that are complete at ``t_now``; valid for times >= t_now."""
    while isinstance(ref, Crossfade) and t_now >= ref.t_end:
        ref = ref.new
    if isinstance(ref, Crossfade):
        ref.old = prune(ref.old, t_now)
        ref.new = prune(ref.new, t_now)
    return ref
