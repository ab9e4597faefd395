"""dp/control_markers: what control_node commands and what the arm does, for rviz.

A visualization_msgs/MarkerArray at ``marker_rate_hz`` (node clock) in ``marker_frame`` (the robot's
base frame; '' = robot_description's root link):

- ``dp_control/commanded_path`` (magenta): forward kinematics of the last ``marker_history_s`` of
  50 Hz arm commands, with a sphere at the newest;
- ``dp_control/measured_path`` (green): forward kinematics of the measured joint positions the loop
  read at the same ticks, with a sphere at the newest;
- ``dp_control/gripper`` (text above the measured end effector): the gripper command vs the measured
  opening of ``gripper_joint`` (m).

The loop only records joint vectors (:class:`dp_control.core.ee_trace.EndEffectorTrace`); the FK runs
in this timer, in the executor, on the ticks recorded since the previous marker, and its duration is
the "marker fk" latency on /diagnostics. Without robot_description or pinocchio no markers are sent
(said once in the log and under "markers" on /diagnostics); the control loop is unaffected.
"""

from __future__ import annotations

import time

from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from dp_common.core.joint_states import MissingJointsError
from dp_common.diagnostics import WARN
from dp_common.msgs import now_ns
from dp_common.msgs.markers import delete_marker, line_strip_marker, marker_array, sphere_marker, text_marker
from dp_common.qos import latched_qos, reliable_qos
from dp_control.core.ee_trace import EndEffectorTrace

MARKER_TOPIC = "dp/control_markers"
COMMANDED_NS = "dp_control/commanded_path"
MEASURED_NS = "dp_control/measured_path"
GRIPPER_NS = "dp_control/gripper"
COMMANDED_RGBA = (1.0, 0.2, 0.8, 1.0)
MEASURED_RGBA = (0.2, 0.9, 0.2, 1.0)
TEXT_RGBA = (1.0, 1.0, 1.0, 1.0)
LINE_WIDTH_M = 0.004
HEAD_DIAMETER_M = 0.015
TEXT_HEIGHT_M = 0.03
TEXT_OFFSET_M = (0.0, 0.0, 0.08)


def gripper_text(command: float | None, measured: float | None) -> str:
    """The gripper line drawn in rviz (one finger's opening, m)."""
    cmd = "none" if command is None else f"{command:.3f} m"
    meas = "unknown" if measured is None else f"{measured:.3f} m"
    return f"gripper command {cmd} | measured {meas}"


class ControlMarkers:
    """The marker side channel of control_node (see the module docstring).

    Args:
        node: the control node (its ``cfg``, ``diag``, ``joint_buffer``, ``_lock``, logger, clock).
    """

    def __init__(self, node) -> None:
        cfg = node.cfg
        self.node = node
        self.cfg = cfg
        self.trace = EndEffectorTrace(cfg.joint_names, cfg.marker_history_ticks)
        self.frame = cfg.marker_frame
        self.gripper_command: float | None = None  # set by the loop (an attribute store)
        self.published = 0
        self.pub = node.create_publisher(MarkerArray, MARKER_TOPIC, reliable_qos(1))
        node.create_subscription(String, "robot_description", self._on_robot_description, latched_qos())
        self.timer = node.create_timer(1.0 / cfg.marker_rate_hz, self._on_timer)
        node.diag.set("markers", "waiting for robot_description")

    # -- loop thread (hot path): record only
    def record(self, t: float, cmd, measured) -> None:
        """One control tick: the command (or None) and the measured arm positions (or None)."""
        if cmd is not None:
            self.trace.record(t, cmd.positions, measured)
            if cmd.gripper is not None:
                self.gripper_command = cmd.gripper
        else:
            self.trace.record(t, None, measured)

    # -- executor
    def _on_robot_description(self, msg: String) -> None:
        try:
            from dp_common.core.kinematics import EndEffectorPath

            t0 = time.perf_counter()
            kinematics = EndEffectorPath(msg.data, self.cfg.marker_ee_frame)
            build_s = time.perf_counter() - t0
        except (ImportError, ValueError) as exc:
            self.trace.set_kinematics(None)
            self.node.diag.set("markers", f"off: {exc}")
            self.node.get_logger().warning(f"{MARKER_TOPIC} off: {exc}")
            return
        self.frame = self.cfg.marker_frame or kinematics.root_link
        self.trace.set_kinematics(kinematics)
        where = f"{kinematics.ee_frame} in {self.frame}"
        self.node.diag.set("markers", where)
        self.node.get_logger().info(
            f"{MARKER_TOPIC}: commanded vs measured path of {where} (model built in {build_s * 1e3:.1f} ms)"
        )

    def _measured_gripper(self) -> float | None:
        joint = self.cfg.gripper_joint
        if not joint:
            return None
        try:
            with self.node._lock:
                return float(self.node.joint_buffer.latest([joint])[1][0])
        except MissingJointsError:
            return None

    def _on_timer(self) -> None:
        if self.trace.kinematics is None:
            return
        try:
            self.trace.update()
        except Exception as exc:  # noqa: BLE001 - markers are best effort; the loop goes on
            self.node.diag.problem(f"marker forward kinematics failed: {exc}", WARN)
            self.node.get_logger().warning(f"{MARKER_TOPIC}: {exc}", throttle_duration_sec=5.0)
            return
        if self.trace.last_fk_samples:
            self.node.diag.latency("marker fk", self.trace.last_fk_s)
        self.pub.publish(self.markers(now_ns(self.node)))
        self.published += 1

    def markers(self, stamp_ns: int) -> MarkerArray:
        """The MarkerArray of the current paths and gripper state."""
        frame, out = self.frame, []
        heads = {}
        for ns, rgba, points in (
            (COMMANDED_NS, COMMANDED_RGBA, self.trace.commanded_points()),
            (MEASURED_NS, MEASURED_RGBA, self.trace.measured_points()),
        ):
            if len(points) >= 2:
                out.append(line_strip_marker(points, frame, stamp_ns, ns, 0, rgba, LINE_WIDTH_M))
            else:  # rviz draws no strip of fewer than 2 points: remove a stale one
                out.append(delete_marker(ns, 0, frame, stamp_ns))
            if len(points):
                heads[ns] = points[-1]
                out.append(sphere_marker(points[-1], frame, stamp_ns, ns, 1, rgba, HEAD_DIAMETER_M))
        if self.cfg.gripper_joint:
            anchor = heads.get(MEASURED_NS, heads.get(COMMANDED_NS))
            if anchor is not None:
                text = gripper_text(self.gripper_command, self._measured_gripper())
                position = [a + o for a, o in zip(anchor, TEXT_OFFSET_M, strict=True)]
                out.append(
                    text_marker(text, position, frame, stamp_ns, GRIPPER_NS, 0, TEXT_RGBA, TEXT_HEIGHT_M)
                )
        return marker_array(out)
