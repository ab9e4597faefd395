"""Action-chunk validation and scheduling (latency compensation).

Timeline of one chunk (``dt`` = 0.1 s, arrival 70 ms after the stamp, control at 50 Hz)::

    stamp                 arrival (t_now)
      |  row0      row1  |    row2      row3      row4   ...
      |---o---------o----|-----o---------o---------o-----
          ^ past    ^ anchor   ^ first executed row
    rows before the last past row are dropped; the last past row anchors the interpolation;
    control samples the spline at its own ticks from t_now on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ACTION_SPACE_JOINT_POSITION = "joint_position"


class ChunkError(ValueError):
    """A chunk was rejected. ``reason`` is a short code for counting (e.g. ``nan``, ``names``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RawChunk:
    """A chunk as received (ROS-free mirror of dp_msgs/ActionChunk).

    ``stamp`` is in seconds on the control clock; ``data`` is the flat row-major array.
    """

    stamp: float
    dt: float
    joint_names: tuple[str, ...]
    horizon: int
    action_dim: int
    data: np.ndarray
    chunk_id: int = 0
    policy_id: str = ""
    action_space: str = ACTION_SPACE_JOINT_POSITION


@dataclass(frozen=True)
class Chunk:
    """A validated chunk, columns reordered to the controller's joint order.

    Attributes:
        stamp: [s] time of row 0.
        dt: [s] between rows.
        times: (H,) row times ``stamp + k * dt``.
        arm: (H, n) arm joint targets in the controller's ``joint_names`` order.
        gripper: (H,) gripper targets or None when the chunk has no gripper column.
        chunk_id, policy_id: from the message.
    """

    stamp: float
    dt: float
    times: np.ndarray
    arm: np.ndarray
    gripper: np.ndarray | None
    chunk_id: int = 0
    policy_id: str = ""

    def schedule(self, t_now: float) -> tuple[np.ndarray, np.ndarray]:
        """Rows to interpolate at ``t_now``: the last row at or before ``t_now`` (anchor) + later rows.

        Returns:
            times (K,), arm positions (K, n). Rows before the anchor are dropped (not executed).
        """
        past = np.nonzero(self.times <= t_now)[0]
        first = int(past[-1]) if past.size else 0
        return self.times[first:], self.arm[first:]

    def first_future_row(self, t_now: float) -> np.ndarray:
        """Arm targets of the first row after ``t_now`` (the last row if none)."""
        future = np.nonzero(self.times > t_now)[0]
        return self.arm[int(future[0]) if future.size else -1]

    def gripper_at(self, t: float) -> float | None:
        """Gripper target as a step function: the last row at or before ``t`` (row 0 before it)."""
        if self.gripper is None:
            return None
        past = np.nonzero(self.times <= t)[0]
        return float(self.gripper[int(past[-1]) if past.size else 0])


def validate_chunk(
    raw: RawChunk,
    joint_names: list[str] | tuple[str, ...],
    gripper_joint: str,
    t_now: float,
    max_future_s: float,
    max_age_s: float,
) -> Chunk:
    """Check a received chunk and bring it into the controller's joint order.

    Args:
        raw: the chunk as received.
        joint_names: controlled arm joints, in command order. Every one must be a column.
        gripper_joint: name of the optional gripper column ("" = no gripper).
        t_now: [s] arrival time on the control clock.
        max_future_s: reject when ``stamp - t_now`` exceeds this (clocks out of sync).
        max_age_s: reject when ``t_now - stamp`` exceeds this (stale chunk).

    Raises:
        ChunkError: with what was wrong and what was expected.
    """
    if raw.action_space != ACTION_SPACE_JOINT_POSITION:
        raise ChunkError(
            "action_space",
            f"action_space is {raw.action_space!r}; expected {ACTION_SPACE_JOINT_POSITION!r} "
            "(ee_pose is not supported yet)",
        )
    if not (math.isfinite(raw.dt) and raw.dt > 0):
        raise ChunkError("dt", f"dt is {raw.dt}; expected a finite period > 0 s")
    if raw.horizon < 1:
        raise ChunkError("size", f"horizon is {raw.horizon}; expected at least 1 row")
    names = tuple(raw.joint_names)
    if raw.action_dim != len(names):
        raise ChunkError(
            "size",
            f"action_dim is {raw.action_dim} but joint_names has {len(names)} entries; expected them equal",
        )
    data = np.asarray(raw.data)
    if data.ndim != 1 or data.size != raw.horizon * raw.action_dim:
        raise ChunkError(
            "size",
            f"len(data) is {data.size}; expected horizon*action_dim = "
            f"{raw.horizon}*{raw.action_dim} = {raw.horizon * raw.action_dim}",
        )
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ChunkError("names", f"joint_names has duplicates {dup}; expected unique names")
    missing = [j for j in joint_names if j not in names]
    allowed = set(joint_names) | ({gripper_joint} if gripper_joint else set())
    unknown = [n for n in names if n not in allowed]
    if missing or unknown:
        raise ChunkError(
            "names",
            f"joint_names {list(names)} do not match: missing {missing}, unknown {unknown}; "
            f"expected the arm joints {list(joint_names)}"
            + (f" and optionally the gripper column {gripper_joint!r}" if gripper_joint else ""),
        )
    rows = data.astype(np.float64).reshape(raw.horizon, raw.action_dim)
    finite = np.isfinite(rows)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        raise ChunkError(
            "nan",
            f"data has {int((~finite).sum())} non-finite values (first at row {r}, column "
            f"{names[c]!r}: {rows[r, c]}); expected finite joint targets",
        )
    if not math.isfinite(raw.stamp):
        raise ChunkError("stamp", f"stamp is {raw.stamp}; expected a finite time")
    ahead = raw.stamp - t_now
    if ahead > max_future_s:
        raise ChunkError(
            "future",
            f"stamp is {ahead:.3f} s in the future; at most max_future_s={max_future_s} s expected "
            "(are the clocks synchronized? use_sim_time on both sides?)",
        )
    age = -ahead
    if age > max_age_s:
        raise ChunkError(
            "age", f"chunk is {age:.3f} s old on arrival; at most max_age_s={max_age_s} s expected"
        )
    times = raw.stamp + raw.dt * np.arange(raw.horizon, dtype=np.float64)
    if times[-1] <= t_now and raw.horizon > 1:
        raise ChunkError(
            "stale",
            f"all {raw.horizon} rows are in the past (last row {t_now - times[-1]:.3f} s ago); "
            "expected at least one future row",
        )
    col = {n: i for i, n in enumerate(names)}
    arm = rows[:, [col[j] for j in joint_names]]
    gripper = rows[:, col[gripper_joint]].copy() if gripper_joint and gripper_joint in col else None
    return Chunk(
        stamp=float(raw.stamp),
        dt=float(raw.dt),
        times=times,
        arm=arm,
        gripper=gripper,
        chunk_id=int(raw.chunk_id),
        policy_id=str(raw.policy_id),
    )
