"""Commanded vs measured end-effector paths of the control loop, for rviz (ROS-free).

The 50 Hz loop only hands each tick's joint vectors to :meth:`EndEffectorTrace.record` (one
``deque.append``: no kinematics on the hot path). At the marker rate, :meth:`EndEffectorTrace.update`
drains what was recorded since its last call, runs forward kinematics on those samples only
(``dp_common.core.kinematics.EndEffectorPath``, the one FK of the project) and appends the points
to two bounded paths. ``record`` may run on another thread than ``update``: the hand-over is a
deque with ``append`` / ``popleft``, which are atomic in CPython, so neither side takes a lock.

::

    loop thread (50 Hz)         record(t, q_cmd, q_meas) ─┐ pending (bounded deque)
    marker timer (10 Hz)        update() ◀────────────────┘ FK of the new samples only
                                  └─▶ commanded path, measured path (each <= history points)
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np


class EndEffectorTrace:
    """Bounded commanded / measured end-effector paths of the last ``history`` control ticks.

    Args:
        joint_names: names of the recorded joint vectors' entries (control's ``joint_names``).
        history: points kept per path (e.g. marker history [s] x control rate [Hz]).
        kinematics: a ``dp_common.core.kinematics.EndEffectorPath`` (or None until robot_description
            arrives; samples recorded before are kept, up to ``history``, and drawn once it does).
    """

    def __init__(self, joint_names, history: int, kinematics=None) -> None:
        if history < 2:
            raise ValueError(f"history must be >= 2 points (a path). Got {history}")
        self.joint_names = list(joint_names)
        self.history = int(history)
        self.kinematics = kinematics
        self._pending: deque = deque(maxlen=self.history)
        self.commanded: deque = deque(maxlen=self.history)  # (3,) points, m, in the model's root frame
        self.measured: deque = deque(maxlen=self.history)
        self.last_fk_s = 0.0  # seconds the last update spent in forward kinematics
        self.last_fk_samples = 0

    def set_kinematics(self, kinematics) -> None:
        """A new model (robot_description changed): the old paths are dropped."""
        self.kinematics = kinematics
        self.commanded.clear()
        self.measured.clear()

    def record(self, t: float, commanded: np.ndarray | None, measured: np.ndarray | None) -> None:
        """One control tick (hot path: an append). Arrays are (n,) in ``joint_names`` order, or None
        when there is no command (inactive) / no measured state this tick. They must not be mutated
        afterwards (the control core makes a new array every tick)."""
        self._pending.append((t, commanded, measured))

    def update(self) -> int:
        """FK of the samples recorded since the last call; returns how many were taken.

        Without kinematics the samples stay pending (bounded) and 0 is returned.
        """
        if self.kinematics is None:
            return 0
        taken = []
        pending = self._pending
        while pending:
            taken.append(pending.popleft())
        t0 = time.perf_counter()
        for index, path in ((1, self.commanded), (2, self.measured)):
            rows = [s[index] for s in taken if s[index] is not None]
            if rows:
                path.extend(self.kinematics.positions(np.asarray(rows, dtype=float), self.joint_names))
        self.last_fk_s = time.perf_counter() - t0
        self.last_fk_samples = len(taken)
        return len(taken)

    def commanded_points(self) -> np.ndarray:
        """(N, 3) commanded end-effector path, oldest first, m."""
        return np.asarray(self.commanded, dtype=float).reshape(-1, 3)

    def measured_points(self) -> np.ndarray:
        """(N, 3) measured end-effector path, oldest first, m."""
        return np.asarray(self.measured, dtype=float).reshape(-1, 3)
