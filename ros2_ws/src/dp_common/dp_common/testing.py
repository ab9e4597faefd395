"""Helpers for tests that run a real rclpy graph."""

from __future__ import annotations

import time
from collections.abc import Callable


def spin_until(
    executor, predicate: Callable[[], bool], timeout_s: float = 10.0, step_s: float = 0.01
) -> bool:
    """Spins `executor` until `predicate()` is true or `timeout_s` (wall clock) passes.

    Returns:
        The final value of the predicate.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=step_s)
    return bool(predicate())


def spin_for(executor, duration_s: float, step_s: float = 0.01) -> None:
    """Spins `executor` for `duration_s` of wall-clock time (for letting traffic settle)."""
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=step_s)
