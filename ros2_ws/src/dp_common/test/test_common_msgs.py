"""ActionChunk crosses real DDS between processes with every field intact."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

from dp_common.testing import spin_until

PUBLISHER = textwrap.dedent(
    """
    import time, rclpy
    from dp_msgs.msg import ActionChunk
    from dp_common.qos import chunk_qos
    rclpy.init()
    node = rclpy.create_node("chunk_pub")
    pub = node.create_publisher(ActionChunk, "dp/action_chunk", chunk_qos())
    msg = ActionChunk()
    msg.header.stamp.sec = 12; msg.header.stamp.nanosec = 345
    msg.header.frame_id = "world"
    msg.chunk_id = 2**40 + 7
    msg.policy_id = "ckpt@abc123"
    msg.action_space = ActionChunk.ACTION_SPACE_JOINT_POSITION
    msg.joint_names = ["j%d" % i for i in range(7)]
    msg.dt = 0.1
    msg.horizon = 15
    msg.action_dim = 7
    msg.data = [float(i) * 0.25 for i in range(15 * 7)]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.05)
    """
)


def test_action_chunk_over_dds(rclpy_context):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from dp_common.qos import chunk_qos
    from dp_msgs.msg import ActionChunk

    proc = subprocess.Popen([sys.executable, "-c", PUBLISHER], env=dict(os.environ))
    node = Node("chunk_sub", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    received = []
    node.create_subscription(ActionChunk, "dp/action_chunk", received.append, chunk_qos())
    try:
        assert spin_until(executor, lambda: len(received) > 0, timeout_s=20), "no chunk received"
        msg = received[0]
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (12, 345, "world")
        assert msg.chunk_id == 2**40 + 7
        assert msg.policy_id == "ckpt@abc123"
        assert msg.action_space == "joint_position"
        assert list(msg.joint_names) == [f"j{i}" for i in range(7)]
        assert msg.dt == 0.1 and msg.horizon == 15 and msg.action_dim == 7
        data = np.asarray(msg.data, dtype=np.float32)
        assert data.shape == (105,)
        np.testing.assert_array_equal(data, np.arange(105, dtype=np.float32) * 0.25)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        executor.shutdown()
        node.destroy_node()
