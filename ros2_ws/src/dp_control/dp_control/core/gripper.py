"""Gripper command shaping (ROS-free): open/close hysteresis and when an action goal is due.

A policy's gripper column is a step signal that, near a threshold, flickers between open and close
from one chunk (or one row) to the next. :class:`GripperHysteresis` keeps the current command until
the target moves away from it by more than ``hysteresis_m`` and the current command has been held for
``min_dwell_s``; both 0 (the default) pass every target through unchanged.

:class:`GoalGate` decides when an action-based gripper (control_msgs/GripperCommand) gets a new goal:
only when the command differs from the last goal sent by more than ``tolerance_m``, and never sooner
than ``min_interval_s`` after the last goal (a change within the interval is sent when it ends, the
newest value only: goals are never queued).
"""

from __future__ import annotations


class GripperHysteresis:
    """Holds the gripper command against small or fast changes of the target.

    Args:
        hysteresis_m: a new target is taken only when ``|target - command| > hysteresis_m`` [m].
        min_dwell_s: ... and only when the command has been held at least this long [s].
    """

    def __init__(self, hysteresis_m: float = 0.0, min_dwell_s: float = 0.0) -> None:
        if hysteresis_m < 0 or min_dwell_s < 0:
            raise ValueError(f"hysteresis_m and min_dwell_s must be >= 0. Got {hysteresis_m}, {min_dwell_s}")
        self.hysteresis_m = float(hysteresis_m)
        self.min_dwell_s = float(min_dwell_s)
        self.changes = 0
        self.reset()

    def reset(self) -> None:
        """Forgets the command (a new episode): the next target is taken as it is."""
        self.command: float | None = None
        self._t_taken: float | None = None

    def update(self, target: float, t: float) -> float:
        """The command for time ``t`` [s] given the policy's ``target`` [m]."""
        target = float(target)
        if self.command is None:
            self.command, self._t_taken = target, t
            return target
        if abs(target - self.command) > self.hysteresis_m and t - self._t_taken >= self.min_dwell_s:
            if target != self.command:
                self.changes += 1
            self.command, self._t_taken = target, t
        return self.command


class GoalGate:
    """When to send a gripper action goal: on a change beyond ``tolerance_m``, rate-limited.

    Args:
        tolerance_m: a goal is due when the command differs from the last goal by more than this [m].
        min_interval_s: at most one goal per this interval [s].
    """

    def __init__(self, tolerance_m: float, min_interval_s: float) -> None:
        if tolerance_m < 0 or min_interval_s < 0:
            raise ValueError(
                f"tolerance_m and min_interval_s must be >= 0. Got {tolerance_m}, {min_interval_s}"
            )
        self.tolerance_m = float(tolerance_m)
        self.min_interval_s = float(min_interval_s)
        self.last_goal: float | None = None
        self._t_sent: float | None = None

    def due(self, value: float, t: float) -> bool:
        """True when a goal for ``value`` should be sent at time ``t`` [s]."""
        if self.last_goal is not None and abs(float(value) - self.last_goal) <= self.tolerance_m:
            return False
        return self._t_sent is None or t - self._t_sent >= self.min_interval_s

    def sent(self, value: float, t: float) -> None:
        """Records that a goal for ``value`` was sent at ``t``."""
        self.last_goal, self._t_sent = float(value), t

    def forget(self) -> None:
        """The last goal did not take (rejected): the same value is due again after the interval."""
        self.last_goal = None
