"""~/go_to_start and ~/record_start: the jerk-limited streamed move (core and a real rclpy graph) and
the MoveIt path against the fake moveit_py in test/fakes/moveit_py (calls recorded and checked)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from dp_common.msgs import now_ns
from dp_common.msgs.joint_state import build_joint_state
from dp_common.testing import spin_for, spin_until
from dp_control.core import ControlState
from dp_control.core.start_move import MinJerkMove, min_jerk_duration
from dp_control.start_pose import default_srdf_file, srdf_group_state

# The core tests' simulator and limit checks, and control_node's test robot (one copy of each; pytest
# runs with --import-mode=importlib, so test modules are imported from this directory explicitly).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_control_core import JERK_ATOL, JERK_RTOL, Q0, Sim, assert_within_limits, chunk_from, make_core  # noqa: E402
from test_control_core import smooth_traj as core_traj  # noqa: E402
from test_control_node import FakeRobot  # noqa: E402

JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
FAKES = Path(__file__).resolve().parent / "fakes" / "moveit_py"
READY = srdf_group_state(default_srdf_file().read_text(), "panda_arm", "ready", JOINTS)
LOW_JERK = [50.0] * 7  # rad/s^3: binds at 50 Hz (2 a_max / T >= 375), so the jerk limit is exercised


# ------------------------------------------------------------------------------------------ core
def test_srdf_group_state_reads_ready_and_explains_errors():
    np.testing.assert_allclose(READY, [0, -0.785398, 0, -2.356194, 0, 1.570796, 0.785398])
    text = default_srdf_file().read_text()
    with pytest.raises(ValueError, match="no group_state 'nowhere'.*ready"):
        srdf_group_state(text, "panda_arm", "nowhere", JOINTS)
    with pytest.raises(ValueError, match="no value for joints \\['elbow'\\]"):
        srdf_group_state(text, "panda_arm", "ready", [*JOINTS[:6], "elbow"])


def test_min_jerk_profile_keeps_limits_when_sampled():
    v, a, j, T = np.full(3, 1.0), np.full(3, 4.0), np.full(3, 50.0), 0.02
    q0, q1 = np.zeros(3), np.array([0.5, -1.2, 0.0])
    dur = min_jerk_duration(q1 - q0, v, a, j, T)
    assert dur > 0 and abs(dur / T - round(dur / T)) < 1e-9
    move = MinJerkMove(q0, q1, 1.0, dur)
    ts = 1.0 + T * np.arange(-2, round(dur / T) + 4)
    q = move.sample(ts)[0]
    np.testing.assert_allclose(q[-1], q1)
    vel = np.diff(q, axis=0) / T
    acc = np.diff(vel, axis=0) / T
    jerk = np.diff(acc, axis=0) / T
    assert np.abs(vel).max() <= 1.0 and np.abs(acc).max() <= 4.0
    assert np.abs(jerk).max() <= 50.0 * (1 + JERK_RTOL)
    assert min_jerk_duration(np.zeros(3), v, a, j, T) == 0.0


@pytest.mark.parametrize("jerk", [None, LOW_JERK])
def test_core_start_move_reaches_pose_within_limits_and_returns_to_inactive(jerk):
    core = make_core() if jerk is None else make_core(max_jerk=jerk, jerk_scale=1.0)
    core.disable()
    assert core.state == ControlState.INACTIVE
    sim = Sim(core, Q0)
    sim.run_until(0.1)
    out = core.start_move(READY, sim.t)
    assert out.startswith("started"), out
    assert core.state == ControlState.MOVING
    assert core.submit_chunk(chunk_from(core_traj, sim.t - 0.05), sim.t).startswith("ignored")
    sim.run_until(4.0)
    assert core.state == ControlState.INACTIVE and core.move_result.startswith("done")
    cmds = [(t, c) for t, c in sim.log if c is not None]
    q = np.array([c.positions for _, c in cmds])
    v = np.array([c.velocities for _, c in cmds])
    np.testing.assert_allclose(q[-1], READY, atol=1e-9)
    assert_within_limits(core, q, v)  # position, velocity, acceleration and jerk (when finite)
    assert core.stats.clamp_ticks == 0  # the profile itself is feasible: the limiter never intervened


def test_core_start_move_refused_while_following_chunks_and_aborted_on_stale_states():
    core = make_core()
    sim = Sim(core, core_traj(0.0))
    for i in range(15):
        sim.pending.append((0.1 * i + 0.06, chunk_from(core_traj, 0.1 * i, chunk_id=i)))
    sim.run_until(0.5)
    assert core.state == ControlState.RUNNING
    out = core.start_move(READY, sim.t)
    assert out.startswith("refused") and "following chunks" in out
    assert core.state == ControlState.RUNNING
    out = core.start_move(np.full(7, 9.0), sim.t)
    assert out.startswith("refused")

    core = make_core()  # armed, at rest: the move starts; joint_states go silent -> aborted and held
    sim = Sim(core, Q0)
    sim.run_until(0.1)
    assert core.start_move(READY, sim.t).startswith("started")
    sim.run_until(0.4)
    sim.state_silent = True
    sim.run_until(2.0)
    assert core.state == ControlState.HOLDING and "joint_states silent" in core.reason
    assert core.move_result.startswith("aborted")
    ts, q, v = sim.checked_commands()
    assert np.abs(v[-1]).max() < 1e-9  # braked to rest, short of the pose
    assert np.abs(q[-1] - READY).max() > 1e-3


# ------------------------------------------------------------------------------------ rclpy graph
class Arm:
    """Test-side node: a joint_states source that tracks control_node's commands ideally (or is moved
    by the fake MoveIt), and Trigger clients for the two services."""

    def __init__(self, context, control, q0):
        from sensor_msgs.msg import JointState
        from std_srvs.srv import Trigger

        from dp_common.qos import reliable_qos

        self.node = Node("fake_arm", context=context)
        self.control = control
        self.q = np.array(q0, dtype=np.float64)
        self.publishing = True
        self.pub = self.node.create_publisher(JointState, "joint_states", reliable_qos(50))
        self.go = self.node.create_client(Trigger, "/control_node/go_to_start")
        self.record = self.node.create_client(Trigger, "/control_node/record_start")
        self.Trigger = Trigger
        self.commands = []  # every command control_node sent: (t, positions, velocities)
        send = control._commands.send

        def spy(cmd, t_now, measured=None):  # records, then publishes as control_node would
            self.commands.append((cmd.t, cmd.positions.copy(), cmd.velocities.copy()))
            self.q = cmd.positions.copy()  # the arm tracks every command sent ideally
            send(cmd, t_now, measured)

        control._commands.send = spy
        self.node.create_timer(0.01, self._publish)

    def _publish(self):
        if self.publishing:
            self.pub.publish(build_joint_state(now_ns(self.node), JOINTS, self.q))

    def call(self, ex, client):
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(self.Trigger.Request())
        assert spin_until(ex, future.done, 10.0)
        return future.result()


@pytest.fixture
def graph(rclpy_context):
    made = []

    def build(q0, **params):
        from dp_control.control_node import ControlNode

        # A generous state_timeout: this test is about the move, not the watchdog (a loaded CI machine
        # can starve the test's joint_states timer for a few hundred ms).
        params.setdefault("state_timeout", 2.0)
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        control = ControlNode(context=rclpy_context, parameter_overrides=overrides)
        arm = Arm(rclpy_context, control, q0)
        ex = SingleThreadedExecutor(context=rclpy_context)
        ex.add_node(control)
        ex.add_node(arm.node)
        made.append((ex, control, arm))
        # Until the control loop has taken a measurement (the services refuse without recent ones).
        assert spin_until(ex, lambda: control.core._measured is not None, 10.0)
        return ex, control, arm

    try:
        yield build
    finally:
        for ex, control, arm in made:
            ex.shutdown()
            arm.node.destroy_node()
            control.destroy_node()


def _check_streamed_limits(control, commands):
    """The core's own finite differences (dt clipped as in ControlCore.step) keep every limit."""
    lim, T = control.core.limits, control.cfg.period_s
    t = np.array([c[0] for c in commands])
    q = np.array([c[1] for c in commands])
    v = np.array([c[2] for c in commands])
    lo, hi = control.core.limiter.lower, control.core.limiter.upper
    assert (q >= lo - 1e-9).all() and (q <= hi + 1e-9).all()
    assert (np.abs(v) <= lim.max_velocity * (1 + 1e-9)).all()
    # a_n = (v_n - v_{n-1}) / dt_n from the second command on (the first one's dt is the time since the
    # service call); jerk from the third on. The core tests check the stream from rest exactly.
    dt = np.clip(np.diff(t), 0.5 * T, 2.0 * T)[:, None]
    a = np.diff(v, axis=0) / dt
    assert (np.abs(a) <= lim.max_acceleration * (1 + 1e-9)).all()
    jerk = np.diff(a, axis=0) / dt[1:]
    assert (np.abs(jerk) <= lim.max_jerk * (1 + JERK_RTOL) + JERK_ATOL).all()


def test_go_to_start_streams_to_recorded_then_named_pose(graph):
    ex, control, arm = graph(Q0, backend="trajectory", max_jerk=LOW_JERK, jerk_scale=1.0)
    res = arm.call(ex, arm.record)  # the arm is at Q0: recorded
    assert res.success and "panda_joint4=-2.0000" in res.message
    arm.q = Q0 + np.array([0.2, -0.1, 0.0, 0.1, 0.0, 0.0, -0.2])  # moved by hand, controller inactive
    spin_for(ex, 0.3)
    res = arm.call(ex, arm.go)
    assert res.success and res.message.startswith("started") and "recorded" in res.message, res.message
    assert control.core.state == ControlState.MOVING
    assert spin_until(ex, lambda: control.core.move_result.startswith("done"), 20.0), control.core.move_result
    assert control.core.state == ControlState.INACTIVE  # came from inactive: back to inactive
    np.testing.assert_allclose(arm.q, Q0, atol=1e-6)
    _check_streamed_limits(control, arm.commands)

    control.start_pose.recorded = None  # now the SRDF's 'ready' (start_state_name default)
    arm.commands.clear()
    res = arm.call(ex, arm.go)
    assert res.success and "group_state 'ready'" in res.message, res.message
    assert spin_until(ex, lambda: control.core.move_result.startswith("done"), 20.0), control.core.move_result
    np.testing.assert_allclose(arm.q, READY, atol=1e-6)
    _check_streamed_limits(control, arm.commands)
    assert control._snapshot()["start move"].startswith("done")  # what /diagnostics reports


def test_go_to_start_refused_while_following_chunks(graph, rclpy_context):
    from dp_control.control_node import ControlNode

    control = ControlNode(context=rclpy_context, parameter_overrides=[Parameter("autostart", value=True)])
    robot = FakeRobot(rclpy_context, control)
    arm_node = Node("trigger_client", context=rclpy_context)
    from std_srvs.srv import Trigger

    client = arm_node.create_client(Trigger, "/control_node/go_to_start")
    ex = SingleThreadedExecutor(context=rclpy_context)
    for n in (control, robot.node, arm_node):
        ex.add_node(n)
    try:
        assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 10.0)
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(Trigger.Request())
        assert spin_until(ex, future.done, 10.0)
        res = future.result()
        assert not res.success and "following chunks" in res.message, res.message
        assert control.core.state == ControlState.RUNNING
    finally:
        ex.shutdown()
        for n in (arm_node, robot.node):
            n.destroy_node()
        control.destroy_node()


# ------------------------------------------------------------------------------- MoveIt (fake)
@pytest.fixture
def fake_moveit(monkeypatch, rclpy_context):
    monkeypatch.syspath_prepend(str(FAKES))
    for name in [m for m in sys.modules if m == "moveit" or m.startswith("moveit.")]:
        monkeypatch.delitem(sys.modules, name)
    from moveit.planning import MoveItPy, fake_setup

    from dp_sim.core.robot import find_panda_urdf

    # What the real MoveItPy reads from its parameters: the URDF and SRDF (its node follows joint_states).
    fake_setup(rclpy_context, find_panda_urdf().read_text(), default_srdf_file().read_text())
    MoveItPy.reset()
    try:
        yield MoveItPy
    finally:
        MoveItPy.reset()
        for name in [m for m in sys.modules if m == "moveit" or m.startswith("moveit.")]:
            del sys.modules[name]


def test_go_to_start_plans_from_current_state_and_executes_with_moveit(graph, fake_moveit):
    ex, control, arm = graph(Q0, backend="moveit")
    assert len(fake_moveit.instances) == 1  # the checker's MoveItPy, reused for planning

    def execute(traj):  # the fake arm follows the executed trajectory to its goal
        goal = traj.goal
        if "configuration_name" in goal:
            srdf = default_srdf_file().read_text()
            arm.q = srdf_group_state(srdf, "panda_arm", goal["configuration_name"], JOINTS)
        else:
            arm.q = np.array([goal["robot_state"][j] for j in JOINTS])

    fake_moveit.execute_hook = execute
    res = arm.call(ex, arm.go)
    assert res.success and "MoveIt" in res.message, res.message
    assert spin_until(ex, lambda: control.core.move_result.startswith("done"), 20.0), control.core.move_result
    assert control.core.state == ControlState.INACTIVE
    np.testing.assert_allclose(arm.q, READY)
    names = [c[0] for c in fake_moveit.calls]
    i = names.index("get_planning_component")
    start, goal = "set_start_state_to_current_state", "set_goal_state"
    assert names[i:] == ["get_planning_component", start, goal, "plan", "execute"]
    calls = dict(fake_moveit.calls[i:])
    assert calls["get_planning_component"]["name"] == "panda_arm"
    assert calls["set_goal_state"] == {"configuration_name": "ready"}
    assert calls["plan"]["start"] == "current state"
    assert calls["execute"]["trajectory"] is calls["plan"]["trajectory"]  # the planned one
    assert calls["execute"]["controllers"] == []
    assert not arm.commands  # nothing streamed by control_node meanwhile

    # A recorded pose is planned to as a RobotState goal with exactly those joints.
    q1 = READY + np.array([0.1, 0.05, 0.0, -0.1, 0.0, 0.1, 0.0])
    arm.q = q1.copy()
    spin_for(ex, 0.3)
    assert arm.call(ex, arm.record).success
    arm.q = READY.copy()
    spin_for(ex, 0.3)
    fake_moveit.calls.clear()
    res = arm.call(ex, arm.go)
    assert res.success and "recorded" in res.message
    done = lambda: len(fake_moveit.calls) >= 5 and control.core.state == ControlState.INACTIVE  # noqa: E731
    assert spin_until(ex, done, 20.0)
    goal = dict(fake_moveit.calls)["set_goal_state"]["robot_state"]
    np.testing.assert_allclose([goal[j] for j in JOINTS], q1, atol=1e-9)
    np.testing.assert_allclose(arm.q, q1, atol=1e-9)

    # Planning fails: reported, back to inactive, nothing moved.
    fake_moveit.plan_succeeds = False
    arm.call(ex, arm.go)
    assert spin_until(ex, lambda: control.core.move_result.startswith("failed"), 20.0)
    assert "planning" in control.core.move_result and control.core.state == ControlState.INACTIVE
