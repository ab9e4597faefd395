"""Gripper commands as control_msgs/GripperCommand action goals (franka_gripper, Robotiq, ros2_controllers'
GripperActionController).

Goals go to ``gripper_action_name`` with ``command.position`` = the gripper column's value (dp's
convention: per-finger opening in m, the ``position`` franka_gripper's action takes) and
``command.max_effort`` = ``gripper_max_effort``. When a goal is sent is decided by
``dp_control.core.GoalGate``: only when the command changed by more than ``gripper_goal_tolerance_m``
since the last goal, at most one goal per ``gripper_goal_interval_s`` (goals are never queued; a newer
goal preempts the active one, as these servers do). Outcomes are counted on /diagnostics:

- rejected: logged (throttled), reported as a WARN problem; the same value is sent again after the
  interval (the server may not have been ready);
- aborted (e.g. a stalled grasp): logged (throttled), reported as a WARN problem; not resent (a new
  command is);
- canceled (preempted by our newer goal): counted only.

control_msgs is imported here only: without it, ``gripper_backend: action`` refuses to start
(``BackendError``) and the topic backend is unaffected.
"""

from __future__ import annotations

import functools
import threading

from dp_common.diagnostics import WARN
from dp_control.backends import BackendError
from dp_control.core import GoalGate

_STATUS_SUCCEEDED, _STATUS_CANCELED, _STATUS_ABORTED = 4, 5, 6  # action_msgs/GoalStatus


class GripperActionClient:
    """Sends the gripper command as GripperCommand goals (see module docstring).

    Args:
        node: the owning node; diag: its diagnostics reporter (``set``/``count``/``problem``).
        action_name: GripperCommand action server name; max_effort: goal's max_effort [N].
        tolerance_m, min_interval_s: ``GoalGate`` settings.

    Raises:
        BackendError: control_msgs is not importable.
    """

    def __init__(self, node, diag, action_name: str, max_effort: float, tolerance_m: float,
                 min_interval_s: float) -> None:  # fmt: skip
        try:
            from control_msgs.action import GripperCommand
        except ImportError as exc:
            raise BackendError(
                "gripper_backend 'action' needs control_msgs (ros-<distro>-control-msgs), which is not "
                f"importable here ({exc}); use gripper_backend:=topic"
            ) from exc
        from rclpy.action import ActionClient

        self._action = GripperCommand
        self._node = node
        self._diag = diag
        self.action_name = action_name
        self.max_effort = float(max_effort)
        self.gate = GoalGate(tolerance_m, min_interval_s)
        self._lock = threading.Lock()  # gate: the loop sends, the executor reports outcomes
        self._client = ActionClient(node, GripperCommand, action_name)
        self.goals_sent = 0
        self.outcomes: dict[str, int] = {}

    def send(self, value: float, t: float) -> None:
        """Called every tick with the gripper command [m] at node-clock time ``t`` [s]."""
        with self._lock:
            if not self.gate.due(value, t):
                return
            if not self._client.server_is_ready():
                self._problem(f"gripper action server {self.action_name} not available")
                return
            self.gate.sent(value, t)
        goal = self._action.Goal()
        goal.command.position = float(value)
        goal.command.max_effort = self.max_effort
        self.goals_sent += 1
        self._diag.count("gripper goals sent")
        self._diag.set("gripper goal", float(value))
        future = self._client.send_goal_async(goal)
        future.add_done_callback(functools.partial(self._on_response, float(value)))

    def _on_response(self, value: float, future) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self._outcome("rejected")
            with self._lock:
                if self.gate.last_goal == value:
                    self.gate.forget()
            self._problem(f"gripper goal {value:.4f} rejected by {self.action_name}")
            return
        handle.get_result_async().add_done_callback(functools.partial(self._on_result, value))

    def _on_result(self, value: float, future) -> None:
        response = future.result()
        status = getattr(response, "status", None)
        if status == _STATUS_SUCCEEDED:
            self._outcome("succeeded")
        elif status == _STATUS_CANCELED:
            self._outcome("preempted")
        else:
            self._outcome("aborted" if status == _STATUS_ABORTED else f"status {status}")
            r = response.result
            self._problem(
                f"gripper goal {value:.4f} aborted by {self.action_name} (position {r.position:.4f}, "
                f"effort {r.effort:.3g}, stalled {r.stalled}, reached_goal {r.reached_goal})"
            )

    def _outcome(self, what: str) -> None:
        self.outcomes[what] = self.outcomes.get(what, 0) + 1
        self._diag.count(f"gripper goals {what}")

    def _problem(self, message: str) -> None:
        self._diag.problem(message, WARN)
        self._node.get_logger().warning(message, throttle_duration_sec=2.0)

    def destroy(self) -> None:
        """Destroys the action client."""
        self._client.destroy()
