"""sim_node: the MuJoCo tabletop Panda as a ROS 2 robot (the simulator owns time).

Publishes (relative names):
    /clock                  rosgraph_msgs/Clock          every tick (clock_hz, sim time)
    joint_states            sensor_msgs/JointState       every tick
    camera/points           sensor_msgs/PointCloud2      camera_hz, sensor QoS
    camera/image            sensor_msgs/Image (rgb8)     camera_hz, sensor QoS
    robot_description       std_msgs/String              transient local (URDF, file:// meshes)
                            (joint_states: the 7 arm joints + panda_finger_joint1/2, measured)
    sim/episode_status      std_msgs/String (JSON)       status_hz and after every reset
    expert/joint_command    sensor_msgs/JointState       only with expert_drive:=true
    /diagnostics
Subscribes:
    joint_trajectory_controller/joint_trajectory  trajectory_msgs/JointTrajectory
    forward_position_controller/commands          std_msgs/Float64MultiArray (joint_names order)
    gripper_controller/commands                   std_msgs/Float64MultiArray, one value: the
                                                  per-finger opening in m (0..0.04, the position
                                                  of panda_finger_joint1, GripperCommand style);
                                                  NaN / out of range / not one value is refused
    sim/reset_seed                                std_msgs/Int64: reset to exactly this seed
Services:
    sim/reset                                     std_srvs/Trigger: reset to parameter `seed` if it
                                                  changed since the last reset, else last seed + 1;
                                                  the response message is the JSON status.

A wall-clock timer advances the simulation one tick (1/clock_hz sim seconds) per call at
`real_time_factor` (0 = as fast as possible). Every other node should run with use_sim_time.
The task (`task` parameter: reach, reach_bimodal, lift, place, place_bimodal) and every other
SimConfig field are parameters too.
"""

from __future__ import annotations

import json
import time

import numpy as np
import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Image, JointState, PointCloud2
from std_msgs.msg import Float64MultiArray, Int64, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from dp_common.diagnostics import ERROR, WARN, DiagnosticsReporter
from dp_common.msgs import ns_to_s, ns_to_stamp, s_to_ns, stamp_to_ns
from dp_common.msgs.cloud import build_cloud
from dp_common.msgs.image import build_image
from dp_common.msgs.joint_state import build_joint_state
from dp_common.params import declare_config
from dp_common.qos import latched_qos, reliable_qos, sensor_qos
from dp_sim.core.config import SimConfig
from dp_sim.core.pick_expert import expert_step, make_expert
from dp_sim.core.robot import (
    FINGER_JOINTS,
    GRIPPER_JOINT,
    GRIPPER_MAX_M,
    GRIPPER_TOL_M,
    JOINT_NAMES,
    package_share_dir,
)
from dp_sim.core.runtime import SimNodeConfig, TrajectoryFollower
from dp_sim.core.scene import SimScene, transform_points

GRIPPER_TOPIC = "gripper_controller/commands"
STATE_NAMES = list(JOINT_NAMES) + list(FINGER_JOINTS)


def urdf_with_file_uris(path) -> str:
    """URDF text with package:// mesh URIs rewritten to absolute file:// URIs."""
    text = path.read_text()
    return text.replace("package://", f"file://{package_share_dir(path)}/")


class SimNode(Node):
    """ROS wrapper around SimScene; see the module docstring for the interface."""

    def __init__(self, **kwargs) -> None:
        super().__init__("sim_node", **kwargs)
        self.sim_cfg = declare_config(self, SimConfig)
        self.cfg = declare_config(self, SimNodeConfig)
        self.declare_parameter("expert_drive", False)
        self.expert_drive = bool(self.get_parameter("expert_drive").value)
        self.scene = SimScene(self.sim_cfg)
        self.follower = TrajectoryFollower(JOINT_NAMES)
        self.expert = make_expert(self.sim_cfg.task, kin=self.scene.kin) if self.expert_drive else None
        self._col = [JOINT_NAMES.index(n) for n in self.cfg.joint_names]
        self.diag = DiagnosticsReporter(self, "sim_node")

        self.pub_clock = self.create_publisher(ClockMsg, "/clock", reliable_qos(1))
        self.pub_js = self.create_publisher(JointState, "joint_states", reliable_qos(10))
        self.pub_points = self.create_publisher(PointCloud2, "camera/points", sensor_qos())
        self.pub_image = self.create_publisher(Image, "camera/image", sensor_qos())
        self.pub_status = self.create_publisher(String, "sim/episode_status", reliable_qos(10))
        self.pub_desc = self.create_publisher(String, "robot_description", latched_qos())
        self.pub_expert = (
            self.create_publisher(JointState, "expert/joint_command", reliable_qos(10))
            if self.expert_drive
            else None
        )
        self.create_subscription(
            JointTrajectory,
            "joint_trajectory_controller/joint_trajectory",
            self._on_trajectory,
            reliable_qos(10),
        )
        self.create_subscription(
            Float64MultiArray,
            "forward_position_controller/commands",
            self._on_forward,
            reliable_qos(10),
        )
        self.create_subscription(Float64MultiArray, GRIPPER_TOPIC, self._on_gripper, reliable_qos(10))
        self.create_subscription(Int64, "sim/reset_seed", self._on_reset_seed, reliable_qos(10))
        self.create_service(Trigger, "sim/reset", self._on_reset_srv)
        self.pub_desc.publish(String(data=urdf_with_file_uris(self.scene.kin.urdf_path)))

        self.time_offset = 0.0  # sim time of the current episode's start (monotonic /clock)
        self.tick = 0
        self.episode = 0
        self._param_seed = self.cfg.seed
        self._done_since: float | None = None
        self._reset(self.cfg.seed)
        period = 1e-4 if self.cfg.real_time_factor == 0 else self.cfg.tick_s / self.cfg.real_time_factor
        self._wall_start = time.monotonic()
        self._sim_start = self.now_s
        self.timer = self.create_timer(period, self._on_tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f"sim_node: task={self.sim_cfg.task} seed={self.cfg.seed} "
            f"camera {self.sim_cfg.camera_width}x{self.sim_cfg.camera_height}@{self.cfg.camera_hz}Hz "
            f"clock {self.cfg.clock_hz}Hz rtf={self.cfg.real_time_factor}"
        )

    # ------------------------------------------------------------------------------- time
    @property
    def now_s(self) -> float:
        """Current sim time (s) on /clock (monotonic across resets)."""
        return self.time_offset + self.scene.time

    @property
    def now_ns(self) -> int:
        """Current sim time on /clock as integer ns (the stamp of everything published now)."""
        return s_to_ns(self.now_s)

    # ------------------------------------------------------------------------------- reset
    def _reset(self, seed: int) -> None:
        if self.tick:  # keep /clock strictly increasing across the reset
            self.time_offset = self.now_s + self.cfg.tick_s
        self.scene.reset(int(seed))
        self.follower.clear()
        if self.expert is not None:
            self.expert.start(self.scene)
        self.episode += 1
        self._done_since = None
        self.get_logger().info(f"episode {self.episode}: seed {seed}")
        self._publish_status()

    def _next_seed(self) -> int:
        p = int(self.get_parameter("seed").value)
        if p != self._param_seed:
            self._param_seed = p
            return p
        return self.scene.seed + 1

    def _on_reset_srv(self, request, response):
        self._reset(self._next_seed())
        response.success = True
        response.message = json.dumps(self._status())
        return response

    def _on_reset_seed(self, msg: Int64) -> None:
        self._reset(int(msg.data))

    # ---------------------------------------------------------------------------- commands
    def _on_forward(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=float)
        if data.shape != (7,) or not np.all(np.isfinite(data)):
            self._reject(f"forward command needs 7 finite values in {self.cfg.joint_names}. Got {len(data)}")
            return
        q = np.empty(7)
        q[self._col] = data
        self.follower.clear()
        self.scene.set_command(q)
        self.diag.tick("forward_commands")

    def _on_gripper(self, msg: Float64MultiArray) -> None:
        data = list(msg.data)
        if (
            len(data) != 1
            or not np.isfinite(data[0])
            or not -GRIPPER_TOL_M <= data[0] <= GRIPPER_MAX_M + GRIPPER_TOL_M
        ):
            self._reject(
                f"gripper command refused: expected one finite per-finger opening in [0, {GRIPPER_MAX_M}] m "
                f"({GRIPPER_JOINT} position). Got {data}",
                ERROR,
            )
            return
        self.scene.set_gripper(data[0])
        self.diag.tick("gripper_commands")
        self.diag.count("gripper commands applied")

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            if not msg.points:
                self.follower.clear()
                return
            t0 = ns_to_s(stamp_to_ns(msg.header.stamp))
            if t0 == 0.0:
                t0 = self.now_s
            times = [ns_to_s(stamp_to_ns(p.time_from_start)) for p in msg.points]
            pos = [list(p.positions) for p in msg.points]
            if any(len(p) != len(msg.joint_names) for p in pos):
                raise ValueError("every point needs one position per joint name")
            self.follower.set(t0, msg.joint_names, times, pos, self.scene.q_cmd)
            self.diag.tick("trajectories")
        except ValueError as exc:
            self._reject(f"bad JointTrajectory: {exc}")

    def _reject(self, text: str, level: int = WARN) -> None:
        log = self.get_logger().error if level == ERROR else self.get_logger().warning
        log(text, throttle_duration_sec=2.0)
        self.diag.problem(text, level)
        self.diag.count("rejected_commands")

    # -------------------------------------------------------------------------------- tick
    def _on_tick(self) -> None:
        try:
            self._tick()
        except Exception:
            if not self.context.ok():
                return  # shutting down (signal) while a publish was in flight
            raise

    def _tick(self) -> None:
        t_wall = time.perf_counter()
        cfg = self.cfg
        if self.expert is not None and self.tick % cfg.every(10.0) == 0:
            q_target = expert_step(self.scene, self.expert, cfg.every(10.0) * cfg.tick_s)
            names = list(JOINT_NAMES) + ([GRIPPER_JOINT] if len(q_target) == 8 else [])
            self.pub_expert.publish(build_joint_state(self.now_ns, names, q_target))
        # The command for the end of this step: sampling at its start would, when a trajectory
        # arrives every tick with its first point one tick ahead (as control_node sends them), always
        # return the position held on arrival and the arm would never move.
        q = self.follower.sample(self.now_s + cfg.tick_s)
        if q is not None:
            self.scene.set_command(q)
        self.scene.step(cfg.tick_s)
        self.tick += 1
        self.diag.latency("step", time.perf_counter() - t_wall)

        self.pub_clock.publish(ClockMsg(clock=ns_to_stamp(self.now_ns)))
        position = np.concatenate([self.scene.q, self.scene.finger_q])
        velocity = np.concatenate([self.scene.qd, self.scene.finger_qd])
        self.pub_js.publish(build_joint_state(self.now_ns, STATE_NAMES, position, velocity))

        if self.tick % cfg.every(cfg.camera_hz) == 0:
            self._publish_camera()
        if self.tick % cfg.every(cfg.status_hz) == 0:
            self._publish_status()
        if cfg.auto_reset:
            done = self.scene.success_time is not None or self.scene.is_timeout()
            if done and self._done_since is None:
                self._done_since = self.scene.time
            if self._done_since is not None and self.scene.time - self._done_since >= 1.0:
                self._reset(self.scene.seed + 1)
        wall = time.monotonic() - self._wall_start
        if wall > 0:
            self.diag.set("real_time_factor", (self.now_s - self._sim_start) / wall)
        self.diag.latency("tick", time.perf_counter() - t_wall)

    def _publish_camera(self) -> None:
        t = time.perf_counter()
        want_rgb = self.cfg.cloud_rgb or self.cfg.publish_image
        obs = self.scene.render(rgb=want_rgb)
        self.diag.latency("render", time.perf_counter() - t)
        xyz = obs["xyz"]
        frame = self.cfg.camera_frame_id
        if self.cfg.cloud_frame == "world":
            xyz = transform_points(obs["transform"], xyz)
            frame = self.cfg.world_frame_id
        stamp_ns = self.now_ns
        rgb = obs["rgb"] if self.cfg.cloud_rgb else None
        self.pub_points.publish(build_cloud(stamp_ns, frame, np.asarray(xyz).reshape(-1, 3), rgb))
        if self.cfg.publish_image and obs["rgb_image"] is not None:
            self.pub_image.publish(build_image(stamp_ns, self.cfg.camera_frame_id, obs["rgb_image"]))
        self.diag.latency("camera", time.perf_counter() - t)
        self.diag.tick("clouds")

    def _status(self) -> dict:
        s = self.scene.task_state()
        s["episode"] = self.episode
        s["stamp"] = round(self.now_s, 6)
        s["episode_start"] = round(self.time_offset, 6)
        if self.expert is not None:
            s["expert_target"] = self.expert.target_index
        return s

    def _publish_status(self) -> None:
        status = self._status()
        self.pub_status.publish(String(data=json.dumps(status)))
        self.diag.set("seed", status["seed"])
        self.diag.set("success", status["success"])

    def destroy_node(self) -> None:
        """Free the renderer as well."""
        self.scene.close()
        super().destroy_node()


def main(args=None) -> None:
    """Entry point of the `sim_node` executable."""
    rclpy.init(args=args)
    node = None
    try:
        node = SimNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
