"""Joint limits (URDF + joint-limits YAML) and the per-tick motion limiter.

The limiter turns a desired reference into a command that respects position, velocity,
acceleration and jerk limits *by construction*: it brakes before a position limit (it never runs
into it and gets clipped there), so a command stream built by it is feasible for the arm.

Jerk: where ``max_jerk * dt >= 2 * max_acceleration`` (Franka's 7500 rad/s^3 at 50 Hz) the
acceleration limit alone bounds the finite-difference jerk by ``2 a_max / dt`` and the limiter is
the position/velocity/acceleration one. Otherwise every step is also jerk-limited and a command is
taken only when a jerk-limited brake (``brake_step``) from it stays inside the position and velocity
limits until rest (checked by running that brake: see ``MotionLimiter.viable``).
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_log = logging.getLogger(__name__)

#: Position-limit clamp, velocity, acceleration, jerk clamp (indices into ``LimitResult.kinds``).
CLAMP_KINDS = ("position", "velocity", "acceleration", "jerk")


def parse_urdf_limits(urdf_xml: str) -> dict[str, dict[str, float | bool]]:
    """Read ``<joint><limit lower upper velocity/></joint>`` from a URDF string.

    Returns:
        ``{joint_name: {"lower", "upper", "velocity", "continuous"}}`` for every non-fixed joint.
        Continuous joints get ``lower=-inf, upper=+inf``; a missing ``velocity`` is ``inf``.

    Raises:
        ValueError: the text is not parseable XML or not a ``<robot>``.
    """
    try:
        root = ET.fromstring(urdf_xml)
    except ET.ParseError as exc:
        raise ValueError(f"robot_description is not valid XML ({exc}); expected a URDF") from exc
    if root.tag != "robot":
        raise ValueError(f"robot_description root element is <{root.tag}>; expected <robot>")
    out: dict[str, dict[str, float | bool]] = {}
    for joint in root.iter("joint"):
        name = joint.get("name")
        jtype = joint.get("type", "")
        if not name or jtype in ("fixed", "floating", "planar"):
            continue
        limit = joint.find("limit")
        continuous = jtype == "continuous"
        lower, upper, velocity = -math.inf, math.inf, math.inf
        if limit is not None:
            velocity = float(limit.get("velocity", "inf"))
            if not continuous and ("lower" in limit.attrib or "upper" in limit.attrib):
                lower = float(limit.get("lower", "0"))
                upper = float(limit.get("upper", "0"))
        if not continuous and lower >= upper:
            # URDF spec: revolute joints must have limits; lower == upper means "none given".
            lower, upper = -math.inf, math.inf
        out[name] = {
            "lower": lower,
            "upper": upper,
            "velocity": velocity if velocity > 0 else math.inf,
            "continuous": continuous,
        }
    return out


def load_joint_limits_yaml(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a ros2_control-style ``joint_limits:`` YAML file.

    Returns:
        ``{joint: {"lower", "upper", "velocity", "acceleration", "jerk"}}``; a limit whose ``has_*`` flag is
        false (or absent) is ``-inf/+inf``.
    """
    import yaml  # PyYAML; imported here so that the core's import stays cheap

    text = Path(path).read_text()
    doc = yaml.safe_load(text) or {}
    table = doc.get("joint_limits", doc)
    if not isinstance(table, dict):
        raise ValueError(f"{path}: expected a mapping 'joint_limits: {{joint: {{...}}}}'")
    out: dict[str, dict[str, float]] = {}
    for name, lim in table.items():
        lim = lim or {}
        entry = {"lower": -math.inf, "upper": math.inf, "velocity": math.inf}
        entry["acceleration"] = math.inf
        entry["jerk"] = math.inf
        if lim.get("has_position_limits", False):
            entry["lower"] = float(lim["min_position"])
            entry["upper"] = float(lim["max_position"])
        if lim.get("has_velocity_limits", False):
            entry["velocity"] = float(lim["max_velocity"])
        if lim.get("has_acceleration_limits", False):
            entry["acceleration"] = float(lim["max_acceleration"])
        if lim.get("has_jerk_limits", False):
            entry["jerk"] = float(lim["max_jerk"])
        out[str(name)] = entry
    return out


@dataclass(frozen=True)
class JointLimits:
    """Limits of the controlled joints, in the order of ``names``.

    Attributes:
        names: joint names.
        lower, upper: (n,) hard position limits [rad or m]; +-inf for continuous joints.
        max_velocity: (n,) [rad/s], finite and > 0.
        max_acceleration: (n,) [rad/s^2], finite and > 0.
        max_jerk: (n,) [rad/s^3], > 0; inf = no jerk limit (the default).
        source: where the position limits came from ("urdf", "yaml", "parameters").
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray
    source: str = "yaml"
    max_jerk: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.max_jerk is None:
            object.__setattr__(self, "max_jerk", np.full(n, math.inf))
        for key in ("lower", "upper", "max_velocity", "max_acceleration", "max_jerk"):
            arr = np.asarray(getattr(self, key), dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"JointLimits.{key}: expected shape ({n},), got {arr.shape}")
            object.__setattr__(self, key, arr)
        bad = ~(self.lower < self.upper)
        if bad.any():
            j = self.names[int(np.argmax(bad))]
            raise ValueError(f"joint {j}: lower position limit must be < upper. Got {self.lower}")
        for key in ("max_velocity", "max_acceleration"):
            arr = getattr(self, key)
            if not (np.isfinite(arr).all() and (arr > 0).all()):
                got = dict(zip(self.names, arr.tolist(), strict=True))
                raise ValueError(
                    f"JointLimits.{key}: every joint needs a finite limit > 0 "
                    f"(joint-limits YAML or parameters). Got {got}"
                )
        if not (self.max_jerk > 0).all() or np.isnan(self.max_jerk).any():
            got = dict(zip(self.names, self.max_jerk.tolist(), strict=True))
            raise ValueError(f"JointLimits.max_jerk: every joint needs a limit > 0 (inf = none). Got {got}")

    def soft(self, margin: float) -> tuple[np.ndarray, np.ndarray]:
        """Position limits shrunk by ``margin`` on each side (continuous joints stay +-inf)."""
        lo = self.lower + margin
        hi = self.upper - margin
        narrow = lo > hi
        if narrow.any():
            j = self.names[int(np.argmax(narrow))]
            raise ValueError(
                f"position_margin={margin} leaves no range for joint {j} "
                f"([{self.lower[narrow][0]}, {self.upper[narrow][0]}]); expected a smaller margin"
            )
        return lo, hi


def build_joint_limits(
    names: list[str] | tuple[str, ...],
    yaml_limits: dict[str, dict[str, float]] | None = None,
    urdf_limits: dict[str, dict[str, float | bool]] | None = None,
    *,
    position_lower: list[float] | None = None,
    position_upper: list[float] | None = None,
    max_velocity: list[float] | None = None,
    max_acceleration: list[float] | None = None,
    velocity_scale: float = 1.0,
    acceleration_scale: float = 1.0,
    max_jerk: list[float] | None = None,
    jerk_scale: float = 1.0,
) -> JointLimits:
    """Merge limit sources for ``names``.

    Position: URDF when it names the joint, else the explicit lists, else the YAML.
    Velocity: explicit list, else YAML; capped by the URDF's velocity; times ``velocity_scale``.
    Acceleration: explicit list, else YAML; times ``acceleration_scale``.
    Jerk: explicit list, else YAML (absent = no jerk limit); times ``jerk_scale``.
    """
    n = len(names)
    yaml_limits = yaml_limits or {}
    urdf_limits = urdf_limits or {}

    def _explicit(values: list[float] | None, what: str) -> np.ndarray | None:
        if not values:
            return None
        if len(values) != n:
            raise ValueError(f"{what}: expected {n} values (one per joint in {list(names)}). Got {values}")
        return np.asarray(values, dtype=np.float64)

    def _yaml(key: str) -> np.ndarray:
        return np.array([yaml_limits.get(j, {}).get(key, np.nan) for j in names], dtype=np.float64)

    lower = _explicit(position_lower, "position_lower")
    upper = _explicit(position_upper, "position_upper")
    if lower is None:
        lower = _yaml("lower")
    if upper is None:
        upper = _yaml("upper")
    source = "parameters" if position_lower else "yaml"
    used_urdf = False
    for i, j in enumerate(names):
        if j in urdf_limits:
            lower[i] = float(urdf_limits[j]["lower"])
            upper[i] = float(urdf_limits[j]["upper"])
            used_urdf = True
    if used_urdf:
        source = "urdf"
    missing = [j for j, lo, hi in zip(names, lower, upper, strict=True) if np.isnan(lo) or np.isnan(hi)]
    if missing:
        raise ValueError(
            f"no position limits for joints {missing}: expected them in robot_description, "
            "the joint-limits YAML or position_lower/position_upper"
        )
    vel = _explicit(max_velocity, "max_velocity")
    vel = _yaml("velocity") if vel is None else vel
    for i, j in enumerate(names):
        if j in urdf_limits:
            vel[i] = (
                min(vel[i], float(urdf_limits[j]["velocity"]))
                if not np.isnan(vel[i])
                else (float(urdf_limits[j]["velocity"]))
            )
    acc = _explicit(max_acceleration, "max_acceleration")
    acc = _yaml("acceleration") if acc is None else acc
    jerk = _explicit(max_jerk, "max_jerk")
    if jerk is None:
        jerk = np.array([yaml_limits.get(j, {}).get("jerk", math.inf) for j in names], dtype=np.float64)
    return JointLimits(
        names=tuple(names),
        lower=lower,
        upper=upper,
        max_velocity=vel * velocity_scale,
        max_acceleration=acc * acceleration_scale,
        source=source,
        max_jerk=jerk * jerk_scale,
    )


@dataclass
class LimitResult:
    """One limiter step: command position/velocity and which limits intervened (per joint).

    ``accelerations`` is ``(v - v_prev) / dt``, the finite-difference acceleration of the step.
    """

    positions: np.ndarray
    velocities: np.ndarray
    clamped: np.ndarray  # (n,) bool: the limiter changed the desired velocity of this joint
    kinds: np.ndarray  # (4,) bool: position / velocity / acceleration / jerk limit was active
    accelerations: np.ndarray | None = None


#: Relative slack on the limits when checking a candidate (floating-point round-off only).
_REL_TOL = 1e-12
#: Candidates evaluated at once when the desired velocity is not viable (two refinement rounds).
_GRID = 8


class MotionLimiter:
    """Discrete-time limiter on a command (q, v, a) with period ``period_s``.

    Per tick and joint, the desired velocity ``v_des`` (deadbeat tracking of the reference when it is
    close, a braking curve ``sqrt(2 a |e|)`` towards it when it is far) is clipped to the
    intersection of:

    - ``|v| <= v_max``;
    - ``|v - v_prev| <= a_max * T`` (acceleration);
    - braking: ``q + v T + v^2 / (2 a_max) <= upper_soft`` (and the mirror for lower), i.e. after
      this step the joint can still stop before the soft limit at ``a_max``.

    The braking bound at step n+1 is always satisfied by ``v_prev - a_max T`` when it held at step n,
    so the intersection is never empty once the command starts inside the soft limits; if the
    command starts outside (the arm was there at activation), motion further out is refused and the
    acceleration bound wins. ``v`` is the finite difference ``(q_n - q_{n-1}) / T``, so these bounds
    are exactly the discrete position/velocity/acceleration limits of the command stream.

    With a binding jerk limit (``jerk_active(T)``) the step also keeps
    ``|(v - v_prev)/T - a_prev| <= j_max T`` and replaces the braking bound by *viability*: the state
    after the step must be one from which :meth:`brake_step`, iterated, reaches rest inside the soft
    position limits and the velocity limit. The brake is a deterministic feedback law, so the state
    it produces from a viable state is viable again (its remaining brake is the same sequence, one
    step shorter): the brake's own step is always admissible, and the limiter takes the admissible,
    viable velocity closest to ``v_des`` on the segment from it (exactly, or to 1/256 of the
    segment).
    """

    def __init__(self, limits: JointLimits, period_s: float, margin: float) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0. Got {period_s}")
        self.limits = limits
        self.period_s = float(period_s)
        self.lower, self.upper = limits.soft(margin)
        self.v_max = limits.max_velocity
        self.a_max = limits.max_acceleration
        self.j_max = limits.max_jerk

    def jerk_active(self, dt: float | None = None) -> bool:
        """True when the jerk limit can bind at step ``dt`` (else ``|jerk| <= 2 a_max / dt`` suffices)."""
        T = self.period_s if dt is None else float(dt)
        return bool((self.j_max * T < 2.0 * self.a_max).any())

    def _brake_bound(self, distance: np.ndarray, T: float) -> np.ndarray:
        """Largest v >= 0 with ``v T + v^2/(2a) <= distance`` (distance clipped at 0; inf stays inf)."""
        aT = self.a_max * T
        # distance >= 0 after the clip, so the root is real; inf distance gives inf.
        return np.sqrt(aT * aT + 2.0 * self.a_max * np.maximum(distance, 0.0)) - aT

    def desired_velocity(
        self, q_prev: np.ndarray, q_ref: np.ndarray, v_ref: np.ndarray, T: float
    ) -> np.ndarray:
        """Velocity that reaches ``q_ref`` after ``T`` when close, or brakes onto it when far."""
        e_rel = (q_ref - q_prev) - v_ref * T
        a_e = np.abs(e_rel)
        mag = np.minimum(a_e / T, np.sqrt(2.0 * self.a_max * a_e))
        return v_ref + np.copysign(mag, e_rel)

    # ------------------------------------------------------------------ jerk-limited braking
    def brake_step(self, v: np.ndarray, u: np.ndarray, T: float) -> np.ndarray:
        """Next velocity change ``u' = a' T`` of the jerk-limited brake from ``v`` after change ``u``.

        Per step ``|u' - u| <= J = j_max T^2`` and ``|u'| <= U = a_max T``. The brake decelerates as
        hard as it may while the remaining velocity still covers ramping the deceleration back to 0
        (``x + R(x) <= |v|`` with ``R(x) = sum_k max(x - kJ, 0)``), and lands exactly on rest
        (``u' = -v`` once that needs no more than one jerk step and leaves one to zero).
        """
        J = self.j_max * T * T
        U = self.a_max * T
        av = np.abs(v)
        # Largest x with f(x) = x + R(x) <= |v|: f is linear with slope m+1 on [mJ, (m+1)J).
        with np.errstate(invalid="ignore", divide="ignore"):
            x_approx = np.sqrt(J * J / 4.0 + 2.0 * J * av) - J / 2.0
            m0 = np.floor(x_approx / np.where(np.isfinite(J), J, 1.0))
            x = np.zeros_like(av)
            for dm in (-1.0, 0.0, 1.0):
                m = np.maximum(m0 + dm, 0.0)
                xm = (av + J * m * (m + 1.0) / 2.0) / (m + 1.0)
                ok = (xm >= m * J * (1 - 1e-12)) & (xm <= (m + 1.0) * J * (1 + 1e-12))
                x = np.where(ok, np.maximum(x, xm), x)
        x = np.where(np.isfinite(J), x, av)
        u_next = np.clip(-np.sign(v) * np.minimum(x, U), u - J, u + J)
        u_next = np.clip(u_next, -U, U)
        snap = (av <= U) & (av <= J * (1 + 1e-9)) & (np.abs(v + u) <= J * (1 + 1e-9))
        return np.where(snap, np.clip(-v, u - J, u + J), u_next)

    def _max_brake_steps(self, T: float) -> int:
        a, j, vmax = self.a_max, self.j_max, self.v_max
        t = np.where(np.isfinite(j), 2.0 * vmax / a + 4.0 * a / j, 2.0 * vmax / a)
        return int(math.ceil(float(t.max()) / T)) + 8

    def brake_sequence(
        self, q: np.ndarray, v: np.ndarray, a: np.ndarray, T: float, max_steps: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Iterate :meth:`brake_step` from ``(q, v, a)`` (shape (..., n)) until every joint is at rest.

        Returns:
            (positions (K, ..., n), velocities (K, ..., n), at_rest (..., n) bool at the end).
        """
        K = self._max_brake_steps(T) if max_steps is None else max_steps
        u = a * T
        qs, vs = [], []
        for _ in range(K):
            rest = (np.abs(v) <= 1e-12) & (np.abs(u) <= 1e-12)
            if rest.all():
                break
            u = np.where(rest, 0.0, self.brake_step(v, u, T))
            v = np.where(rest, 0.0, v + u)
            q = q + v * T
            qs.append(q)
            vs.append(v)
        rest = (np.abs(v) <= 1e-12) & (np.abs(u) <= 1e-12)
        if not qs:
            return np.empty((0, *np.shape(q))), np.empty((0, *np.shape(q))), rest
        return np.stack(qs), np.stack(vs), rest

    def viable(
        self,
        q: np.ndarray,
        v: np.ndarray,
        a: np.ndarray,
        T: float,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
        check_velocity: bool = True,
    ) -> np.ndarray:
        """(..., n) bool: the state is inside the soft limits (or ``lower``/``upper``) and the
        jerk-limited brake from it reaches rest without leaving them or exceeding the velocity limit."""
        lower = self.lower if lower is None else lower
        upper = self.upper if upper is None else upper
        lo = lower - _REL_TOL * (1.0 + np.abs(lower))
        hi = upper + _REL_TOL * (1.0 + np.abs(upper))
        vm = self.v_max * (1.0 + _REL_TOL) if check_velocity else np.inf
        ok = (q >= lo) & (q <= hi) & (np.abs(v) <= vm)
        u = a * T
        rest = (np.abs(v) <= 1e-12) & (np.abs(u) <= 1e-12)
        for _ in range(self._max_brake_steps(T)):
            if not (ok & ~rest).any():  # every candidate at rest or already failed
                break
            u = np.where(rest, 0.0, self.brake_step(v, u, T))
            v = np.where(rest, 0.0, v + u)
            q = q + v * T
            ok &= (q >= lo) & (q <= hi) & (np.abs(v) <= vm)
            rest = (np.abs(v) <= 1e-12) & (np.abs(u) <= 1e-12)
        return ok & rest

    def _jerk_step(self, q_prev, v_prev, a_prev, v_des, T, q_ref, v_ref):
        """Velocity of a jerk-limited step (see class docstring) and the bounds that were active.

        Where the desired velocity is out of the jerk/acceleration/velocity box, a candidate must also
        not carry the joint past the reference: the brake from the state relative to the reference
        (``q - q_ref``, ``v - v_ref``) must stop before it. Without that, deadbeat tracking under a
        jerk limit overshoots and can settle into a limit cycle instead of converging.
        """
        aT = self.a_max * T
        jT2 = self.j_max * T * T
        acc_lo, acc_hi = v_prev - aT, v_prev + aT
        jrk_lo, jrk_hi = v_prev + a_prev * T - jT2, v_prev + a_prev * T + jT2
        lo = np.maximum(np.maximum(-self.v_max, acc_lo), jrk_lo)
        hi = np.minimum(np.minimum(self.v_max, acc_hi), jrk_hi)
        # Outside the velocity limit (never from a viable state): the jerk and acceleration bounds win.
        lo = np.where(lo > hi, np.maximum(acc_lo, jrk_lo), lo)
        hi = np.where(lo > hi, np.minimum(acc_hi, jrk_hi), hi)
        target = np.clip(v_des, lo, hi)
        fallback = v_prev + self.brake_step(v_prev, a_prev * T, T)

        boxed = (v_des < lo) | (v_des > hi)
        toward = np.sign(q_ref - q_prev)
        tol = 1e-9
        rel_hi = np.where(toward > 0, tol, np.inf)
        rel_lo = np.where(toward < 0, -tol, -np.inf)

        def ok(v):
            a = (v - v_prev) / T
            pos = self.viable(q_prev + v * T, v, a, T)
            if not boxed.any():
                return pos
            rel = self.viable(q_prev + v * T - q_ref, v - v_ref, a, T, rel_lo, rel_hi, check_velocity=False)
            return pos & (rel | ~boxed)

        good = ok(target)
        if good.all():
            return target, lo, hi
        fb_ok = self.viable(q_prev + fallback * T, fallback, (fallback - v_prev) / T, T)
        # From a viable state the brake's own step is viable; from outside the soft limits (started
        # there) take the bounded step towards the reference that does not move further out.
        v = np.where(good, target, fallback)
        lo_s, hi_s = fallback, target
        for _ in range(2):
            w = np.linspace(0.0, 1.0, _GRID + 1)[1:, None]
            cand = lo_s[None] + w * (hi_s - lo_s)[None]
            cand_ok = ok(cand)  # (GRID, n)
            best = np.where(cand_ok, np.arange(1, _GRID + 1)[:, None], 0).max(axis=0)
            step = (hi_s - lo_s) / _GRID
            new_lo = lo_s + best * step
            lo_s, hi_s = new_lo, np.where(best < _GRID, new_lo + step, hi_s)
            v = np.where(good, target, np.where(best > 0, new_lo, v))
        inward = np.where(q_prev > self.upper, np.minimum(target, 0.0), np.maximum(target, 0.0))
        outside = (q_prev > self.upper) | (q_prev < self.lower)
        v = np.where(~good & ~fb_ok & outside, inward, v)
        return v, lo, hi

    def step(
        self,
        q_prev: np.ndarray,
        v_prev: np.ndarray,
        q_ref: np.ndarray,
        v_ref: np.ndarray,
        dt: float | None = None,
        classify: bool = True,
        a_prev: np.ndarray | None = None,
    ) -> LimitResult:
        """Next command from the previous command ``(q_prev, v_prev, a_prev)`` and the reference.

        Args:
            dt: [s] time since the previous command (default: the nominal period).
            classify: compute which limits intervened (``clamped``/``kinds``); off for previews.
            a_prev: (n,) finite-difference acceleration of the previous step (default 0: at rest
                before ``q_prev``); used only when the jerk limit can bind.
        """
        T = self.period_s if dt is None else float(dt)
        v_des = self.desired_velocity(q_prev, q_ref, v_ref, T)
        aT = self.a_max * T
        acc_lo = v_prev - aT
        acc_hi = v_prev + aT
        pos_hi = pos_lo = None
        if self.jerk_active(T):
            a0 = np.zeros_like(v_prev) if a_prev is None else np.asarray(a_prev, dtype=np.float64)
            v, lo, hi = self._jerk_step(q_prev, v_prev, a0, v_des, T, q_ref, v_ref)
        else:
            pos_hi = self._brake_bound(self.upper - q_prev, T)
            pos_lo = -self._brake_bound(q_prev - self.lower, T)
            lo = np.maximum(np.maximum(-self.v_max, acc_lo), pos_lo)
            hi = np.minimum(np.minimum(self.v_max, acc_hi), pos_hi)
            v = np.minimum(np.maximum(v_des, lo), hi)
            empty = lo > hi
            if empty.any():
                # Started outside the soft limits while moving: acceleration wins, velocity next.
                v_fallback = np.clip(np.clip(v_des, acc_lo, acc_hi), -self.v_max, self.v_max)
                v = np.where(empty, v_fallback, v)
        positions = q_prev + v * T
        acc = (v - v_prev) / T
        if not classify:
            return LimitResult(positions, v, _NO_CLAMP, _NO_KINDS, acc)
        tol = 1e-9 * (1.0 + np.abs(v_des))
        clamped = np.abs(v - v_des) > tol
        kinds = np.zeros(len(CLAMP_KINDS), dtype=bool)
        if clamped.any():
            c = clamped
            if pos_hi is not None:
                kinds[0] = bool((c & ((np.abs(v - pos_hi) <= tol) | (np.abs(v - pos_lo) <= tol))).any())
            else:  # jerk mode: inside the box but not the desired value -> viability (position/velocity)
                kinds[0] = bool((c & (v > lo + tol) & (v < hi - tol)).any())
            kinds[1] = bool((c & (np.abs(np.abs(v) - self.v_max) <= tol)).any())
            kinds[2] = bool((c & ((np.abs(v - acc_hi) <= tol) | (np.abs(v - acc_lo) <= tol))).any())
            if pos_hi is None:
                a0 = np.zeros_like(v_prev) if a_prev is None else a_prev
                jT2 = self.j_max * T * T
                jerk_hit = (np.abs(v - (v_prev + a0 * T + jT2)) <= tol) | (
                    np.abs(v - (v_prev + a0 * T - jT2)) <= tol
                )
                kinds[3] = bool((c & jerk_hit).any())
        return LimitResult(positions=positions, velocities=v, clamped=clamped, kinds=kinds, accelerations=acc)


_NO_CLAMP = np.zeros(0, dtype=bool)
_NO_KINDS = np.zeros(len(CLAMP_KINDS), dtype=bool)


def limits_from_config(cfg, yaml_path: str | Path | None, urdf_xml: str | None = None) -> JointLimits:
    """Joint limits for a ``ControlConfig``: YAML file, parameter overrides and optional URDF.

    Args:
        cfg: ControlConfig (joint_names, overrides, scales, use_urdf_limits).
        yaml_path: joint-limits YAML (None = no file; then parameters must give every limit).
        urdf_xml: robot_description text, or None.
    """
    yaml_limits = load_joint_limits_yaml(yaml_path) if yaml_path else {}
    urdf = parse_urdf_limits(urdf_xml) if (urdf_xml and cfg.use_urdf_limits) else None
    return build_joint_limits(
        cfg.joint_names,
        yaml_limits,
        urdf,
        position_lower=cfg.position_lower,
        position_upper=cfg.position_upper,
        max_velocity=cfg.max_velocity,
        max_acceleration=cfg.max_acceleration,
        velocity_scale=cfg.velocity_scale,
        acceleration_scale=cfg.acceleration_scale,
        max_jerk=cfg.max_jerk,
        jerk_scale=cfg.jerk_scale,
    )


def default_limits_file() -> Path:
    """dp_control's config/joint_limits.yaml (source tree layout; the node prefers the share dir)."""
    return Path(__file__).resolve().parents[2] / "config" / "joint_limits.yaml"
