"""The gripper column end to end: 8-column ActionChunks -> control_node -> sim_node -> a lifted cube.

The scripted expert's actions of one seed (recorded in the ROS-free core) are replayed as action
chunks, the way policy_node publishes them; control_node (real node, sim time) interpolates the arm
columns and sends the gripper column as a step on gripper_controller/commands; sim_node applies both
and judges the lift physically.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("dp_control")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import Float64MultiArray, Int64, String  # noqa: E402

from dp_common.msgs.chunk import build_chunk  # noqa: E402
from dp_common.qos import chunk_qos, reliable_qos  # noqa: E402
from dp_common.testing import spin_until  # noqa: E402
from dp_sim.core import GRIPPER_JOINT, JOINT_NAMES, SimConfig, SimScene, expert_step, make_expert  # noqa: E402

SEED = 3
DT = 0.1


def _expert_rows(cfg: SimConfig) -> np.ndarray:
    scene = SimScene(cfg)
    expert = make_expert(cfg.task, kin=scene.kin)
    scene.reset(SEED)
    expert.start(scene)
    rows = []
    for _ in range(90):
        rows.append(expert_step(scene, expert, DT))
        scene.step(DT)
    assert scene.success_time is not None
    scene.close()
    return np.asarray(rows)


def test_gripper_column_flows_from_chunks_through_control_to_the_hand(rclpy_context):
    from dp_control.control_node import ControlNode
    from dp_msgs.msg import ActionChunk
    from dp_sim.sim_node import SimNode

    sim_params = {"task": "lift", "camera_width": 64, "camera_height": 48, "sensor_realism": "off"}
    rows = _expert_rows(SimConfig(**sim_params))
    sim = SimNode(
        context=rclpy_context,
        parameter_overrides=[
            Parameter(k, value=v)
            for k, v in {**sim_params, "seed": SEED, "real_time_factor": 1.0, "publish_image": False}.items()
        ],
    )
    control = ControlNode(
        context=rclpy_context,
        parameter_overrides=[
            Parameter("use_sim_time", value=True),
            Parameter("autostart", value=True),
            Parameter("max_start_distance", value=0.3),
            Parameter("handover", value="ensemble"),
        ],
    )
    feeder = Node(
        "chunk_feeder", context=rclpy_context, parameter_overrides=[Parameter("use_sim_time", value=True)]
    )
    chunk_pub = feeder.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
    reset_pub = feeder.create_publisher(Int64, "sim/reset_seed", reliable_qos(10))
    status: list[dict] = []
    grippers: list[float] = []
    feeder.create_subscription(String, "sim/episode_status", lambda m: status.append(json.loads(m.data)), 10)
    feeder.create_subscription(
        Float64MultiArray,
        "gripper_controller/commands",
        lambda m: grippers.append(m.data[0]),
        reliable_qos(10),
    )
    names = list(JOINT_NAMES) + [GRIPPER_JOINT]
    state = {"id": 0}

    def publish_chunk():
        now_ns = feeder.get_clock().now().nanoseconds
        if now_ns == 0:
            return
        if state["id"] == 0:  # everything is up: start the episode now (as the episode manager does)
            reset_pub.publish(Int64(data=SEED))
        t = now_ns * 1e-9 - sim.time_offset  # episode time (the chunk is "now" of that episode)
        if t < 0:
            return
        k = min(int(round(t / DT)), len(rows) - 1)
        chunk = rows[np.minimum(np.arange(k, k + 15), len(rows) - 1)]
        state["id"] += 1
        chunk_pub.publish(build_chunk(now_ns, chunk, names, DT, state["id"], "scripted_expert"))

    feeder.create_timer(DT, publish_chunk)
    ex = SingleThreadedExecutor(context=rclpy_context)
    for n in (sim, control, feeder):
        ex.add_node(n)
    try:
        assert spin_until(ex, lambda: bool(status) and status[-1].get("success"), timeout_s=60)
        assert status[-1]["seed"] == SEED and status[-1]["success_time"] < 9.0
        # the hand was commanded open, then closed, through control's gripper step
        assert grippers and max(grippers) == pytest.approx(0.04) and min(grippers) == pytest.approx(0.0)
        assert sim.scene.fingers_touch_cube()
    finally:
        ex.shutdown()
        for n in (sim, control, feeder):
            n.destroy_node()
