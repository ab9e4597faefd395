"""dp/control_markers: commanded vs measured end-effector paths and the gripper command, for rviz.

The core (EndEffectorTrace) against pinocchio directly, and control_node in a real rclpy graph:
driven by a chunk stream with a joint-state source that lags the commands by a fixed offset, its
markers must show the forward kinematics of the very commands it sent (commanded path) and of the
very joint_states it read (measured path), the FK computed here independently with pinocchio.
The FK cost is printed (run with -s), never asserted.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from dp_common.msgs import now_ns, s_to_ns
from dp_common.msgs.chunk import build_chunk
from dp_common.msgs.joint_state import build_joint_state
from dp_common.testing import spin_for, spin_until
from dp_control.core import ControlConfig, ControlState
from dp_control.core.ee_trace import EndEffectorTrace

pin = pytest.importorskip("pinocchio")

JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
Q0 = np.array([0.0, -0.4, 0.0, -2.0, 0.0, 1.6, 0.8])
# The joint-state source reports the command plus this: the measured path is not the commanded one.
OFFSET = np.array([0.06, 0.0, 0.0, 0.03, 0.0, 0.0, 0.0])
EE = "panda_hand_tcp"


@pytest.fixture(scope="module")
def urdf() -> str:
    from dp_sim.core.robot import find_panda_urdf

    return find_panda_urdf().read_text()


class IndependentFK:
    """FK of panda_hand_tcp straight from pinocchio (not through dp_common.core.kinematics)."""

    def __init__(self, urdf_xml: str):
        self.model = pin.buildModelFromXML(urdf_xml)
        self.data = self.model.createData()
        self.frame = self.model.getFrameId(EE)
        self.idx = [self.model.joints[self.model.getJointId(n)].idx_q for n in JOINTS]

    def __call__(self, q: np.ndarray) -> np.ndarray:
        full = pin.neutral(self.model)
        full[self.idx] = q
        pin.framesForwardKinematics(self.model, self.data, full)
        return self.data.oMf[self.frame].translation.copy()


def _nearest(point, candidates: np.ndarray) -> float:
    return float(np.min(np.linalg.norm(candidates - np.asarray(point), axis=1)))


def test_trace_fk_of_recorded_ticks_bounded_and_deferred_until_a_model(urdf):
    from dp_common.core.kinematics import EndEffectorPath

    fk = IndependentFK(urdf)
    rng = np.random.default_rng(0)
    trace = EndEffectorTrace(JOINTS, history=20)
    qs = Q0 + 0.2 * rng.standard_normal((30, 7))
    for i, q in enumerate(qs):  # before robot_description: kept (bounded), not computed
        trace.record(i * 0.02, q, q + OFFSET if i % 3 else None)
    assert trace.update() == 0 and len(trace.commanded_points()) == 0
    trace.set_kinematics(EndEffectorPath(urdf, EE))
    assert trace.update() == 20  # the 20 newest ticks
    want = np.array([fk(q) for q in qs[-20:]])
    np.testing.assert_allclose(trace.commanded_points(), want, atol=1e-9)
    measured = [fk(q + OFFSET) for i, q in enumerate(qs) if i >= 10 and i % 3]
    np.testing.assert_allclose(trace.measured_points(), np.array(measured), atol=1e-9)
    # only the new ticks are computed; the paths stay bounded
    for i in range(5):
        trace.record(1.0 + i * 0.02, Q0, None)
    assert trace.update() == 5 and trace.last_fk_samples == 5
    assert len(trace.commanded_points()) == 20
    np.testing.assert_allclose(trace.commanded_points()[-1], fk(Q0), atol=1e-9)
    with pytest.raises(ValueError, match="history must be >= 2"):
        EndEffectorTrace(JOINTS, history=1)

    # cost, for the log: the loop's share (record) and the marker timer's (FK of 5 ticks at 50/10 Hz)
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        trace.record(0.0, Q0, Q0)
    record_us = (time.perf_counter() - t0) / n * 1e6
    trace.update()
    costs = []
    for _ in range(50):
        for _ in range(5):
            trace.record(0.0, Q0, Q0)
        trace.update()
        costs.append(trace.last_fk_s)
    print(
        f"\n[control markers] record (loop thread): {record_us:.2f} us/tick; FK of 5 ticks x 2 paths "
        f"(marker timer at 10 Hz): p50 {np.median(costs) * 1e3:.3f} ms, max {max(costs) * 1e3:.3f} ms"
    )


def test_config_validates_marker_parameters():
    assert ControlConfig().marker_history_ticks == 150
    with pytest.raises(ValueError, match="marker_rate_hz must be > 0"):
        ControlConfig(marker_rate_hz=0.0)
    with pytest.raises(ValueError, match="marker_history_s"):
        ControlConfig(marker_history_s=0.01)


class Robot:
    """Test side: robot_description, joint_states (= last command + OFFSET), a chunk stream; records
    every arm command control sends and every joint state it publishes, and the markers."""

    def __init__(self, context, control, urdf_xml: str):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import String
        from visualization_msgs.msg import MarkerArray

        from dp_common.qos import chunk_qos, latched_qos, reliable_qos
        from dp_msgs.msg import ActionChunk

        self.node = n = Node("fake_robot_markers", context=context)
        self.control = control
        self.desc_pub = n.create_publisher(String, "robot_description", latched_qos())
        self.desc_pub.publish(String(data=urdf_xml))
        self.js_pub = n.create_publisher(JointState, "joint_states", reliable_qos(50))
        self.chunk_pub = n.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
        self.commands, self.states, self.markers = [], [], []
        # Every command control sends, taken where it is sent (a DDS subscriber could miss some: the
        # command publisher keeps only the last sample).
        send = control._commands.send

        def record_and_send(cmd, t_now, measured=None):
            self.commands.append(cmd.positions.copy())
            send(cmd, t_now, measured)

        control._commands.send = record_and_send
        n.create_subscription(MarkerArray, "dp/control_markers", self.markers.append, reliable_qos(10))
        self.t0 = self.now()
        self.chunk_id = 0
        n.create_timer(0.01, self._publish_state)
        n.create_timer(0.1, self._publish_chunk)

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _publish_state(self):
        q = self.control.command_positions()
        q = (Q0 if q is None else q) + OFFSET
        self.states.append(q.copy())
        self.js_pub.publish(build_joint_state(now_ns(self.node), JOINTS, q))
        self.js_pub.publish(build_joint_state(0, ["panda_finger_joint1"], [0.02]))

    def _publish_chunk(self):
        stamp = self.now() - 0.05
        t = stamp - self.t0 + 0.1 * np.arange(15)
        rows = Q0 + OFFSET + 0.15 * np.sin(2 * np.pi * 0.4 * t[:, None] + np.linspace(0, 2, 7))
        rows = np.hstack([rows, np.full((15, 1), 0.04)])
        self.chunk_id += 1
        msg = build_chunk(s_to_ns(stamp), rows, [*JOINTS, "panda_finger_joint1"], 0.1, chunk_id=self.chunk_id)
        self.chunk_pub.publish(msg)


def _by_ns(array) -> dict:
    return {(m.ns, m.id): m for m in array.markers}


def test_control_node_publishes_commanded_and_measured_paths(rclpy_context, urdf):
    from dp_control.control_node import ControlNode

    params = {"autostart": True, "backend": "position", "controller_check_timeout_s": 0.2,
              "marker_rate_hz": 10.0, "marker_history_s": 1.0, "max_start_distance": 0.5}  # fmt: skip
    control = ControlNode(
        context=rclpy_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
    )
    robot = Robot(rclpy_context, control, urdf)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(control)
    ex.add_node(robot.node)
    try:
        assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 15.0)

        def full_paths() -> bool:
            if not robot.markers:
                return False
            m = _by_ns(robot.markers[-1])
            return all(
                (ns, 0) in m and len(m[(ns, 0)].points) >= 40
                for ns in ("dp_control/commanded_path", "dp_control/measured_path")
            )

        assert spin_until(ex, full_paths, 15.0)
        last = robot.markers[-1]
        spin_for(ex, 0.3)  # commands / states sent before this marker have all arrived
        fk = IndependentFK(urdf)
        commanded_fk = np.array([fk(q) for q in robot.commands])
        measured_fk = np.array([fk(q) for q in robot.states])
        m = _by_ns(last)
        cmd_line, meas_line = m[("dp_control/commanded_path", 0)], m[("dp_control/measured_path", 0)]
        assert cmd_line.header.frame_id == "panda_link0"  # robot_description's root link
        assert len(cmd_line.points) <= 50  # marker_history_s 1.0 at 50 Hz: bounded
        cmd_pts = np.array([[p.x, p.y, p.z] for p in cmd_line.points])
        meas_pts = np.array([[p.x, p.y, p.z] for p in meas_line.points])
        # The newest points: FK of commands it sent / of joint_states it read, and nothing else.
        for p in cmd_pts[-20:]:
            assert _nearest(p, commanded_fk) < 1e-6
            assert _nearest(p, measured_fk) > 1e-4
        for p in meas_pts[-20:]:
            assert _nearest(p, measured_fk) < 1e-6
            assert _nearest(p, commanded_fk) > 1e-4
        # the arm moved: a path, not a point
        assert np.ptp(cmd_pts, axis=0).max() > 0.01
        # heads at the newest points; the gripper text: command (chunk column) vs measured finger
        np.testing.assert_allclose(
            [m[("dp_control/commanded_path", 1)].pose.position.x], [cmd_pts[-1, 0]], atol=1e-12
        )
        text = m[("dp_control/gripper", 0)].text
        assert "command 0.040 m" in text and "measured 0.020 m" in text, text
        fk_cost = control.diag.latency_summary("marker fk")
        assert fk_cost["count"] > 0
        period = control.diag.latency_summary("period error")
        print(
            f"\n[control markers] in the node: marker fk p50 {fk_cost['p50'] * 1e3:.3f} ms, max "
            f"{fk_cost['max'] * 1e3:.3f} ms over {fk_cost['count']} markers; loop period error p99 "
            f"{period['p99'] * 1e3:.2f} ms"
        )
    finally:
        ex.shutdown()
        robot.node.destroy_node()
        control.destroy_node()


def test_no_markers_without_publish_markers(rclpy_context):
    from dp_control.control_node import ControlNode

    control = ControlNode(
        context=rclpy_context, parameter_overrides=[Parameter("publish_markers", value=False)]
    )
    try:
        assert control.markers is None
        assert not control.get_publishers_info_by_topic("/dp/control_markers")
    finally:
        control.destroy_node()


def test_unusable_model_turns_markers_off_and_the_loop_runs_on(rclpy_context, urdf):
    """A marker_ee_frame that the URDF lacks: no markers, said on /diagnostics; control unaffected."""
    from dp_control.control_node import ControlNode

    params = {"autostart": True, "backend": "position", "controller_check_timeout_s": 0.2,
              "marker_ee_frame": "no_such_link", "max_start_distance": 0.5}  # fmt: skip
    control = ControlNode(
        context=rclpy_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
    )
    robot = Robot(rclpy_context, control, urdf)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(control)
    ex.add_node(robot.node)
    try:

        def markers_status() -> str:
            return {v.key: v.value for v in control.diag.build_status().values}.get("markers", "")

        assert spin_until(ex, lambda: markers_status().startswith("off:"), 10.0)
        assert "'no_such_link' is not a frame of robot_description" in markers_status()
        assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 15.0)
        n0 = len(robot.commands)
        assert spin_until(ex, lambda: len(robot.commands) >= n0 + 20, 5.0)
        spin_for(ex, 0.5)
        assert not robot.markers
    finally:
        ex.shutdown()
        robot.node.destroy_node()
        control.destroy_node()
