"""control_node: dp/action_chunk + joint_states -> limited 50 Hz commands to ros2_control / MoveIt.

Thin wiring around ``dp_control.core.ControlCore``:

- subscriptions: ``dp/action_chunk`` (chunk_qos), ``joint_states`` (partial messages merged by name),
  ``robot_description`` (latched; position limits from the URDF); ``~/enable`` (std_srvs/SetBool):
  inactive until enabled, unless ``autostart``. These run in the executor (main thread).
- ``~/go_to_start`` / ``~/record_start`` (std_srvs/Trigger): the move to the policy's start pose
  (MoveIt-planned with ``backend: moveit``, else a jerk-limited quintic streamed through the limiter)
  and recording the measured joints as that pose (``dp_control.start_pose``). ``go_to_start``
  returns once the move has started (or was refused: while following chunks, in a fault, braking,
  without joint_states); its end is reported on /diagnostics (``start move``).
- the loop at ``rate_hz``:
  * ``use_sim_time`` false and ``loop_thread`` true (default): a dedicated thread
    (``dp_control.loop.PeriodicThread``) on absolute CLOCK_MONOTONIC deadlines with
    ``clock_nanosleep``, SCHED_FIFO at ``realtime_priority`` when permitted, and a lowered GIL
    switch interval. An rclpy timer is woken through the executor's wait set and shares its thread
    with every callback: its period error measured several times larger (bench/bench_control.py
    --compare-timer);
  * ``use_sim_time`` true (or ``loop_thread`` false): an rclpy timer on the node clock, in its own
    mutually exclusive callback group, so simulated time drives the loop.
  The period error on /diagnostics is measured on the node clock in both modes.
  Shared state (core, joint-state buffer, diagnostics) is guarded by short locks; the loop thread
  publishes outside them.
- publishers per backend and controller preset, and the gripper topic or GripperCommand action
  (``dp_control.command_publishers``); ``backend: servo`` streams JointJog to MoveIt Servo
  (``dp_control.servo_backend``: started on ~/enable true / autostart, paused or stopped on ~/enable
  false, held with zero velocities until Servo confirms the start and while its status is a halt);
- ``backend: moveit``: every command and every ``preview_stride``-th preview point is checked against
  MoveIt's current planning scene (``dp_control.backends.MoveItChecker``); a command that fails is not
  sent (the trajectory controller finishes the last sent preview, which passed the check and ends at
  rest), the core holds (``moveit_invalid``), and it is reported (throttled log, /diagnostics);
- ``dp/control_markers`` (``publish_markers``): commanded vs measured end-effector paths and the
  gripper command for rviz (``dp_control.control_markers``; FK at ``marker_rate_hz`` in the
  executor, the loop only records the tick's joint vectors);
- ``/diagnostics``: state + reason, loop mode, rate, period error p50/p99, missed deadlines, chunk
  age at use, clamps, rejected chunks, holds and why, marker FK time.

Safety: a tracking-error fault (|commanded - measured| > ``max_tracking_error``) is latched: the arm
brakes to rest and holds, chunks are ignored, even after the error goes away, until ``~/enable``
true re-arms it (fault -> armed; the next chunk must start within ``max_start_distance``) or
``~/enable`` false disables it.

Run it in its own process (never beside torch inference).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from dp_common.core.joint_states import JointStateBuffer, MissingJointsError
from dp_common.diagnostics import ERROR, WARN, SyncDiagnosticsReporter
from dp_common.msgs import now_ns, ns_to_s
from dp_common.params import declare_config
from dp_common.qos import chunk_qos, latched_qos, reliable_qos
from dp_control.backends import (
    BackendError,
    MoveItChecker,
    ValidityGate,
    moveit_remappings,
)
from dp_control.command_publishers import CommandPublishers
from dp_control.control_markers import ControlMarkers
from dp_control.controller_joints import ControllerJointsCheck
from dp_control.conversions import chunk_msg_to_raw
from dp_control.core import (
    ChunkError,
    ControlConfig,
    ControlCore,
    ControlState,
    default_limits_file,
    limits_from_config,
)
from dp_control.loop import PeriodicThread, set_switch_interval, try_realtime
from dp_control.start_pose import MoveItStartMover, StartPose
from dp_msgs.msg import ActionChunk

_log = logging.getLogger(__name__)

__all__ = ["ControlNode", "main", "make_executor"]


def _limits_file(cfg: ControlConfig) -> Path:
    if cfg.joint_limits_file:
        return Path(cfg.joint_limits_file)
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory("dp_control")) / "config" / "joint_limits.yaml"
        if path.exists():
            return path
    except Exception:  # noqa: BLE001 - not installed: use the source tree's file
        pass
    return default_limits_file()


def make_executor(cfg: ControlConfig):
    """SingleThreadedExecutor for executor_threads == 1, else a MultiThreadedExecutor."""
    if cfg.executor_threads > 1:
        return MultiThreadedExecutor(num_threads=cfg.executor_threads)
    return SingleThreadedExecutor()


class ControlNode(Node):
    """The control node (see module docstring). Raises BackendError when its backend cannot start."""

    def __init__(self, **kwargs) -> None:
        # Set before anything can fail: destroy_node may run on a half-built node.
        self._timer = None
        self.loop_thread: PeriodicThread | None = None
        self._old_switch_interval: float | None = None
        super().__init__("control_node", **kwargs)
        self.cfg: ControlConfig = declare_config(self, ControlConfig)
        cfg = self.cfg
        self._lock = threading.Lock()  # core + joint-state buffer: executor callbacks vs the loop
        self._limits_path = _limits_file(cfg)
        self.core = ControlCore(cfg, limits_from_config(cfg, self._limits_path))
        self.diag = SyncDiagnosticsReporter(self)
        self.joint_buffer = JointStateBuffer(history_s=1.0)
        self.fatal: str | None = None  # set when the node must stop (main exits non-zero)
        self.last_command = None
        self._last_tick_t: float | None = None  # node clock [s]
        self._gate: ValidityGate | None = None
        # Benchmarks set this to a list to record (tick start [s, monotonic], callback duration [s]).
        self.tick_log: list[tuple[float, float]] | None = None
        self.markers: ControlMarkers | None = None

        # Backend.
        self._joints_check: ControllerJointsCheck | None = None
        if cfg.backend == "moveit":
            self._gate = ValidityGate(
                MoveItChecker(cfg.moveit_group, remappings=moveit_remappings(self)), cfg.joint_names
            )
        self._commands = CommandPublishers(self, cfg, self.diag)
        self.diag.set("commands", self._commands.describe())
        if cfg.backend == "position":
            self._joints_check = ControllerJointsCheck(
                self, cfg.controller_name, cfg.joint_names, cfg.controller_check_timeout_s
            )
            # Polled in the executor (steady clock: works while /clock is paused), not in the loop.
            self._joints_timer = self.create_timer(
                0.02, self._poll_controller_joints, clock=Clock(clock_type=ClockType.STEADY_TIME)
            )
        if cfg.backend not in ("moveit", "servo"):
            self.get_logger().warning(
                f"backend '{cfg.backend}': commands are NOT checked for collisions "
                "(only joint position/velocity/acceleration limits); use backend:=moveit with "
                "moveit_py for collision checking"
            )

        # Inputs.
        self.create_subscription(ActionChunk, "dp/action_chunk", self._on_chunk, chunk_qos())
        self.create_subscription(JointState, "joint_states", self._on_joint_state, reliable_qos(50))
        self.create_subscription(String, "robot_description", self._on_robot_description, latched_qos())
        self.create_service(SetBool, "~/enable", self._on_enable)
        # rviz: commanded vs measured end-effector paths (FK at marker_rate_hz, off the loop).
        self.markers = ControlMarkers(self) if cfg.publish_markers else None
        self.start_pose = StartPose(cfg)
        # backend moveit: the start move is planned and executed by the gate's MoveItPy (one per process).
        self._start_mover = MoveItStartMover(self._gate.checker) if self._gate is not None else None
        self.create_service(Trigger, "~/go_to_start", self._on_go_to_start)
        self.create_service(Trigger, "~/record_start", self._on_record_start)

        if cfg.autostart:
            self.core.enable()
            if self._commands.servo is not None:
                self._commands.servo.activate()

        # The loop: a dedicated thread on the system clock, an rclpy timer on simulated time.
        use_sim_time = bool(self.get_parameter("use_sim_time").value)
        if cfg.loop_thread and not use_sim_time:
            self._old_switch_interval = set_switch_interval(cfg.gil_switch_interval_s)
            self.loop_thread = PeriodicThread(
                cfg.period_s, self._on_timer, priority=cfg.realtime_priority, on_error=self._loop_failed
            )
            self.loop_mode = f"thread ({self.loop_thread.sleep_method})"
        else:
            self._timer = self.create_timer(
                cfg.period_s, self._on_timer, callback_group=MutuallyExclusiveCallbackGroup()
            )
            self.loop_mode = "rclpy timer (node clock" + (", sim time)" if use_sim_time else ")")
        self.diag.set("loop", self.loop_mode)
        self.get_logger().info(
            f"control_node: backend={cfg.backend} rate={cfg.rate_hz} Hz loop={self.loop_mode} "
            f"interpolation={cfg.interpolation} handover={cfg.handover} limits={self.core.limits.source} "
            f"({self._limits_path}); {'armed (autostart)' if cfg.autostart else 'inactive until ~/enable'}; "
            f"{self._commands.describe()}"
        )
        if self.loop_thread is not None:
            sched = self.loop_thread.start()
            self.diag.set("loop scheduling", sched)
            self.get_logger().info(
                f"control loop thread: {sched}; GIL switch interval {sys.getswitchinterval() * 1e3:.2f} ms"
            )

    # ------------------------------------------------------------------ callbacks
    def _on_chunk(self, msg) -> None:
        t_now = ns_to_s(now_ns(self))
        raw = chunk_msg_to_raw(msg)
        self.diag.latency("chunk age on arrival", max(0.0, t_now - raw.stamp))
        self.diag.set("chunk stamp offset s", float(t_now - raw.stamp))
        try:
            with self._lock:
                outcome = self.core.submit_chunk(raw, t_now)
        except ChunkError as exc:
            self.diag.count("chunks rejected")
            self.diag.problem(f"chunk rejected ({exc.reason})", WARN)
            self.get_logger().warning(f"rejected chunk {raw.chunk_id}: {exc}", throttle_duration_sec=1.0)
            return
        self.diag.tick("chunks")
        if outcome.startswith("refused"):
            self.diag.problem(outcome, WARN)
            self.get_logger().warning(outcome, throttle_duration_sec=1.0)
        elif outcome == "engaged":
            self.get_logger().info(
                f"following chunks from {raw.policy_id or 'policy'} (chunk {raw.chunk_id})"
            )

    def _on_joint_state(self, msg: JointState) -> None:
        # Arrival time on the node clock: the state timeout is about silence, not sensor stamps.
        names, positions = list(msg.name), list(msg.position)
        t = ns_to_s(now_ns(self))
        try:
            with self._lock:
                self.joint_buffer.update(t, names, positions)
        except ValueError as exc:
            self.diag.problem(f"bad joint_states: {exc}", WARN)
            self.get_logger().warning(f"ignored joint_states: {exc}", throttle_duration_sec=1.0)

    def _on_robot_description(self, msg: String) -> None:
        if not self.cfg.use_urdf_limits:
            return
        try:
            limits = limits_from_config(self.cfg, self._limits_path, msg.data)
            with self._lock:
                self.core.set_limits(limits)
        except ValueError as exc:
            self.diag.problem(f"robot_description limits unusable: {exc}", WARN)
            self.get_logger().error(f"keeping previous limits; robot_description: {exc}")
            return
        self.get_logger().info(f"position limits from robot_description ({limits.source})")

    def _on_enable(self, request, response):
        with self._lock:
            response.message = self.core.enable() if request.data else self.core.disable()
        servo = self._commands.servo
        if servo is not None and self.fatal is None:
            servo.activate() if request.data else servo.deactivate()
        response.success = self.fatal is None
        if self.fatal is not None:
            response.message = f"refused: {self.fatal}"
        self.get_logger().info(f"~/enable {request.data}: {response.message}")
        return response

    def _on_go_to_start(self, request, response):
        response.success = False
        if self.fatal is not None:
            response.message = f"refused: {self.fatal}"
            return response
        try:
            goal, name, source = self.start_pose.resolve()
        except ValueError as exc:
            response.message = f"refused: {exc}"
            self.get_logger().warning(f"~/go_to_start {response.message}")
            return response
        t_now = ns_to_s(now_ns(self))
        with self._lock:
            if self._start_mover is not None:
                outcome = self.core.begin_external_move(t_now)
            else:
                outcome = self.core.start_move(goal, t_now)
        if outcome.startswith("started") and self._start_mover is not None:
            self._start_mover.start(self.cfg.joint_names, goal, name, self._on_moveit_move_done)
            outcome = "started: MoveIt plans and executes the move to the start pose"
        response.success = outcome.startswith("started")
        response.message = f"{outcome} [start pose: {source}]"
        self.diag.set("start pose", source)
        log = self.get_logger().info if response.success else self.get_logger().warning
        log(f"~/go_to_start: {response.message}")
        return response

    def _on_moveit_move_done(self, ok: bool, message: str) -> None:
        """Worker thread: MoveIt's start move ended."""
        with self._lock:
            self.core.end_external_move(ok, message)
        if ok:
            self.get_logger().info(f"go_to_start: {message}")
        else:
            self.get_logger().error(f"go_to_start: {message}")
            self.diag.problem(f"start move failed: {message}", WARN)

    def _on_record_start(self, request, response):
        t_now = ns_to_s(now_ns(self))
        with self._lock:
            try:
                stamp, q = self.joint_buffer.latest(self.cfg.joint_names)
            except MissingJointsError as exc:
                stamp, q, missing = None, None, str(exc)
        if q is None or t_now - stamp > self.cfg.state_timeout:
            why = missing if q is None else f"joint_states are {t_now - stamp:.3f} s old"
            response.success, response.message = False, f"refused: no recent joint_states ({why})"
        else:
            response.success, response.message = True, self.start_pose.record(q)
        self.get_logger().info(f"~/record_start: {response.message}")
        return response

    # ------------------------------------------------------------------ loop
    def _poll_controller_joints(self) -> None:
        """position backend (executor timer): check the controller's joints, then stop polling."""
        if self.fatal is not None:
            self._joints_timer.cancel()
            return
        error = self._joints_check.poll()
        if error:
            self._refuse(f"forward position backend: {error}")
        elif self._joints_check.done:
            self._joints_timer.cancel()

    def _refuse(self, message: str) -> None:
        self.fatal = message
        self.get_logger().fatal(message)
        self.diag.problem(message, ERROR)
        self.diag.set("state", "fault")
        self.diag.set("reason", message)
        with self._lock:
            self.core.disable()
        self._stop_loop(join=False)
        self.diag.publish()

    def _stop_loop(self, join: bool = True) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.loop_thread is not None:
            self.loop_thread.stop(join=join)

    def _loop_failed(self, exc: BaseException) -> None:
        """The loop thread's tick raised: the node must stop (main exits 1); nothing more is sent."""
        if not self.context.ok():
            return  # shutting down (Ctrl-C): publishing failed, nothing to report
        message = f"control loop failed: {exc!r}"
        _log.error(message, exc_info=exc)
        self.get_logger().fatal(message)
        self.fatal = message

    def destroy_node(self) -> None:
        """Stops the loop (joins the loop thread) before the publishers go away."""
        self._stop_loop(join=True)
        if self._gate is not None and hasattr(self._gate.checker, "close"):
            self._gate.checker.close()  # MoveItPy's node and threads
        if self._old_switch_interval is not None:
            sys.setswitchinterval(self._old_switch_interval)
            self._old_switch_interval = None
        super().destroy_node()

    def _on_timer(self) -> None:
        """One control period (loop thread or rclpy timer)."""
        wall = time.monotonic()
        # Node clock: the period error is measured on it, as the loop runs on it.
        t_now = ns_to_s(now_ns(self))
        if self._last_tick_t is not None:
            self.diag.latency("period error", abs(t_now - self._last_tick_t - self.cfg.period_s))
        self._last_tick_t = t_now
        self.diag.tick("control loop")
        if self.loop_thread is not None:
            self.diag.set("missed deadlines", self.loop_thread.overruns)
        if self.fatal is not None or (self._joints_check is not None and not self._joints_check.done):
            return
        with self._lock:
            try:
                stamp, q = self.joint_buffer.latest(self.cfg.joint_names)
            except MissingJointsError:
                stamp, q = None, None
            cmd = self.core.step(t_now, q, stamp)
            hold_why = None
            if cmd is not None and self._gate is not None and cmd.state != ControlState.FAULT:
                ok, why = self._gate.check(cmd.positions, cmd.preview_positions)
                if not ok:
                    hold_why = why
                    self.core.hold("moveit_invalid", why)
                    self.diag.count("commands refused by MoveIt")
            servo = self._commands.servo
            if servo is not None:
                servo.poll(t_now)
                servo_why = servo.hold_reason() if cmd is not None else None
                if servo_why is not None and cmd.state != ControlState.FAULT:
                    hold_why = servo_why
                    self.core.hold("servo", servo_why)
            snapshot = self._snapshot()
        if hold_why is not None:
            # Nothing refused is sent: the trajectory backends' controller finishes the last sent (checked)
            # preview, which ends at rest; Servo gets zero velocities.
            self.diag.problem(hold_why, ERROR if self._gate is not None else WARN)
            self.get_logger().warning(f"holding: {hold_why}", throttle_duration_sec=1.0)
            cmd = None
        self.last_command = cmd
        if self.markers is not None:
            self.markers.record(t_now, cmd, q)  # an append; FK runs in the marker timer
        if servo is not None and (cmd is None or cmd.state == ControlState.FAULT):
            servo.stop(every_tick=hold_why is not None or cmd is not None)  # zero velocities
        elif cmd is not None:
            # outside the lock: a blocking publish never stalls callbacks
            self._commands.send(cmd, t_now, q)
        self._report(cmd, snapshot)
        if self.tick_log is not None:
            self.tick_log.append((wall, time.monotonic() - wall))

    def _snapshot(self) -> dict:
        """The core's state and counters, taken under the lock (callbacks update them)."""
        core = self.core
        stats = core.stats
        return {
            "state": core.state,
            "reason": core.reason,
            "clamped ticks": stats.clamp_ticks,
            "clamps by limit": dict(stats.clamps) or "none",
            "chunks accepted": stats.chunks_accepted,
            "chunks rejected by reason": dict(stats.rejected) or "none",
            "holds by reason": dict(stats.holds) or "none",
            "last hold reason": stats.last_hold_reason or "none",
            "start move": core.move_result,
        }

    def _report(self, cmd, snapshot: dict) -> None:
        state, reason = snapshot["state"], snapshot["reason"]
        for key, value in snapshot.items():
            self.diag.set(key, value.value if key == "state" else value)
        if cmd is not None and cmd.chunk_age is not None:
            self.diag.latency("chunk age at use", cmd.chunk_age)
        if state == ControlState.FAULT:
            self.diag.problem(f"fault: {reason}", ERROR)
        elif state == ControlState.HOLDING:
            self.diag.problem(f"holding: {reason}", WARN)

    def command_positions(self) -> np.ndarray | None:
        """Last commanded positions (tests)."""
        return None if self.last_command is None else self.last_command.positions


def main(args=None) -> None:
    """Entry point of ``control_node``; exits 1 when the backend refuses to start."""
    rclpy.init(args=args)
    node = None
    exit_code = 0
    try:
        node = ControlNode()
        # Before the executor creates any worker thread, so that they inherit the policy. With the
        # loop thread, the executor runs just below it: above ordinary processes (torch), so it is
        # not preempted while it holds the GIL the loop thread waits for, but never ahead of the loop.
        prio = node.cfg.realtime_priority
        if node.loop_thread is not None and prio > 0:
            prio = max(1, prio - 10)
        node.get_logger().info(f"executor thread: {try_realtime(prio)}")
        executor = make_executor(node.cfg)
        executor.add_node(node)
        while rclpy.ok() and node.fatal is None:
            executor.spin_once(timeout_sec=0.1)
        if node.fatal is not None:
            exit_code = 1
    except (BackendError, ValueError) as exc:  # backend refused / invalid parameters
        rclpy.logging.get_logger("control_node").fatal(str(exc))
        exit_code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        try:
            if node is not None:
                node.destroy_node()
        except KeyboardInterrupt:  # a second Ctrl-C while shutting down
            pass
        rclpy.try_shutdown()
    if exit_code:
        sys.exit(exit_code)


if __name__ == "__main__":
    main()
