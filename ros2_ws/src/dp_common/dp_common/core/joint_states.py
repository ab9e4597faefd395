"""Merging of partial JointState messages by name, with a short history (ROS-free).

Several publishers may each carry some of the joints (arm driver, gripper driver). The buffer keeps,
per joint, the samples of the last `history_s` seconds so a consumer can ask for the positions of
an ordered list of joints at the latest time or at a past sensor stamp.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Sequence

import numpy as np


class MissingJointsError(KeyError):
    """Raised when some requested joints have never been (or are no longer) received."""

    def __init__(self, missing: Sequence[str]):
        self.missing = list(missing)
        super().__init__(f"no joint state received for joints {self.missing}")

    def __str__(self) -> str:
        return f"no joint state received for joints {self.missing}"


class JointStateBuffer:
    """Per-joint position history merged by name.

    Args:
        history_s: seconds of history kept per joint (older samples are dropped).
    """

    def __init__(self, history_s: float = 2.0):
        if history_s <= 0:
            raise ValueError(f"history_s must be > 0. Got {history_s}")
        self.history_s = history_s
        self._t: dict[str, collections.deque[float]] = {}
        self._q: dict[str, collections.deque[float]] = {}
        self._v: dict[str, float] = {}

    @property
    def names(self) -> list[str]:
        """Names of all joints seen so far."""
        return list(self._t)

    def update(
        self,
        stamp_s: float,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float] | None = None,
    ) -> None:
        """Adds one (possibly partial) joint-state sample.

        Raises:
            ValueError: when lengths differ, a name repeats, or a position is not finite; nothing
                is stored in that case.
        """
        if len(names) != len(positions):
            raise ValueError(
                f"joint_states has {len(names)} names but {len(positions)} positions; "
                "expected one position per name"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"joint_states repeats a joint name: {list(names)}")
        pos = np.asarray(positions, dtype=float)
        if not np.all(np.isfinite(pos)):
            bad = [n for n, p in zip(names, pos, strict=True) if not math.isfinite(p)]
            raise ValueError(f"joint_states has non-finite positions for {bad}; expected finite values")
        if not math.isfinite(stamp_s):
            raise ValueError(f"joint_states stamp is not finite: {stamp_s}")
        vel = None
        if velocities is not None and len(velocities) == len(names):
            vel = np.asarray(velocities, dtype=float)
        for i, name in enumerate(names):
            ts = self._t.setdefault(name, collections.deque())
            qs = self._q.setdefault(name, collections.deque())
            if ts and stamp_s < ts[-1]:
                # Out-of-order sample: insert in place (rare; keeps lookups correct).
                k = bisect.bisect_right(list(ts), stamp_s)
                ts.insert(k, stamp_s)
                qs.insert(k, float(pos[i]))
            else:
                ts.append(stamp_s)
                qs.append(float(pos[i]))
            if vel is not None and math.isfinite(vel[i]):
                self._v[name] = float(vel[i])
            newest = ts[-1]
            while len(ts) > 1 and ts[0] < newest - self.history_s:
                ts.popleft()
                qs.popleft()

    def _check(self, names: Sequence[str]) -> None:
        missing = [n for n in names if n not in self._t]
        if missing:
            raise MissingJointsError(missing)

    def latest(self, names: Sequence[str]) -> tuple[float, np.ndarray]:
        """Returns (stamp_s, positions) of the newest sample of each joint, in `names` order.

        The stamp is the oldest of the joints' newest stamps (the time up to which all are known).

        Raises:
            MissingJointsError: when a joint was never received.
        """
        self._check(names)
        stamp = min(self._t[n][-1] for n in names)
        return stamp, np.array([self._q[n][-1] for n in names], dtype=float)

    def latest_velocities(self, names: Sequence[str]) -> np.ndarray:
        """Returns the newest reported velocity of each joint (0 when never reported)."""
        return np.array([self._v.get(n, 0.0) for n in names], dtype=float)

    def at(
        self, t_s: float, names: Sequence[str], interpolate: bool = True, max_extrapolation_s: float = 0.05
    ) -> np.ndarray:
        """Returns positions at time t_s in `names` order.

        Linear interpolation between the samples around t_s (or the latest sample at or before t_s
        when `interpolate` is False). A t_s up to `max_extrapolation_s` after a joint's newest
        sample uses that sample.

        Raises:
            MissingJointsError: when a joint was never received.
            ValueError: when t_s is before a joint's history or too far after its newest sample.
        """
        self._check(names)
        out = np.empty(len(names), dtype=float)
        for i, name in enumerate(names):
            ts, qs = self._t[name], self._q[name]
            if t_s > ts[-1]:
                if t_s - ts[-1] > max_extrapolation_s:
                    raise ValueError(
                        f"joint '{name}': newest state is {t_s - ts[-1]:.3f} s older than the "
                        f"requested time; expected within {max_extrapolation_s:.3f} s"
                    )
                out[i] = qs[-1]
                continue
            if t_s < ts[0]:
                raise ValueError(
                    f"joint '{name}': requested time is {ts[0] - t_s:.3f} s before the kept "
                    f"history ({self.history_s:.1f} s)"
                )
            tl = list(ts)
            k = bisect.bisect_right(tl, t_s) - 1  # ts[k] <= t_s
            if not interpolate or k == len(tl) - 1 or tl[k] == t_s:
                out[i] = qs[k]
            else:
                t0, t1 = tl[k], tl[k + 1]
                w = (t_s - t0) / (t1 - t0) if t1 > t0 else 0.0
                out[i] = (1.0 - w) * qs[k] + w * qs[k + 1]
        return out

    def newest_stamp(self) -> float | None:
        """Returns the newest stamp over all joints, None when empty."""
        if not self._t:
            return None
        return max(ts[-1] for ts in self._t.values())
