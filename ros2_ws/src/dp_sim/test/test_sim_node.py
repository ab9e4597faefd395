"""sim_node over a real (in-process) ROS graph: publishes, moves when commanded, resets."""

from __future__ import annotations

import json

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image, JointState, PointCloud2  # noqa: E402
from std_msgs.msg import Float64MultiArray, Int64, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from dp_common.diagnostics import ERROR  # noqa: E402
from dp_common.msgs.cloud import read_cloud  # noqa: E402
from dp_common.qos import latched_qos, reliable_qos, sensor_qos  # noqa: E402
from dp_common.testing import spin_until  # noqa: E402
from dp_sim.core.robot import FINGER_JOINTS, JOINT_NAMES  # noqa: E402
from dp_sim.sim_node import SimNode  # noqa: E402


def _overrides(**kw):
    params = {
        "seed": 5,
        "real_time_factor": 0.0,
        "camera_width": 80,
        "camera_height": 60,
        "clock_hz": 50.0,
        "camera_hz": 10.0,
    }
    params.update(kw)
    return [Parameter(k, value=v) for k, v in params.items()]


def test_sim_node_publishes_and_follows_commands(rclpy_context):
    sim = SimNode(context=rclpy_context, parameter_overrides=_overrides())
    probe = Node(
        "sim_probe",
        context=rclpy_context,
        parameter_overrides=[Parameter("use_sim_time", value=True)],
    )
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(sim)
    ex.add_node(probe)
    got: dict[str, list] = {k: [] for k in ("clock", "js", "points", "image", "status", "desc")}
    probe.create_subscription(Clock, "/clock", got["clock"].append, reliable_qos(10))
    probe.create_subscription(JointState, "joint_states", got["js"].append, reliable_qos(10))
    probe.create_subscription(PointCloud2, "camera/points", got["points"].append, sensor_qos())
    probe.create_subscription(Image, "camera/image", got["image"].append, sensor_qos())
    probe.create_subscription(String, "sim/episode_status", got["status"].append, reliable_qos(10))
    probe.create_subscription(String, "robot_description", got["desc"].append, latched_qos())
    fwd = probe.create_publisher(Float64MultiArray, "forward_position_controller/commands", 10)
    traj = probe.create_publisher(JointTrajectory, "joint_trajectory_controller/joint_trajectory", 10)
    reset_seed = probe.create_publisher(Int64, "sim/reset_seed", 10)
    client = probe.create_client(Trigger, "sim/reset")
    try:
        assert spin_until(
            ex,
            lambda: (
                len(got["points"]) >= 2
                and len(got["js"]) >= 5
                and len(got["clock"]) >= 5
                and got["desc"]
                and got["image"]
                and got["status"]
            ),
            timeout_s=20,
        )
        # /clock is increasing, joint_states carry the 7 arm joints and the 2 fingers
        t = [c.clock.sec + c.clock.nanosec * 1e-9 for c in got["clock"]]
        assert all(b > a for a, b in zip(t, t[1:], strict=False))
        assert list(got["js"][-1].name) == list(JOINT_NAMES) + list(FINGER_JOINTS)
        # a use_sim_time node follows /clock
        assert spin_until(ex, lambda: probe.get_clock().now().nanoseconds > 0, timeout_s=10)
        assert abs(probe.get_clock().now().nanoseconds * 1e-9 - sim.now_s) < 1.0
        assert "<robot" in got["desc"][0].data
        cloud = got["points"][-1]
        assert cloud.header.frame_id == "camera_optical_frame"
        # the documented layout, decoded by the perception stage (xyz + packed rgb)
        assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == [
            ("x", 0, 7),
            ("y", 4, 7),
            ("z", 8, 7),
            ("rgb", 12, 7),
        ]
        dec = read_cloud(cloud)
        xyz = dec.xyz
        assert xyz.shape[0] > 500 and np.all(xyz[:, 2] > 0)
        assert cloud.is_dense
        rgb = dec.rgb()
        assert rgb.shape == xyz.shape and 0.0 <= rgb.min() and rgb.max() <= 1.0
        img = got["image"][-1]
        assert (img.height, img.width, img.encoding) == (60, 80, "rgb8")
        assert json.loads(got["status"][-1].data)["seed"] == 5

        # forward position command moves joint 1
        q0 = np.array(got["js"][-1].position[:7])
        target = q0.copy()
        target[0] += 0.3
        assert spin_until(ex, lambda: fwd.get_subscription_count() and traj.get_subscription_count(), 10)
        fwd.publish(Float64MultiArray(data=target.tolist()))
        assert spin_until(ex, lambda: abs(got["js"][-1].position[0] - target[0]) < 1e-3, timeout_s=20)

        # a joint trajectory (stamp 0 = start now) moves joint 2
        jt = JointTrajectory(joint_names=["panda_joint2"])
        p = JointTrajectoryPoint(positions=[float(q0[1] - 0.2)])
        p.time_from_start.nanosec = 200_000_000
        jt.points = [p]
        traj.publish(jt)
        assert spin_until(ex, lambda: abs(got["js"][-1].position[1] - (q0[1] - 0.2)) < 1e-3, timeout_s=20)
        assert abs(got["js"][-1].position[0] - target[0]) < 1e-3  # other joints hold

        # reset to an explicit seed, then the Trigger service goes to seed + 1
        got["status"].clear()
        assert spin_until(ex, lambda: reset_seed.get_subscription_count(), 10)
        reset_seed.publish(Int64(data=42))
        assert spin_until(
            ex,
            lambda: any(json.loads(s.data)["seed"] == 42 for s in got["status"]),
            timeout_s=20,
        )
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(Trigger.Request())
        assert spin_until(ex, future.done, timeout_s=20)
        assert future.result().success
        assert json.loads(future.result().message)["seed"] == 43
    finally:
        ex.shutdown()
        sim.destroy_node()
        probe.destroy_node()


@pytest.mark.parametrize("task,max_time", [("reach", 5.0), ("lift", 8.0)])
def test_sim_node_expert_drive_reaches_success(rclpy_context, task, max_time):
    sim = SimNode(
        context=rclpy_context,
        parameter_overrides=_overrides(
            task=task, expert_drive=True, cloud_frame="world", publish_image=False
        ),
    )
    probe = Node(f"sim_probe2_{task}", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(sim)
    ex.add_node(probe)
    status: list = []
    commands: list = []
    points: list = []
    probe.create_subscription(String, "sim/episode_status", lambda m: status.append(json.loads(m.data)), 10)
    probe.create_subscription(JointState, "expert/joint_command", commands.append, 10)
    probe.create_subscription(PointCloud2, "camera/points", points.append, sensor_qos())
    try:
        assert spin_until(ex, lambda: status and status[-1]["success"], timeout_s=30)
        assert len(commands) >= 5
        assert points and points[-1].header.frame_id == "world"
        assert status[-1]["success_time"] < max_time
        assert len(commands[-1].name) == (8 if task == "lift" else 7)
    finally:
        ex.shutdown()
        sim.destroy_node()
        probe.destroy_node()


def test_sim_node_gripper_commands_and_refusals(rclpy_context):
    """The hand follows gripper_controller/commands; bad commands are refused and nothing moves."""
    sim = SimNode(
        context=rclpy_context,
        parameter_overrides=_overrides(task="lift", sensor_realism="off", publish_image=False, camera_hz=5.0),
    )
    probe = Node("sim_probe3", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(sim)
    ex.add_node(probe)
    js: list = []
    diags: list = []
    probe.create_subscription(JointState, "joint_states", js.append, reliable_qos(10))
    probe.create_subscription(DiagnosticArray, "/diagnostics", diags.append, reliable_qos(10))
    grip = probe.create_publisher(Float64MultiArray, "gripper_controller/commands", reliable_qos(10))
    fwd = probe.create_publisher(Float64MultiArray, "forward_position_controller/commands", 10)
    try:
        assert spin_until(
            ex, lambda: js and grip.get_subscription_count() and fwd.get_subscription_count(), 20
        )
        names = list(js[-1].name)
        f1, f2 = names.index("panda_finger_joint1"), names.index("panda_finger_joint2")
        assert js[-1].position[f1] == pytest.approx(0.04, abs=1e-3)  # lift starts open
        grip.publish(Float64MultiArray(data=[0.01]))
        assert spin_until(
            ex, lambda: abs(js[-1].position[f1] - 0.01) < 1e-3 and abs(js[-1].position[f2] - 0.01) < 1e-3, 20
        )
        # finite speed: 3 cm per finger at 0.05 m/s takes >= 0.6 s of sim time (checked in the core test)
        for bad in ([float("nan")], [0.5], [-0.01], [0.02, 0.02], []):
            grip.publish(Float64MultiArray(data=bad))
        assert spin_until(ex, lambda: sim.diag.counter("rejected_commands") >= 5, 20)
        n0 = len(js)
        assert spin_until(ex, lambda: len(js) > n0 + 25, 20)
        assert abs(js[-1].position[f1] - 0.01) < 1e-3  # nothing moved
        assert sim.scene.gripper_cmd == pytest.approx(0.01)

        def refused_on_diagnostics():
            return any(
                "gripper command refused" in st.message
                and (st.level[0] if isinstance(st.level, bytes) else int(st.level)) == ERROR
                for arr in diags
                for st in arr.status
            )

        assert spin_until(ex, refused_on_diagnostics, 20)
        # tracking error shows in joint_states: a step command is followed with a lag
        q0 = np.array(js[-1].position[:7])
        target = q0.copy()
        target[0] += 0.3
        fwd.publish(Float64MultiArray(data=target.tolist()))
        assert spin_until(ex, lambda: abs(js[-1].position[0] - q0[0]) > 0.01, 20)
        lagging = abs(js[-1].position[0] - target[0])
        assert 0.01 < lagging < 0.3
        assert spin_until(ex, lambda: abs(js[-1].position[0] - target[0]) < 2e-3, 20)
    finally:
        ex.shutdown()
        sim.destroy_node()
        probe.destroy_node()
