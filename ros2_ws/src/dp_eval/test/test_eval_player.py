"""bag_player and bag_recorder over a real rclpy graph (in-process nodes, DDS transport)."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState, PointCloud2

from dp_common.bags import BagReader, BagWriter
from dp_common.msgs import s_to_ns
from dp_common.msgs.chunk import build_chunk, read_chunk
from dp_common.testing import spin_for, spin_until
from dp_eval.player import BagPlayer, to_rclpy
from dp_eval.recorder import BagRecorder
from dp_eval.synthetic_bag import write_synthetic_bag


def _qos():
    return QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)


def test_player_publishes_bag_content_and_clock(rclpy_context, tmp_path):
    write_synthetic_bag(tmp_path / "bag", storage="mcap", episodes=1, episode_s=0.6, width=16, height=12)
    with BagReader(tmp_path / "bag") as r:
        expected_js = [to_rclpy(r.cdr(m), m.msgtype) for m in r.messages(["joint_states"])]
        expected_clouds = [bytes(to_rclpy(r.cdr(m), m.msgtype).data) for m in r.messages(["camera/points"])]
        last_ns = max(m.timestamp_ns for m in r.messages())
    player_node = Node("bag_player_test", context=rclpy_context)
    sub_node = Node("listener", context=rclpy_context)
    got_js, got_clouds, clocks = [], [], []
    sub_node.create_subscription(JointState, "joint_states", got_js.append, _qos())
    sub_node.create_subscription(PointCloud2, "camera/points", got_clouds.append, _qos())
    sub_node.create_subscription(Clock, "/clock", clocks.append, _qos())
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(player_node)
    ex.add_node(sub_node)
    player = BagPlayer(player_node, tmp_path / "bag")
    try:
        assert spin_until(ex, lambda: player_node.count_subscribers("joint_states") > 0, 10.0)
        assert spin_until(ex, lambda: player_node.count_subscribers("/clock") > 0, 10.0)
        spin_for(ex, 0.3)
        n = player.play_stepped(on_step=lambda m: ex.spin_once(timeout_sec=0))
        assert n > len(expected_js)
        assert spin_until(
            ex, lambda: len(got_js) >= len(expected_js) and len(got_clouds) >= len(expected_clouds), 15.0
        ), (len(got_js), len(got_clouds))
        assert spin_until(ex, lambda: clocks and _ns(clocks[-1]) == last_ns, 5.0)
    finally:
        player.close()
        ex.shutdown()
        player_node.destroy_node()
        sub_node.destroy_node()
    assert len(got_js) == len(expected_js) == 31
    for got, exp in zip(got_js, expected_js, strict=True):
        assert list(got.name) == list(exp.name)
        np.testing.assert_array_equal(got.position, exp.position)
        assert got.header.stamp == exp.header.stamp
    assert [bytes(c.data) for c in got_clouds] == expected_clouds
    assert got_clouds[0].header.frame_id == "camera_optical_frame"
    stamps = [_ns(c) for c in clocks]
    assert stamps == sorted(stamps)  # /clock never goes back


def _ns(clock_msg) -> int:
    return clock_msg.clock.sec * 1_000_000_000 + clock_msg.clock.nanosec


@pytest.mark.parametrize(("in_storage", "out_storage"), [("sqlite3", "mcap"), ("mcap", "sqlite3")])
def test_play_record_round_trip(rclpy_context, tmp_path, in_storage, out_storage):
    """Bag written by us -> player -> DDS -> recorder -> bag read back by plain rosbags."""
    rows = [np.random.default_rng(k).normal(size=(15, 7)).astype(np.float32) for k in range(5)]
    names = [f"panda_joint{i}" for i in range(1, 8)]
    with BagWriter(tmp_path / "in", storage=in_storage) as w:
        for k, r in enumerate(rows):
            t = 10.0 + 0.1 * k
            chunk = build_chunk(s_to_ns(t), r, names, 0.1, k, "pid@0", types=w.types)
            w.write("dp/action_chunk", s_to_ns(t), chunk)
    node = Node("round_trip", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    recorder = BagRecorder(node, tmp_path / "out", ["dp/action_chunk"], storage=out_storage)
    player = BagPlayer(node, tmp_path / "in", publish_clock=False)
    try:
        assert spin_until(ex, lambda: node.count_subscribers("dp/action_chunk") > 0, 10.0)
        spin_for(ex, 0.3)
        player.play_stepped(on_step=lambda m: ex.spin_once(timeout_sec=0))
        assert spin_until(ex, lambda: recorder.counts["/dp/action_chunk"] >= len(rows), 10.0)
    finally:
        recorder.close()
        player.close()
        ex.shutdown()
        node.destroy_node()
    with AnyReader([tmp_path / "out"]) as r:
        (conn,) = r.connections
        assert conn.msgtype == "dp_msgs/msg/ActionChunk"
        got = [read_chunk(r.deserialize(raw, conn.msgtype)) for _, _, raw in r.messages()]
    assert [c.chunk_id for c in got] == list(range(5))
    for c, r in zip(got, rows, strict=True):
        np.testing.assert_array_equal(c.rows, r)
        assert c.joint_names == tuple(names) and c.policy_id == "pid@0"
