"""What the control core reports: its state, each tick's command, and counters for /diagnostics."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


class ControlState(str, enum.Enum):
    """Controller state, reported on /diagnostics."""

    INACTIVE = "inactive"
    ARMED = "armed"
    RUNNING = "running"
    HOLDING = "holding"
    FAULT = "fault"
    MOVING = "moving"  # the planned move to the start pose (~/go_to_start)


@dataclass
class Command:
    """What to send this tick.

    Attributes:
        t: [s] tick time on the control clock.
        positions, velocities: (n,) arm command; velocities are ``(q_n - q_{n-1}) / dt``.
        gripper: gripper target (step) or None when no chunk carried a gripper column.
        preview_times: (M,) absolute times [s] of the preview points (after ``t``).
        preview_positions, preview_velocities: (M, n) limited continuation of the command that
            follows the reference for ``preview_s`` and then brakes to rest (last velocity 0), so a
            trajectory controller comes to rest if control stops.
        state, reason: state machine.
        clamped: a limit changed the command this tick.
        chunk_age: [s] age of the chunk in use (t - stamp), None when not following one.
    """

    t: float
    positions: np.ndarray
    velocities: np.ndarray
    gripper: float | None
    preview_times: np.ndarray
    preview_positions: np.ndarray
    preview_velocities: np.ndarray
    state: ControlState
    reason: str
    clamped: bool = False
    chunk_age: float | None = None


@dataclass
class ControlStats:
    """Counters for /diagnostics."""

    ticks: int = 0
    clamp_ticks: int = 0
    clamps: Counter = field(default_factory=Counter)  # by CLAMP_KINDS
    chunks_accepted: int = 0
    chunks_ignored: int = 0
    rejected: Counter = field(default_factory=Counter)  # by ChunkError.reason / "start_distance"
    holds: Counter = field(default_factory=Counter)  # by hold kind
    last_hold_reason: str = ""
