"""Joint limits (URDF + joint-limits YAML) and the per-tick motion limiter.

The limiter turns a desired reference into a command that respects position, velocity and
acceleration limits *by construction*: it brakes before a position limit (it never runs into it
and gets clipped there), so a command stream built by it is feasible for the arm.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_log = logging.getLogger(__name__)

#: Position-limit clamp, velocity clamp, acceleration clamp (indices into ``LimitResult.kinds``).
CLAMP_KINDS = ("position", "velocity", "acceleration")


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
        ``{joint: {"lower", "upper", "velocity", "acceleration"}}``; a limit whose ``has_*`` flag is
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
        if lim.get("has_position_limits", False):
            entry["lower"] = float(lim["min_position"])
            entry["upper"] = float(lim["max_position"])
        if lim.get("has_velocity_limits", False):
            entry["velocity"] = float(lim["max_velocity"])
        if lim.get("has_acceleration_limits", False):
            entry["acceleration"] = float(lim["max_acceleration"])
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
        source: where the position limits came from ("urdf", "yaml", "parameters").
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray
    source: str = "yaml"

    def __post_init__(self) -> None:
        n = len(self.names)
        for key in ("lower", "upper", "max_velocity", "max_acceleration"):
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
) -> JointLimits:
    """Merge limit sources for ``names``.

    Position: URDF when it names the joint, else the explicit lists, else the YAML.
    Velocity: explicit list, else YAML; capped by the URDF's velocity; times ``velocity_scale``.
    Acceleration: explicit list, else YAML; times ``acceleration_scale``.
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
    return JointLimits(
        names=tuple(names),
        lower=lower,
        upper=upper,
        max_velocity=vel * velocity_scale,
        max_acceleration=acc * acceleration_scale,
        source=source,
    )


@dataclass
class LimitResult:
    """One limiter step: command position/velocity and which limits intervened (per joint)."""

    positions: np.ndarray
    velocities: np.ndarray
    clamped: np.ndarray  # (n,) bool: the limiter changed the desired velocity of this joint
    kinds: np.ndarray  # (3,) bool: position / velocity / acceleration limit was active


class MotionLimiter:
    """Discrete-time limiter on a command (q, v) with period ``period_s``.

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
    """

    def __init__(self, limits: JointLimits, period_s: float, margin: float) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0. Got {period_s}")
        self.limits = limits
        self.period_s = float(period_s)
        self.lower, self.upper = limits.soft(margin)
        self.v_max = limits.max_velocity
        self.a_max = limits.max_acceleration

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

    def step(
        self,
        q_prev: np.ndarray,
        v_prev: np.ndarray,
        q_ref: np.ndarray,
        v_ref: np.ndarray,
        dt: float | None = None,
        classify: bool = True,
    ) -> LimitResult:
        """Next command from the previous command ``(q_prev, v_prev)`` and the reference.

        Args:
            dt: [s] time since the previous command (default: the nominal period).
            classify: compute which limits intervened (``clamped``/``kinds``); off for previews.
        """
        T = self.period_s if dt is None else float(dt)
        v_des = self.desired_velocity(q_prev, q_ref, v_ref, T)
        aT = self.a_max * T
        acc_lo = v_prev - aT
        acc_hi = v_prev + aT
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
        if not classify:
            return LimitResult(positions, v, _NO_CLAMP, _NO_KINDS)
        tol = 1e-9 * (1.0 + np.abs(v_des))
        clamped = np.abs(v - v_des) > tol
        kinds = np.zeros(3, dtype=bool)
        if clamped.any():
            c = clamped
            kinds[0] = bool((c & ((np.abs(v - pos_hi) <= tol) | (np.abs(v - pos_lo) <= tol))).any())
            kinds[1] = bool((c & (np.abs(np.abs(v) - self.v_max) <= tol)).any())
            kinds[2] = bool((c & ((np.abs(v - acc_hi) <= tol) | (np.abs(v - acc_lo) <= tol))).any())
        return LimitResult(positions=positions, velocities=v, clamped=clamped, kinds=kinds)


_NO_CLAMP = np.zeros(0, dtype=bool)
_NO_KINDS = np.zeros(3, dtype=bool)


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
    )


def default_limits_file() -> Path:
    """dp_control's config/joint_limits.yaml (source tree layout; the node prefers the share dir)."""
    return Path(__file__).resolve().parents[2] / "config" / "joint_limits.yaml"
