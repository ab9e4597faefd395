"""Position commands -> joint velocities for MoveIt Servo's joint interface (ROS-free).

Servo's JointJog interface takes velocities (rad/s with ``command_in_type: speed_units``) and integrates
them at its own rate with its collision, singularity and joint-limit handling. control_node's command
stream is positions at ``rate_hz``; the velocity sent at tick ``t`` is the forward finite difference
towards the next interpolated command (the first preview point, one period ahead) plus a proportional
term on the commanded-minus-measured error, so that what Servo integrates stays on the commanded path
(Servo scales or halts motion near collisions and singularities; without the term that lag would be
kept for good)::

    v(t) = (q_cmd(t + T) - q_cmd(t)) / T + gain * (q_cmd(t) - q_measured)
"""

from __future__ import annotations

import numpy as np

from .command import Command


def servo_velocities(cmd: Command, measured: np.ndarray | None = None, gain: float = 0.0) -> np.ndarray:
    """JointJog velocities (n,) [rad/s] for one command (see the module docstring).

    Args:
        cmd: this tick's command (``positions`` at ``cmd.t``, preview points after it).
        measured: (n,) measured positions, or None (no correction term).
        gain: [1/s] proportional gain on ``cmd.positions - measured``.

    Returns:
        (n,) velocities; zeros where a value is not finite (never sent as NaN: Servo drops the message).
    """
    q = np.asarray(cmd.positions, dtype=np.float64)
    if len(cmd.preview_times) and cmd.preview_times[0] > cmd.t:
        v = (np.asarray(cmd.preview_positions[0], dtype=np.float64) - q) / (cmd.preview_times[0] - cmd.t)
    else:
        v = np.asarray(cmd.velocities, dtype=np.float64).copy()
    if measured is not None and gain > 0.0:
        v = v + gain * (q - np.asarray(measured, dtype=np.float64))
    return np.where(np.isfinite(v), v, 0.0)
