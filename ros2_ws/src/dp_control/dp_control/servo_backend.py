"""``backend: servo``: the 50 Hz commands streamed to MoveIt Servo's joint interface.

MoveIt Servo (``moveit_servo``'s ``servo_node``) does collision checking, singularity and joint-limit
handling at its own rate and commands the arm controller itself (its ``command_out_topic``). control_node
sends it control_msgs/JointJog on ``<servo_node>/delta_joint_cmds`` (Servo's ``joint_command_in_topic``
default): ``joint_names`` = ``joint_names``, ``velocities`` from :class:`dp_control.core.JointJogStream`
(rad/s: Servo must run with ``command_in_type: speed_units``), ``header.stamp`` = now on the node clock
(Servo drops commands older than its ``incoming_command_timeout``), ``displacements`` empty (Jazzy's
Servo ignores them). Two versions of Servo's ROS interface, by ``servo_interface``:

- ``jazzy`` (Servo since its 2.9 rewrite: Jazzy, Kilted, Rolling): start = ``~/switch_command_type``
  (moveit_msgs/ServoCommandType, JOINT_JOG) then ``~/pause_servo`` (std_srvs/SetBool) false; stop =
  ``~/pause_servo`` true; status = moveit_msgs/ServoStatus (code, message) on ``~/status``.
- ``humble``: start = ``~/start_servo`` (std_srvs/Trigger); stop = ``~/stop_servo`` (Trigger); status =
  std_msgs/Int8 (Humble's StatusCode) on ``~/status``.

Start is asked on ~/enable true (or autostart), stop on ~/enable false.
Until Servo has
confirmed the start, and while its status is a halt (collision, singularity, joint bound, invalid), the
node holds (``core.hold("servo", ...)``: the commanded state stops advancing, so it does not run away
from an arm Servo has stopped) and sends zero velocities; a hold, a stop or an inactive controller
sends zero velocities. A service that does not answer within ``servo_service_timeout_s`` is reported
and asked again. Every step is on /diagnostics (``servo``, ``servo status``).
"""

from __future__ import annotations

import threading

import numpy as np

from dp_common.diagnostics import WARN
from dp_common.msgs import make_header, now_ns, ns_to_s
from dp_common.qos import reliable_qos
from dp_control.backends import BackendError
from dp_control.core import ControlConfig, JointJogStream

#: Humble's moveit_servo StatusCode (status_codes.h) -> (text, halts motion).
HUMBLE_STATUS = {
    -1: ("Invalid", True),
    0: ("No warnings", False),
    1: ("Moving closer to a singularity, decelerating", False),
    2: ("Very close to a singularity, emergency stop", True),
    3: ("Close to a collision, decelerating", False),
    4: ("Collision detected, emergency stop", True),
    5: ("Close to a joint bound (position or velocity), halting", True),
    6: ("Moving away from a singularity, decelerating", False),
}
#: Jazzy's (moveit_msgs/ServoStatus) codes that halt motion: INVALID, HALT_FOR_SINGULARITY,
#: HALT_FOR_COLLISION, JOINT_BOUND.
JAZZY_HALT_CODES = {-1, 2, 5, 6}
_JOINT_JOG = 0  # moveit_msgs/ServoCommandType.JOINT_JOG


class ServoStreamer:
    """Streams commands to MoveIt Servo as JointJog and drives its start / stop services.

    Args:
        node: the owning node; cfg: its configuration; diag: its diagnostics reporter.

    Raises:
        BackendError: control_msgs (JointJog), or with ``servo_interface: jazzy`` moveit_msgs
            (ServoStatus, ServoCommandType), is not importable.
    """

    def __init__(self, node, cfg: ControlConfig, diag) -> None:
        try:
            from control_msgs.msg import JointJog
        except ImportError as exc:
            raise BackendError(
                "backend 'servo' needs control_msgs (JointJog; ros-<distro>-control-msgs), which is not "
                f"importable here ({exc})"
            ) from exc
        self._JointJog = JointJog
        self._node, self._diag, self.cfg = node, diag, cfg
        self.joint_names = list(cfg.joint_names)
        base = cfg.servo_node.rstrip("/")
        self.command_topic = cfg.servo_command_topic or f"{base}/delta_joint_cmds"
        self.status_topic = cfg.servo_status_topic or f"{base}/status"
        self.interface = cfg.servo_interface
        if self.interface == "jazzy":
            try:
                from moveit_msgs.msg import ServoStatus
                from moveit_msgs.srv import ServoCommandType
            except ImportError as exc:
                raise BackendError(
                    "backend 'servo' with servo_interface 'jazzy' needs moveit_msgs (ServoStatus, "
                    f"ServoCommandType), which is not importable here ({exc}); Humble's Servo: "
                    "servo_interface:=humble"
                ) from exc
            from std_srvs.srv import SetBool

            self._SetBool, self._CommandType = SetBool, ServoCommandType
            self._switch = node.create_client(ServoCommandType, f"{base}/switch_command_type")
            self._pause = node.create_client(SetBool, f"{base}/pause_servo")
            node.create_subscription(ServoStatus, self.status_topic, self._on_status, reliable_qos(10))
        else:
            from std_msgs.msg import Int8
            from std_srvs.srv import Trigger

            self._Trigger = Trigger
            self._start = node.create_client(Trigger, f"{base}/start_servo")
            self._stop = node.create_client(Trigger, f"{base}/stop_servo")
            node.create_subscription(Int8, self.status_topic, self._on_status, reliable_qos(10))
        # Depth 10 as Servo's subscription (SystemDefaultsQoS): a late sample is delivered, not overwritten.
        self._pub = node.create_publisher(JointJog, self.command_topic, reliable_qos(10))
        self.last_stamp_ns: int | None = None
        self.ready = False  # Servo confirmed the start
        self.wanted = False  # activate() called and not deactivate()
        self.status_code: int | None = None
        self.status_text = "no status received"
        self.halted = False
        self._pending: list = []  # [(future, what)] of the current request sequence
        self._steps: list = []  # remaining request steps of the current sequence
        self._request_t: float | None = None
        self._stopped_sent = False
        self.stream = JointJogStream(cfg.servo_command_timeout_s, cfg.servo_position_gain)
        self._lock = threading.Lock()  # activate/deactivate (executor) vs poll (control loop)
        diag.set("servo", f"JointJog on {self.command_topic}; Servo ({self.interface} interface) inactive")

    def describe(self) -> str:
        """Where commands go, in words."""
        return f"arm: JointJog to MoveIt Servo on {self.command_topic} ({self.interface} interface)"

    # ------------------------------------------------------------------ start / stop
    def activate(self) -> None:
        """Ask Servo to start (see the module docstring); confirmation arrives in :meth:`poll`."""
        with self._lock:
            self._begin_start()

    def _begin_start(self) -> None:
        self.wanted, self.ready = True, False
        if self.interface == "jazzy":
            self._steps = [
                (
                    "switch_command_type JOINT_JOG",
                    self._switch,
                    self._CommandType.Request(command_type=_JOINT_JOG),
                ),
                ("pause_servo false", self._pause, self._SetBool.Request(data=False)),
            ]
        else:
            self._steps = [("start_servo", self._start, self._Trigger.Request())]
        self._pending = []
        self._request_t = None
        self._diag.set("servo", "starting")

    def deactivate(self) -> None:
        """Zero velocities, then ask Servo to pause (jazzy) / stop (humble)."""
        with self._lock:
            self._deactivate()

    def _deactivate(self) -> None:
        self.wanted, self.ready = False, False
        self.stop()
        self.stream.reset()
        client, request, what = (
            (self._pause, self._SetBool.Request(data=True), "pause_servo true")
            if self.interface == "jazzy"
            else (self._stop, self._Trigger.Request(), "stop_servo")
        )
        self._steps, self._pending = [], []
        if client.service_is_ready():
            client.call_async(request)
        self._diag.set("servo", f"stopped ({what} requested)")

    def poll(self, t_now: float) -> None:
        """Advances the start sequence (called every tick): sends the next request, checks answers."""
        with self._lock:
            self._poll(t_now)

    def _poll(self, t_now: float) -> None:
        if not self.wanted or self.ready:
            return
        if self._pending:
            future, what = self._pending[0]
            if future.done():
                self._pending = []
                response = future.result()
                if response is None or not response.success:
                    message = getattr(response, "message", "") if response is not None else "no response"
                    self._fail(f"Servo refused {what}: {message or 'success false'}")
                    self._begin_start()  # retry the whole sequence
                    return
                self._steps.pop(0)
                if not self._steps:
                    self.ready = True
                    self._diag.set("servo", f"running (JointJog on {self.command_topic})")
                    self._node.get_logger().info(f"MoveIt Servo started ({self.interface} interface)")
                return
            if self._request_t is not None and t_now - self._request_t > self.cfg.servo_service_timeout_s:
                self._pending = []
                self._fail(f"Servo did not answer {what} within {self.cfg.servo_service_timeout_s} s")
            return
        what, client, request = self._steps[0]
        if not client.service_is_ready():
            if self._request_t is None or t_now - self._request_t > self.cfg.servo_service_timeout_s:
                self._fail(f"Servo service {client.srv_name} is not available (is servo_node running?)")
                self._request_t = t_now
            return
        self._pending = [(client.call_async(request), what)]
        self._request_t = t_now

    def _fail(self, message: str) -> None:
        self._diag.problem(message, WARN)
        self._diag.set("servo", message)
        self._node.get_logger().warning(message, throttle_duration_sec=1.0)

    def hold_reason(self) -> str | None:
        """Why control must hold now (Servo not started, or halted), or None."""
        if not self.ready:
            return "waiting for MoveIt Servo to start" + (
                f" ({self.status_text})" if self.status_code is not None else ""
            )
        if self.halted:
            return f"MoveIt Servo halted: {self.status_text}"
        return None

    # ------------------------------------------------------------------ commands
    def send(self, cmd, measured: np.ndarray | None) -> None:
        """Publishes the JointJog of one command (velocities: :class:`JointJogStream`)."""
        stamp_ns = now_ns(self._node)
        self._publish(self.stream.velocities(cmd, measured, ns_to_s(stamp_ns)), stamp_ns)
        self._stopped_sent = False

    def stop(self, every_tick: bool = True) -> None:
        """Publishes zero velocities (a hold); with ``every_tick`` False only once per stop."""
        if every_tick or not self._stopped_sent:
            stamp_ns = now_ns(self._node)
            self._publish(np.zeros(len(self.joint_names)), stamp_ns)
            self.stream.stop(ns_to_s(stamp_ns))
            self._stopped_sent = True

    def _publish(self, velocities: np.ndarray, stamp_ns: int) -> None:
        msg = self._JointJog()
        self.last_stamp_ns = stamp_ns
        msg.header = make_header(stamp_ns)
        msg.joint_names = self.joint_names
        msg.velocities = [float(v) for v in velocities]
        msg.duration = 0.0
        self._pub.publish(msg)

    # ------------------------------------------------------------------ status
    def _on_status(self, msg) -> None:
        code = int(msg.data) if self.interface == "humble" else int(msg.code)
        if self.interface == "humble":
            text, halt = HUMBLE_STATUS.get(code, (f"unknown status code {code}", True))
        else:
            text = msg.message or f"status code {code}"
            halt = code in JAZZY_HALT_CODES or code not in range(-1, 7)
        if code != self.status_code:
            # (one call site per severity: rclpy refuses to change a call site's severity)
            if code != 0:
                self._node.get_logger().warning(f"MoveIt Servo status {code}: {text}")
            else:
                self._node.get_logger().info(f"MoveIt Servo status {code}: {text}")
        self.status_code, self.status_text, self.halted = code, text, halt
        self._diag.set("servo status", f"{code}: {text}")
        if halt:
            self._diag.problem(f"MoveIt Servo halted: {text}", WARN)
