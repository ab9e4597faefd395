"""oracle_node: the oracle baseline in the policy's place (scripted expert on the true poses).

Same interface as ``dp_policy policy_node`` as far as the rest of the graph sees it: publishes
``dp/action_chunk`` (reliable, depth 1) at ``rate_hz`` on the node clock (use_sim_time), each chunk
stamped with the newest ``joint_states`` stamp, ``rows`` rows ``dt`` apart from "now", joint names
= the 7 arm joints (+ ``panda_finger_joint1`` on gripper tasks); ``~/activate`` (std_srvs/SetBool)
starts / stops it. Instead of observations it reads the true object poses from
``sim/episode_status`` (see :mod:`dp_sim.core.oracle`), so it needs no perception node. On
activation, and whenever the simulator starts a new episode while active, it re-plans from that
episode's status and the measured joints.

Subscribes: ``joint_states``, ``sim/episode_status``. Publishes: ``dp/action_chunk``, /diagnostics.
"""

from __future__ import annotations

import json
import time

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool

from dp_common.diagnostics import ERROR, DiagnosticsReporter
from dp_common.msgs import ns_to_s
from dp_common.msgs.chunk import build_chunk
from dp_common.msgs.joint_state import read_joint_state
from dp_common.qos import chunk_qos, reliable_qos, sensor_qos
from dp_msgs.msg import ActionChunk
from dp_sim.core.oracle import OraclePlanner

POLICY_ID = "oracle"


class OracleNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs) -> None:
        super().__init__("oracle_node", **kwargs)
        p = {
            "task": ("reach", "simulated task (dp_sim.core.tasks)"),
            "rate_hz": (10.0, "chunk rate on the node clock (Hz), as policy_node"),
            "dt": (0.1, "seconds between chunk rows (the policies' dt)"),
            "rows": (15, "rows per chunk from 'now' (policy_node: horizon - n_obs_steps + 1)"),
            "autostart": (False, "publish without waiting for ~/activate"),
        }
        for name, (default, text) in p.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        get = self.get_parameter
        rate = float(get("rate_hz").value)
        if not rate > 0:
            raise ValueError(f"rate_hz must be > 0. Got {rate}")
        self.planner = OraclePlanner(str(get("task").value), float(get("dt").value), int(get("rows").value))
        self.diag = DiagnosticsReporter(self)
        self.active = bool(get("autostart").value)
        self.q: np.ndarray | None = None
        self.q_stamp_ns = 0
        self.status: dict | None = None
        self.planned_episode: int | None = None
        self.last_tick_ns: int | None = None
        self.chunk_id = 0
        self.pub = self.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
        self.create_subscription(JointState, "joint_states", self._on_js, sensor_qos(50))
        self.create_subscription(String, "sim/episode_status", self._on_status, reliable_qos(10))
        self.create_service(SetBool, "~/activate", self._on_activate)
        self.create_timer(1.0 / rate, self._on_timer)
        self.diag.set("policy_id", POLICY_ID)
        self.diag.set("state", "active" if self.active else "inactive (call ~/activate)")
        self.get_logger().info(
            f"oracle for task {self.planner.spec.name}: {rate} Hz, {self.planner.rows} rows"
        )

    def _on_js(self, msg: JointState) -> None:
        js = read_joint_state(msg)
        names = self.planner.joint_names[:7]
        idx = {n: i for i, n in enumerate(js.names)}
        if all(n in idx for n in names) and len(js.position) == len(js.names):
            self.q = js.position[[idx[n] for n in names]]
            self.q_stamp_ns = js.stamp_ns

    def _on_status(self, msg: String) -> None:
        try:
            status = json.loads(msg.data)
            int(status["seed"])
            if not status.get("cubes"):
                raise KeyError("cubes")
        except (ValueError, KeyError, TypeError) as exc:
            self.diag.problem(f"sim/episode_status unreadable: {exc}", ERROR)
            return
        self.status = status

    def _on_activate(self, request, response):
        self.active = bool(request.data)
        self.planned_episode = None  # re-plan from the current episode on the next tick
        self.diag.set("state", "active" if self.active else "inactive (call ~/activate)")
        response.success = True
        response.message = f"oracle {'active' if self.active else 'inactive'}"
        return response

    def _on_timer(self) -> None:
        if not self.active:
            return
        if self.q is None or self.status is None:
            self.diag.problem("waiting for joint_states and sim/episode_status", ERROR)
            return
        t0 = time.perf_counter()
        episode = self.status.get("episode", self.status["seed"])
        try:
            if episode != self.planned_episode:
                self.planner.start(self.status, self.q)
                self.planned_episode = episode
                self.last_tick_ns = None
            stamp = self.q_stamp_ns
            elapsed = self.planner.dt if self.last_tick_ns is None else ns_to_s(stamp - self.last_tick_ns)
            rows = self.planner.chunk(self.q, min(max(elapsed, 0.0), 5 * self.planner.dt))
        except (ValueError, IndexError, KeyError, RuntimeError) as exc:
            text = f"cannot plan from sim/episode_status for task {self.planner.spec.name}: {exc!r}"
            self.get_logger().error(text, throttle_duration_sec=2.0)
            self.diag.problem(text, ERROR)
            self.planned_episode = None
            return
        self.last_tick_ns = stamp
        self.pub.publish(build_chunk(stamp, rows, self.planner.joint_names, self.planner.dt,
                                     self.chunk_id, POLICY_ID))  # fmt: skip
        self.chunk_id += 1
        self.diag.latency("plan", time.perf_counter() - t0)
        self.diag.tick("chunks")


def main(args=None) -> None:
    """Entry point of the `oracle_node` executable."""
    rclpy.init(args=args)
    node = None
    try:
        node = OracleNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
