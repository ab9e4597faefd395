"""``~/go_to_start`` and ``~/record_start`` of control_node: the move to the policy's start pose.

Where the start pose comes from (first that applies): the pose stored by ``~/record_start`` (the
measured joints when it was called), else ``start_pose`` (joint positions in ``joint_names`` order),
else the SRDF ``group_state`` ``start_state_name`` of ``moveit_group`` (e.g. ``ready`` in
dp_control's ``config/moveit/panda.srdf``; ``start_srdf_file`` names another SRDF).

How it moves:

- ``backend: moveit`` (moveit_py present): MoveItPy's planning component plans from the current
  state to the start pose (``set_goal_state(configuration_name=...)`` for a named state, a RobotState
  otherwise) and ``MoveItPy.execute`` runs it through MoveIt's trajectory execution, in a worker
  thread; control_node sends nothing meanwhile (core state ``moving``).
- every other backend: ``ControlCore.start_move``, a jerk-limited quintic streamed at the control
  rate through the same limiter and command publishers as the policy's commands.

Both are refused while the controller follows chunks. The service returns at once (``success`` =
started); completion, failure or abort is reported on /diagnostics (``start move``) and in the log.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def srdf_group_state(srdf_xml: str, group: str, name: str, joint_names: Sequence[str]) -> np.ndarray:
    """Joint values of ``<group_state name=name group=group>`` in ``joint_names`` order.

    Raises:
        ValueError: not parseable, no such state, or the state lacks one of ``joint_names``.
    """
    try:
        root = ET.fromstring(srdf_xml)
    except ET.ParseError as exc:
        raise ValueError(f"SRDF is not valid XML ({exc})") from exc
    states = [s for s in root.iter("group_state") if s.get("name") == name and s.get("group") == group]
    if not states:
        known = sorted({f"{s.get('name')} ({s.get('group')})" for s in root.iter("group_state")})
        raise ValueError(f"SRDF has no group_state {name!r} of group {group!r}; it has {known}")
    values = {j.get("name"): float(j.get("value", "nan")) for j in states[0].iter("joint")}
    missing = [j for j in joint_names if j not in values]
    if missing:
        raise ValueError(f"SRDF group_state {name!r} has no value for joints {missing}")
    return np.array([values[j] for j in joint_names], dtype=np.float64)


def default_srdf_file() -> Path:
    """dp_control's MoveIt SRDF (installed share directory or source tree)."""
    from dp_control.moveit_params import default_config_dir, find_srdf

    return find_srdf(default_config_dir())


class StartPose:
    """Resolves the start pose (see module docstring) and keeps the recorded one."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.recorded: np.ndarray | None = None

    def record(self, positions: np.ndarray) -> str:
        """Store ``positions`` (n,) as the start pose; returns them in words."""
        self.recorded = np.asarray(positions, dtype=np.float64).copy()
        return "recorded start pose " + ", ".join(
            f"{j}={q:.4f}" for j, q in zip(self.cfg.joint_names, self.recorded, strict=True)
        )

    def resolve(self) -> tuple[np.ndarray, str | None, str]:
        """(positions (n,), SRDF state name or None, where it came from).

        Raises:
            ValueError: no usable start pose.
        """
        cfg = self.cfg
        if self.recorded is not None:
            return self.recorded.copy(), None, "recorded (~/record_start)"
        if cfg.start_pose:
            return np.asarray(cfg.start_pose, dtype=np.float64), None, "start_pose parameter"
        if not cfg.start_state_name:
            raise ValueError("no start pose: call ~/record_start, or set start_pose or start_state_name")
        path = Path(cfg.start_srdf_file) if cfg.start_srdf_file else default_srdf_file()
        from dp_control.moveit_params import read_robot_description

        srdf = read_robot_description(path)
        q = srdf_group_state(srdf, cfg.moveit_group, cfg.start_state_name, cfg.joint_names)
        return q, cfg.start_state_name, f"SRDF group_state {cfg.start_state_name!r} ({path.name})"


class MoveItStartMover:
    """Plans with MoveItPy from the current state to the start pose and executes it (worker thread).

    Uses the MoveItPy instance of the moveit backend's checker (``MoveItChecker``: one MoveItPy per
    process). Written against moveit_py's API (PlanningComponent.set_start_state_to_current_state,
    set_goal_state(configuration_name= | robot_state=), plan() -> PlanSolution (truthy on success,
    ``.trajectory``), MoveItPy.execute(trajectory, controllers=[])); exercised here only against the
    fake in test/fakes/moveit_py.
    """

    def __init__(self, checker) -> None:
        self.checker = checker
        self.thread: threading.Thread | None = None

    def plan_and_execute(
        self, joint_names: Sequence[str], goal: np.ndarray, name: str | None
    ) -> tuple[bool, str]:
        """Blocking: plan to the named state (or ``goal``) and execute. Returns (ok, message)."""
        ck = self.checker
        component = ck.moveit.get_planning_component(ck.group)
        component.set_start_state_to_current_state()
        if name:
            component.set_goal_state(configuration_name=name)
        else:
            from moveit.core.robot_state import RobotState  # importable: the checker imported moveit

            state = RobotState(ck.robot_model)
            state.set_to_default_values()
            state.joint_positions = dict(zip(joint_names, (float(q) for q in goal), strict=True))
            state.update()
            component.set_goal_state(robot_state=state)
        plan = component.plan()
        if not plan:
            code = getattr(getattr(plan, "error_code", None), "val", None)
            return False, f"MoveIt planning to the start pose failed (error code {code})"
        status = ck.moveit.execute(plan.trajectory, controllers=[])
        if status is not None and not bool(status):
            return False, f"MoveIt trajectory execution failed ({getattr(status, 'status', status)})"
        return True, "MoveIt planned and executed the move to the start pose"

    def start(
        self,
        joint_names: Sequence[str],
        goal: np.ndarray,
        name: str | None,
        done: Callable[[bool, str], None],
    ) -> None:
        """Runs :meth:`plan_and_execute` in a daemon thread; ``done(ok, message)`` when it ends."""

        def run() -> None:
            try:
                ok, message = self.plan_and_execute(joint_names, goal, name)
            except Exception as exc:  # noqa: BLE001 - reported, the node keeps running
                ok, message = False, f"MoveIt start move raised {exc!r}"
            done(ok, message)

        self.thread = threading.Thread(target=run, name="dp_control_go_to_start", daemon=True)
        self.thread.start()

    @property
    def busy(self) -> bool:
        """True while a move runs."""
        return self.thread is not None and self.thread.is_alive()
