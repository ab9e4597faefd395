"""control_node in-process over real DDS: both backends, loop thread and sim-time timer, hold on chunk
timeout, bad chunks, latched tracking fault, ~/enable."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from dp_common.msgs import now_ns, ns_to_stamp, s_to_ns
from dp_common.msgs.chunk import build_chunk
from dp_common.msgs.joint_state import build_joint_state
from dp_common.testing import spin_for, spin_until
from dp_control.backends import MoveItUnavailable, ValidityGate, check_controller_joints
from dp_control.core import ControlConfig, ControlState

JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
Q0 = np.array([0.0, -0.4, 0.0, -2.0, 0.0, 1.6, 0.8])


def traj(t):
    t = np.asarray(t, dtype=np.float64)
    return Q0 + 0.1 * np.sin(2 * np.pi * 0.3 * t[..., None] + np.linspace(0, 2, 7))


class FakeRobot:
    """Test-side node: joint_states (arm and gripper as separate partial messages), chunks, sinks."""

    def __init__(self, context, control_node, use_sim_time=False):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from std_srvs.srv import SetBool
        from trajectory_msgs.msg import JointTrajectory

        from dp_common.qos import chunk_qos, reliable_qos
        from dp_msgs.msg import ActionChunk

        self.node = Node(
            "fake_robot",
            context=context,
            parameter_overrides=[Parameter("use_sim_time", value=use_sim_time)],
        )
        self.control = control_node
        self.js_pub = self.node.create_publisher(JointState, "joint_states", reliable_qos(50))
        self.chunk_pub = self.node.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
        self.trajs, self.positions, self.grippers, self.diags = [], [], [], []
        n = self.node
        n.create_subscription(
            JointTrajectory, "joint_trajectory_controller/joint_trajectory", self.trajs.append, 10
        )
        n.create_subscription(
            Float64MultiArray, "forward_position_controller/commands", self.positions.append, 10
        )
        n.create_subscription(Float64MultiArray, "gripper_controller/commands", self.grippers.append, 10)
        n.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 10)
        self.enable_client = n.create_client(SetBool, "/control_node/enable")
        self.SetBool = SetBool
        self.ros_t0 = self.now()
        self.send_chunks = True
        self.offset = np.zeros(len(JOINTS))  # added to the echoed state (tracking error)
        self.chunk_id = 0
        self.js_timer = n.create_timer(0.01, self._publish_state)
        self.chunk_timer = n.create_timer(0.1, self._publish_chunk)

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _publish_state(self):
        q = self.control.command_positions()
        q = (Q0 if q is None else q) + self.offset
        self.js_pub.publish(build_joint_state(now_ns(self.node), JOINTS, q))
        self.js_pub.publish(build_joint_state(0, ["panda_finger_joint1"], [0.02]))

    def chunk_msg(self, stamp, fn=traj, names=JOINTS, gripper=True):
        rows = fn(stamp - self.ros_t0 + 0.1 * np.arange(15))
        names = list(names)
        if gripper:
            rows = np.hstack([rows, np.full((rows.shape[0], 1), 0.04)])
            names.append("panda_finger_joint1")
        self.chunk_id += 1
        return build_chunk(s_to_ns(stamp), rows, names, 0.1, chunk_id=self.chunk_id, policy_id="test")

    def _publish_chunk(self):
        if self.send_chunks:
            self.chunk_pub.publish(self.chunk_msg(self.now() - 0.05))


@pytest.fixture
def graph(rclpy_context):
    made = []

    def build(**params):
        from dp_control.control_node import ControlNode

        overrides = [Parameter(k, value=v) for k, v in params.items()]
        control = ControlNode(context=rclpy_context, parameter_overrides=overrides)
        robot = FakeRobot(rclpy_context, control, use_sim_time=params.get("use_sim_time", False))
        ex = SingleThreadedExecutor(context=rclpy_context)
        ex.add_node(control)
        ex.add_node(robot.node)
        made.append((ex, control, robot))
        return ex, control, robot

    try:
        yield build
    finally:
        for ex, control, robot in made:
            ex.shutdown()
            robot.node.destroy_node()
            control.destroy_node()


def test_trajectory_backend_follows_rejects_bad_chunk_and_holds_on_timeout(graph):
    ex, control, robot = graph(autostart=True, backend="trajectory")
    assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 10.0)
    n0 = len(robot.trajs)
    assert spin_until(ex, lambda: len(robot.trajs) >= n0 + 15, 5.0)
    msg = robot.trajs[-1]
    assert list(msg.joint_names) == JOINTS
    assert len(msg.points) >= 15 and len(msg.points[0].velocities) == 7
    assert not any(msg.points[-1].velocities)  # preview ends at rest
    assert robot.grippers and robot.grippers[-1].data[0] == pytest.approx(0.04)

    # A NaN chunk is rejected; the node keeps following good chunks. (Chunks are keep-last 1:
    # pause the good stream so the bad one is not overwritten before it is taken.)
    robot.send_chunks = False
    bad = robot.chunk_msg(robot.now() - 0.05)
    bad.data[3] = float("nan")
    robot.chunk_pub.publish(bad)
    assert spin_until(ex, lambda: control.core.stats.rejected["nan"] >= 1, 5.0)
    robot.send_chunks = True
    accepted = control.core.stats.chunks_accepted
    assert spin_until(ex, lambda: control.core.stats.chunks_accepted >= accepted + 3, 5.0)
    assert control.core.state == ControlState.RUNNING

    # No more chunks: the watchdog brakes to rest and holds.
    robot.send_chunks = False
    assert spin_until(ex, lambda: control.core.state == ControlState.HOLDING, 5.0)
    assert "chunk_timeout" in control.core.reason

    def diag_has_holding():
        for arr in robot.diags:
            for status in arr.status:
                values = {kv.key: kv.value for kv in status.values}
                if values.get("state") == "holding" and "period error p99 ms" in values:
                    return True
        return False

    assert spin_until(ex, diag_has_holding, 5.0)


def diag_values(robot) -> list[dict[str, str]]:
    return [{kv.key: kv.value for kv in st.values} for arr in robot.diags for st in arr.status]


def call_enable(ex, robot, data: bool):
    future = robot.enable_client.call_async(robot.SetBool.Request(data=data))
    assert spin_until(ex, future.done, 5.0)
    return future.result()


def test_loop_thread_drives_the_loop_and_tracking_fault_latches_until_enable(graph):
    ex, control, robot = graph(autostart=True, backend="trajectory")
    # System clock (use_sim_time false): the loop runs in its own thread, not in the executor.
    assert control._timer is None and control.loop_thread is not None and control.loop_thread.alive
    assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 10.0)
    ticks0, n0 = control.loop_thread.ticks, len(robot.trajs)
    spin_for(ex, 1.0)
    # ~50 ticks in 1 s; generous bounds (shared machine): behaviour, not timing.
    assert 10 <= control.loop_thread.ticks - ticks0 <= 100
    assert len(robot.trajs) - n0 >= 10
    assert control.core.state == ControlState.RUNNING
    assert spin_until(
        ex,
        lambda: any(
            v.get("loop", "").startswith("thread") and "missed deadlines" in v for v in diag_values(robot)
        ),
        5.0,
    )

    # Measured state off by more than max_tracking_error: fault, latched even once the error is gone.
    robot.offset[2] = control.cfg.max_tracking_error + 0.1
    assert spin_until(ex, lambda: control.core.state == ControlState.FAULT, 5.0)
    assert "tracking error" in control.core.reason and "panda_joint3" in control.core.reason
    robot.offset[:] = 0.0
    spin_for(ex, 0.5)
    assert control.core.state == ControlState.FAULT
    # ~/enable true re-arms it; the chunk stream (still running) is followed again.
    result = call_enable(ex, robot, True)
    assert result.success and result.message == "armed"
    assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 5.0)


def test_destroy_stops_the_loop_thread_and_restores_the_switch_interval(rclpy_context):
    import sys

    from dp_control.control_node import ControlNode

    before = sys.getswitchinterval()
    control = ControlNode(context=rclpy_context, parameter_overrides=[Parameter("autostart", value=True)])
    try:
        assert control.loop_thread.alive
        assert sys.getswitchinterval() == pytest.approx(control.cfg.gil_switch_interval_s)
    finally:
        control.destroy_node()
    assert not control.loop_thread.alive
    assert sys.getswitchinterval() == pytest.approx(before)


def test_loop_thread_failure_is_fatal(graph):
    ex, control, robot = graph(autostart=True)

    def broken(*args, **kwargs):
        raise RuntimeError("broken step")

    control.core.step = broken
    assert spin_until(ex, lambda: control.fatal is not None, 5.0)  # main() exits 1 on this
    assert "broken step" in control.fatal
    assert spin_until(ex, lambda: not control.loop_thread.alive, 5.0)


def test_loop_thread_off_uses_a_timer(graph):
    ex, control, robot = graph(autostart=True, loop_thread=False, backend="position")
    assert control.loop_thread is None and control._timer is not None
    assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 10.0)
    n0 = len(robot.positions)
    assert spin_until(ex, lambda: len(robot.positions) >= n0 + 10, 5.0)


def test_position_backend_and_enable_service(graph):
    ex, control, robot = graph(autostart=False, backend="position", controller_check_timeout_s=0.2)
    robot.send_chunks = False
    assert robot.enable_client.wait_for_service(timeout_sec=5.0)
    spin_for(ex, 0.3)  # inactive until enabled: nothing is commanded
    assert control.core.state == ControlState.INACTIVE and not robot.positions

    future = robot.enable_client.call_async(robot.SetBool.Request(data=True))
    assert spin_until(ex, future.done, 5.0)
    assert future.result().success and control.core.state == ControlState.ARMED
    robot.send_chunks = True
    assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 5.0)
    n0 = len(robot.positions)
    assert spin_until(ex, lambda: len(robot.positions) >= n0 + 10, 5.0)
    assert len(robot.positions[-1].data) == 7
    assert np.abs(np.asarray(robot.positions[-1].data) - Q0).max() < 0.3

    future = robot.enable_client.call_async(robot.SetBool.Request(data=False))
    assert spin_until(ex, future.done, 5.0)
    assert spin_until(ex, lambda: control.core.state == ControlState.INACTIVE, 5.0)


def test_position_backend_refuses_mismatched_controller_joints(graph, rclpy_context):
    fake_controller = Node(
        "forward_position_controller",
        context=rclpy_context,
        parameter_overrides=[Parameter("joints", value=list(reversed(JOINTS)))],
        automatically_declare_parameters_from_overrides=True,
    )
    try:
        ex, control, robot = graph(autostart=True, backend="position", controller_check_timeout_s=3.0)
        ex.add_node(fake_controller)
        assert spin_until(ex, lambda: control.fatal is not None, 10.0)
        assert "another order" in control.fatal
        assert not robot.positions
    finally:
        fake_controller.destroy_node()


def test_sim_time_drives_the_loop(graph, rclpy_context):
    from rosgraph_msgs.msg import Clock

    ex, control, robot = graph(autostart=True, use_sim_time=True)
    clock_node = Node("fake_clock", context=rclpy_context)
    clock_pub = clock_node.create_publisher(Clock, "/clock", 10)
    sim = {"t": 1000.0}

    def advance():  # sim time at the wall-clock rate, starting at t = 1000 s
        sim["t"] += 0.005
        clock_pub.publish(Clock(clock=ns_to_stamp(s_to_ns(sim["t"]))))

    clock_node.create_timer(0.005, advance)
    ex.add_node(clock_node)
    try:
        assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 10.0)
        assert spin_until(ex, lambda: len(robot.trajs) >= 10, 5.0)
        assert control.last_command is not None and control.last_command.t > 1000.0
        assert abs(control.last_command.t - sim["t"]) < 0.5
    finally:
        ex.remove_node(clock_node)
        clock_node.destroy_node()


def test_moveit_backend_refuses_without_moveit_py(rclpy_context):
    from dp_control.control_node import ControlNode

    with pytest.raises(MoveItUnavailable, match="moveit_py"):
        ControlNode(context=rclpy_context, parameter_overrides=[Parameter("backend", value="moveit")])


def test_invalid_parameters_fail_with_the_config_message(rclpy_context):
    from dp_control.control_node import ControlNode

    with pytest.raises(ValueError, match="handover must be one of"):
        ControlNode(context=rclpy_context, parameter_overrides=[Parameter("handover", value="mix")])


# ------------------------------------------------------------------ MoveIt-independent backend logic
class FakeScene:
    """Stands in for MoveIt's planning scene: joint 1 beyond 1.0 rad is 'in collision'."""

    def __init__(self):
        self.calls = 0

    def is_valid(self, joint_names, positions):
        self.calls += 1
        return (positions[0] <= 1.0, "link2 collides with table")


def test_validity_gate_checks_command_and_preview():
    scene = FakeScene()
    gate = ValidityGate(scene, JOINTS, preview_stride=5)
    ok, _ = gate.check(Q0, np.tile(Q0, (15, 1)))
    assert ok and scene.calls == 4  # command + preview points 5, 10, 15
    preview = np.tile(Q0, (15, 1))
    preview[9:, 0] = 1.5
    ok, why = gate.check(Q0, preview)
    assert not ok and "preview point 10" in why and "table" in why
    assert gate.invalid_count == 1


def test_moveit_gate_invalid_leads_to_hold():
    """The node's gate path: invalid -> core.hold('moveit_invalid') -> HOLDING with the reason."""
    from dp_control.core import ControlCore, default_limits_file, limits_from_config

    cfg = ControlConfig()
    core = ControlCore(cfg, limits_from_config(cfg, default_limits_file()))
    core.enable()
    cmd = core.step(0.0, Q0)
    gate = ValidityGate(FakeScene(), JOINTS)
    preview = cmd.preview_positions.copy()
    preview[:, 0] = 2.0
    ok, why = gate.check(cmd.positions, preview)
    assert not ok
    core.hold("moveit_invalid", why)
    assert core.state == ControlState.HOLDING and "MoveIt" in core.reason
    assert core.stats.holds["moveit_invalid"] == 1


def test_check_controller_joints_messages():
    assert check_controller_joints(JOINTS, None) is None
    assert check_controller_joints(JOINTS, JOINTS) is None
    assert "another order" in check_controller_joints(JOINTS, list(reversed(JOINTS)))
    assert "missing ['panda_joint7']" in check_controller_joints(JOINTS, JOINTS[:6])


def test_control_yaml_matches_config_defaults():
    import dataclasses
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[1] / "config" / "control.yaml"
    params = yaml.safe_load(path.read_text())["control_node"]["ros__parameters"]
    defaults = ControlConfig()
    for f in dataclasses.fields(ControlConfig):
        value = getattr(defaults, f.name)
        if isinstance(value, list) and not value:
            assert f.name not in params
        else:
            assert params[f.name] == value, f.name


def test_list_parameters_are_validated(rclpy_context):
    from dp_control.control_node import ControlNode

    with pytest.raises(ValueError, match="max_velocity must be empty or have one value per joint"):
        ControlNode(context=rclpy_context, parameter_overrides=[Parameter("max_velocity", value=[1.0] * 6)])


def test_robot_description_sets_position_limits(graph):
    from std_msgs.msg import String

    from dp_common.qos import latched_qos

    ex, control, robot = graph(autostart=False)
    joints = "".join(
        f'<joint name="{j}" type="revolute"><parent link="l{i}"/><child link="l{i + 1}"/>'
        f'<limit lower="-1.5" upper="1.5" velocity="1.0" effort="1"/></joint>'
        for i, j in enumerate(JOINTS)
    )
    links = "".join(f'<link name="l{i}"/>' for i in range(8))
    pub = robot.node.create_publisher(String, "robot_description", latched_qos())
    pub.publish(String(data=f'<robot name="panda">{links}{joints}</robot>'))
    assert spin_until(ex, lambda: control.core.limits.source == "urdf", 5.0)
    np.testing.assert_allclose(control.core.limits.upper, 1.5)
    assert (control.core.limits.max_velocity <= 1.0 * control.cfg.velocity_scale + 1e-12).all()
