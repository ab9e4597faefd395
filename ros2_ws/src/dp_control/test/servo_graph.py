"""Run by test_servo_backend.py in a subprocess whose environment has control_msgs and moveit_msgs (the real
packages or the stand-ins of ``fakes/``): control_node's ``servo`` backend against a fake MoveIt Servo.

The fake servo_node offers Servo's ROS interface (``servo_interface`` jazzy: ~/switch_command_type,
~/pause_servo, moveit_msgs/ServoStatus; humble: ~/start_servo, ~/stop_servo, std_msgs/Int8), subscribes
JointJog on ~/delta_joint_cmds and, while it is started, integrates the commanded velocities like an
ideal Servo: each command's velocities over the interval to the next command's stamp, at most
incoming_command_timeout (so that the
result does not depend on how this loaded test machine schedules threads), skipping commands that are
not for the arm's joints or not finite. The integrated arm is published on joint_states at 100 Hz (the
arm the control node measures).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from dp_common.msgs import now_ns, s_to_ns, stamp_to_ns
from dp_common.msgs.chunk import build_chunk
from dp_common.msgs.joint_state import build_joint_state
from dp_common.testing import spin_for, spin_until
from dp_control.core import ControlState

JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
Q0 = np.array([0.0, -0.4, 0.0, -2.0, 0.0, 1.6, 0.8])
TIMEOUT_S = 0.1  # Servo's incoming_command_timeout


def traj(t):
    t = np.asarray(t, dtype=np.float64)
    return Q0 + 0.1 * np.sin(2 * np.pi * 0.3 * t[..., None] + np.linspace(0, 2, 7))


class FakeServo:
    """MoveIt Servo's ROS interface (see the module docstring) + the test's policy and /diagnostics sink."""

    def __init__(self, context, interface: str):
        from control_msgs.msg import JointJog
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState

        from dp_common.qos import chunk_qos, reliable_qos
        from dp_msgs.msg import ActionChunk

        self.interface = interface
        self.node = n = Node("servo_node", context=context)
        self.world = w = Node("world", context=context)
        self.q = Q0.copy()
        self.started = False
        self.requests: list[str] = []
        self.jogs: list[tuple[int, list[str], np.ndarray]] = []  # (stamp ns, names, velocities)
        self.latest = None
        self.track: list[tuple[int, np.ndarray]] = []
        self.diag_text: list[str] = []
        n.create_subscription(JointJog, "~/delta_joint_cmds", self._on_jog, 10)
        if interface == "jazzy":
            from moveit_msgs.msg import ServoStatus
            from moveit_msgs.srv import ServoCommandType
            from std_srvs.srv import SetBool

            self.command_type = -1
            n.create_service(ServoCommandType, "~/switch_command_type", self._on_switch)
            n.create_service(SetBool, "~/pause_servo", self._on_pause)
            self.Status = ServoStatus
        else:
            from std_msgs.msg import Int8
            from std_srvs.srv import Trigger

            n.create_service(Trigger, "~/start_servo", self._on_start)
            n.create_service(Trigger, "~/stop_servo", self._on_stop)
            self.Status = Int8
        self.status_pub = n.create_publisher(self.Status, "~/status", 10)
        self.js_pub = n.create_publisher(JointState, "joint_states", reliable_qos(50))
        n.create_timer(0.01, self._publish_state)
        # Servo is its own process on a robot: its node is spun by its own executor in its own thread.
        self._stop = threading.Event()
        self._ex = SingleThreadedExecutor(context=context)
        self._ex.add_node(n)
        self._threads = [threading.Thread(target=self._spin, daemon=True)]
        for thread in self._threads:
            thread.start()
        # The policy (chunks at 10 Hz) and a /diagnostics sink.
        self.chunk_pub = w.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
        self.send_chunks = True
        self.chunk_id = 0
        self.t0 = now_ns(w)
        w.create_timer(0.1, self._chunk)
        w.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    # --- Servo's services
    def _on_switch(self, request, response):
        self.requests.append(f"switch_command_type {request.command_type}")
        self.command_type = request.command_type
        response.success = request.command_type in (0, 1, 2)
        return response

    def _on_pause(self, request, response):
        self.requests.append(f"pause_servo {request.data}")
        self.started = not request.data and self.command_type == 0
        response.success = True
        return response

    def _on_start(self, request, response):
        self.requests.append("start_servo")
        self.started = response.success = True
        return response

    def _on_stop(self, request, response):
        self.requests.append("stop_servo")
        self.started, response.success = False, True
        return response

    def status(self, code: int, message: str = "") -> None:
        if self.interface == "jazzy":
            self.status_pub.publish(self.Status(code=code, message=message))
        else:
            self.status_pub.publish(self.Status(data=code))

    # --- Servo's loop
    def _on_jog(self, msg):
        stamp, names, v = stamp_to_ns(msg.header.stamp), list(msg.joint_names), np.array(msg.velocities)
        self.jogs.append((stamp, names, v))
        if self.started and self.latest is not None:
            prev_stamp, prev_names, prev_v = self.latest
            dt = (stamp - prev_stamp) * 1e-9
            if prev_names == JOINTS and np.all(np.isfinite(prev_v)) and dt > 0.0:
                # Servo applies a command until the next one, or until it is older than its timeout
                self.q = self.q + prev_v * min(dt, TIMEOUT_S)
                self.track.append((stamp, self.q.copy()))  # the arm at this command's stamp
        self.latest = (stamp, names, v)

    def _spin(self):
        while not self._stop.is_set():
            self._ex.spin_once(timeout_sec=0.01)

    def close(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(2.0)
        self._ex.shutdown()
        self.node.destroy_node()

    def _publish_state(self):
        self.js_pub.publish(build_joint_state(now_ns(self.node), JOINTS, self.q))

    # --- policy, diagnostics
    def _chunk(self):
        if not self.send_chunks:
            return
        self.chunk_id += 1
        stamp = now_ns(self.world) - s_to_ns(0.05)
        rows = traj((stamp - self.t0) * 1e-9 + 0.1 * np.arange(15))
        self.chunk_pub.publish(build_chunk(stamp, rows, JOINTS, 0.1, chunk_id=self.chunk_id, policy_id="t"))

    def _on_diag(self, msg):
        for status in msg.status:
            values = " ".join(f"{v.key}={v.value}" for v in status.values)
            self.diag_text.append(f"{status.message} {values}")


def _graph(context, interface, **params):
    from dp_control.control_node import ControlNode

    overrides = {"backend": "servo", "servo_interface": interface, "autostart": True, "gripper_joint": "",
                 **params}  # fmt: skip
    control = ControlNode(
        context=context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )
    servo = FakeServo(context, interface)
    ex = SingleThreadedExecutor(context=context)
    for node in (control, servo.world):
        ex.add_node(node)
    return ex, control, servo


def _close(ex, control, servo):
    servo.close()
    ex.shutdown()
    servo.world.destroy_node()
    control.destroy_node()


def test_servo_jazzy_tracks_holds_and_survives_bad_input(rclpy_context):
    from std_srvs.srv import SetBool

    ex, control, servo = _graph(rclpy_context, "jazzy")
    try:
        # Started through Servo's Jazzy interface, in order: JointJog command type, then unpause.
        assert spin_until(ex, lambda: control._commands.servo.ready, 10.0), servo.requests
        assert servo.requests[:2] == ["switch_command_type 0", "pause_servo False"]
        assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 10.0), control.core.reason

        # 1. What Servo integrates tracks the commanded positions: the arm at each JointJog's stamp vs the
        # command of the tick that sent it (recorded by a spy around the streamer's send).
        streamer = control._commands.servo
        sent: dict[int, np.ndarray] = {}  # JointJog stamp -> the command it was sent for
        real_send = streamer.send

        def spy(cmd, measured):
            real_send(cmd, measured)
            sent[streamer.last_stamp_ns] = cmd.positions.copy()

        streamer.send = spy
        spin_for(ex, 1.0)
        n0 = len(servo.track)
        spin_for(ex, 2.0)
        errors = [np.abs(q - sent[stamp]).max() for stamp, q in servo.track[n0:] if stamp in sent]
        p50, p90, p100 = np.percentile(errors, [50, 90, 100])
        assert len(errors) > 30 and p50 < 0.005 and p100 < 0.03, (len(errors), p50, p90, p100)
        assert np.abs(servo.q - Q0).max() > 0.02  # it did move
        # Every JointJog: the arm's joint names, stamped now, velocities only.
        recent = servo.jogs[-20:]
        assert all(names == JOINTS for _, names, _ in recent)
        assert all(abs(now_ns(servo.node) - stamp) < s_to_ns(1.0) for stamp, _, _ in recent)
        assert any(np.abs(v).max() > 1e-3 for _, _, v in recent)

        # 2. Servo reports a halt (collision): control holds and streams zero velocities.
        servo.status(5, "Collision detected, emergency stop")
        assert spin_until(ex, lambda: control.core.stats.holds["servo"] >= 1, 5.0)
        spin_for(ex, 0.2)  # JointJogs published before the hold may still be in flight
        n0 = len(servo.jogs)
        spin_for(ex, 0.5)
        held = servo.jogs[n0:]
        assert len(held) > 5 and all(np.abs(v).max() == 0.0 for _, _, v in held)
        assert spin_until(
            ex, lambda: any("MoveIt Servo halted: Collision detected" in t for t in servo.diag_text), 5.0
        )
        # ... and follows chunks again once Servo is clear.
        servo.status(0, "No warnings")
        assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 10.0), control.core.reason
        n0 = len(servo.jogs)
        spin_for(ex, 0.5)
        assert any(np.abs(v).max() > 1e-3 for _, _, v in servo.jogs[n0:])

        # 3. Bad input never stops the node: unknown status codes, malformed chunks.
        servo.status(99, "")
        rows = np.tile(Q0, (15, 1))
        bad = build_chunk(now_ns(servo.world), rows, JOINTS, 0.1, chunk_id=10**6, policy_id="t")
        bad.data = [float("nan")] * len(bad.data)
        short = build_chunk(now_ns(servo.world), rows, JOINTS, 0.1, chunk_id=10**6 + 1)
        short.data = list(short.data)[:-3]
        n_rejected = control.diag.counter("chunks rejected")
        for msg in (bad, short):
            servo.chunk_pub.publish(msg)
            spin_for(ex, 0.05)
        assert spin_until(ex, lambda: control.diag.counter("chunks rejected") >= n_rejected + 2, 5.0)
        assert spin_until(ex, lambda: any("status code 99" in t for t in servo.diag_text), 5.0)
        servo.status(0, "No warnings")
        assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 10.0), control.core.reason
        assert control.fatal is None and control.loop_thread.alive

        # 4. Policy stops: the watchdog brakes to rest; the stream ends at zero velocity.
        servo.send_chunks = False
        assert spin_until(ex, lambda: control.core.state == ControlState.HOLDING, 5.0)
        spin_for(ex, 1.0)
        assert np.abs(servo.jogs[-1][2]).max() < 1e-3

        # 5. ~/enable false: zero velocities and Servo paused.
        client = servo.world.create_client(SetBool, "/control_node/enable")
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(SetBool.Request(data=False))
        assert spin_until(ex, future.done, 5.0)
        assert spin_until(ex, lambda: "pause_servo True" in servo.requests, 5.0), servo.requests
        assert np.abs(servo.jogs[-1][2]).max() == 0.0
    finally:
        _close(ex, control, servo)


def test_servo_humble_interface(rclpy_context):
    ex, control, servo = _graph(rclpy_context, "humble")
    try:
        assert spin_until(ex, lambda: control._commands.servo.ready, 10.0), servo.requests
        assert servo.requests[0] == "start_servo"
        assert spin_until(ex, lambda: control.core.state == ControlState.RUNNING, 10.0), control.core.reason
        spin_for(ex, 1.0)
        assert np.abs(servo.q - control.command_positions()).max() < 0.03
        servo.status(4)  # Humble's HALT_FOR_COLLISION
        assert spin_until(ex, lambda: control.core.stats.holds["servo"] >= 1, 5.0)
        spin_for(ex, 0.2)  # JointJogs published before the hold may still be in flight
        n0 = len(servo.jogs)
        spin_for(ex, 0.3)
        assert len(servo.jogs) > n0 and all(np.abs(v).max() == 0.0 for _, _, v in servo.jogs[n0:])
        assert spin_until(
            ex, lambda: any("Collision detected, emergency stop" in t for t in servo.diag_text), 5.0
        )
    finally:
        _close(ex, control, servo)


def test_servo_waits_for_servo_node(rclpy_context):
    """No servo_node: control holds, reports that Servo is not available, and sends zero velocities only."""
    from control_msgs.msg import JointJog
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState

    from dp_control.control_node import ControlNode

    control = ControlNode(
        context=rclpy_context,
        parameter_overrides=[Parameter("backend", value="servo"), Parameter("autostart", value=True),
                             Parameter("gripper_joint", value=""), Parameter("servo_node", value="no_servo")],
    )  # fmt: skip
    n = Node("probe", context=rclpy_context)
    jogs, diag = [], []
    n.create_subscription(JointJog, "no_servo/delta_joint_cmds", jogs.append, 10)
    n.create_subscription(
        DiagnosticArray, "/diagnostics", lambda m: diag.extend(s.message for s in m.status), 10
    )
    js = n.create_publisher(JointState, "joint_states", 10)
    n.create_timer(0.01, lambda: js.publish(build_joint_state(now_ns(n), JOINTS, Q0)))
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(control)
    ex.add_node(n)
    try:
        assert spin_until(ex, lambda: any("not available" in m for m in diag), 10.0), diag[-3:]
        assert (
            control.core.state == ControlState.HOLDING and "waiting for MoveIt Servo" in control.core.reason
        )
        spin_for(ex, 0.3)
        assert jogs and all(max(abs(v) for v in m.velocities) == 0.0 for m in jogs)
    finally:
        ex.shutdown()
        n.destroy_node()
        control.destroy_node()


if __name__ == "__main__":
    pytest.main([__file__])
