"""Position commands -> joint velocities for MoveIt Servo's joint interface (ROS-free).

Servo's JointJog interface takes velocities (rad/s with ``command_in_type: speed_units``) and applies
the newest one at its own rate until the next arrives or it is older than ``incoming_command_timeout``.
control_node's command stream is positions at ``rate_hz``. :class:`JointJogStream` sends, at tick ``t``,
the forward finite difference of the interpolated commands (to the first preview point, one period
ahead) plus a bounded catch-up towards the command from where the stream has taken the arm so far
(``q_sent``: the integral of the velocities already sent, each over the time to the next one, at most
the timeout: what an ideal Servo did with them)::

    v(t) = (q_cmd(t + T) - q_cmd(t)) / T + (q_cmd(t) - q_sent(t)) / CATCH_UP_S
           + gain * (q_cmd(t) - q_measured)

With a steady loop ``q_sent = q_cmd`` and this is the plain finite difference; what a late tick (a
loaded machine) lost is made up over ``CATCH_UP_S`` instead of being lost for good. A gap larger than
``RESYNC_RAD`` (the stream was held or stopped while the command moved) is not made up: the stream
restarts from the command (``resyncs`` counts it).
The optional proportional term (``gain``, default 0) pulls the arm back onto the commanded path after
Servo slowed it (near a collision or a singularity); the measured state is as old as the joint_states
latency L, so with a gain the arm settles about ``v * L`` ahead of the commanded path: only for
low-latency joint_states.
"""

from __future__ import annotations

import numpy as np

from .command import Command

#: A lag of the stream behind the command is made up over this time [s].
CATCH_UP_S = 0.1
#: A larger lag on any joint restarts the stream from the command instead [rad].
RESYNC_RAD = 0.05


class JointJogStream:
    """JointJog velocities for a stream of commands (see the module docstring).

    Args:
        timeout_s: Servo's ``incoming_command_timeout`` [s].
        gain: [1/s] proportional gain on ``commanded - measured`` (0 = none).
    """

    def __init__(self, timeout_s: float = 0.1, gain: float = 0.0) -> None:
        if not timeout_s > 0 or gain < 0:
            raise ValueError(f"timeout_s must be > 0 and gain >= 0. Got {timeout_s}, {gain}")
        self.timeout_s, self.gain = float(timeout_s), float(gain)
        self.resyncs = 0
        self.reset()

    def reset(self) -> None:
        """Forget the stream (the arm may have moved otherwise): the next command starts it again."""
        self.q_sent: np.ndarray | None = None
        self._v: np.ndarray | None = None
        self._t: float | None = None

    def _advance(self, t: float) -> None:
        if self.q_sent is not None and self._v is not None and self._t is not None:
            self.q_sent = self.q_sent + self._v * min(max(t - self._t, 0.0), self.timeout_s)

    def velocities(
        self, cmd: Command, measured: np.ndarray | None = None, stamp_s: float | None = None
    ) -> np.ndarray:
        """(n,) velocities [rad/s] to send for ``cmd`` (never NaN: non-finite values become 0).

        Args:
            cmd: this tick's command.
            measured: (n,) measured positions (the ``gain`` term), or None.
            stamp_s: the JointJog's header stamp [s] (Servo's time base for the stream; default ``cmd.t``).
        """
        q = np.asarray(cmd.positions, dtype=np.float64)
        t = float(cmd.t if stamp_s is None else stamp_s)
        self._advance(t)
        if self.q_sent is None or not np.all(np.abs(q - self.q_sent) <= RESYNC_RAD):
            self.resyncs += self.q_sent is not None
            self.q_sent = q.copy()
        if len(cmd.preview_times) and cmd.preview_times[0] > cmd.t:
            target = np.asarray(cmd.preview_positions[0], dtype=np.float64)
            v = (target - q) / (cmd.preview_times[0] - cmd.t)
        else:
            v = np.asarray(cmd.velocities, dtype=np.float64)
        v = v + (q - self.q_sent) / CATCH_UP_S
        if measured is not None and self.gain > 0.0:
            v = v + self.gain * (q - np.asarray(measured, dtype=np.float64))
        v = np.where(np.isfinite(v), v, 0.0)
        self._v, self._t = v, t
        return v

    def stop(self, t: float) -> None:
        """Zero velocity was sent at ``t`` [s] (a hold): the arm stays where the stream took it."""
        if self.q_sent is not None:
            self._advance(t)
            self._v, self._t = np.zeros_like(self.q_sent), float(t)
