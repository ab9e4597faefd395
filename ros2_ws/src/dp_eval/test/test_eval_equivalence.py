"""Replay runs exactly the code the robot runs: one bag through dp_eval's stepped replay and through
policy_node (real DDS, simulated time) gives identical chunks.

The test plays the node's /clock as the replay's simulated clock does (dp_eval.core.stepped)::

    bag time    j  j  f  j  j  f  j  j  f         (epoch-scale stamps: t0 = 1_764_000_000.123456789 s)
    /clock      = each message's time, then the message; the test waits until the node has it
    ticks       T        T        T               (grid k * 100 ms; /clock set to T, tick awaited)

DP3 checkpoints get the replay's own dp/points (its perception output, from its outputs bag); image
checkpoints get the bag's camera/image. Stamps must match exactly (integer ns), rows to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image, JointState, PointCloud2  # noqa: E402

from dp_common.bags import BagReader, BagWriter  # noqa: E402
from dp_common.msgs.chunk import read_chunk  # noqa: E402
from dp_common.msgs.stamp import ns_to_stamp  # noqa: E402
from dp_common.qos import chunk_qos, reliable_qos  # noqa: E402
from dp_common.testing import spin_until  # noqa: E402
from dp_eval.core.config import EvalConfig  # noqa: E402
from dp_eval.core.synthetic import make_checkpoint  # noqa: E402
from dp_eval.episodes import load_bag  # noqa: E402
from dp_eval.stepped import run_stepped  # noqa: E402
from dp_eval.synthetic_bag import write_synthetic_bag  # noqa: E402
from dp_msgs.msg import ActionChunk  # noqa: E402

T0_S = 1_764_000_000.123456789
PERIOD_NS = 100_000_000
SEED = 11
TYPES = {"sensor_msgs/msg/PointCloud2": PointCloud2, "sensor_msgs/msg/Image": Image}


@pytest.fixture(scope="module")
def bag_dir(tmp_path_factory):
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("equiv") / "bag"
    write_synthetic_bag(path, episodes=1, episode_s=1.2, width=32, height=24, images=True, t0_s=T0_S)
    return path


def replay(bag_dir, ckpt, topic, inpaint_rows, out_dir, sync_wait_s=0.0):
    """dp_eval stepped replay; returns its chunks [(stamp_ns, rows)] and its outputs bag."""
    bag = load_bag(bag_dir, cloud_topic=topic)
    cfg = EvalConfig(inpaint_rows=inpaint_rows, sync_wait_s=sync_wait_s)
    with BagWriter(out_dir, storage="mcap") as out:
        res = run_stepped(bag_dir, bag, ckpt, cfg, seed=SEED, out_bag=out, progress=False)
    (ep,) = res.episodes
    return list(zip(ep.stamps_ns, ep.rows, strict=True))


def node_events(bag_dir, out_dir, image: bool):
    """(bag time ns, topic, rclpy message) of what the node subscribes to, in bag-time order."""
    events = []
    frame_topic = "camera/image" if image else "dp/points"
    sources = [(bag_dir, ["joint_states"] + (["camera/image"] if image else []))]
    if not image:
        sources.append((out_dir, ["dp/points"]))
    for path, topics in sources:
        with BagReader(path) as reader:
            for m in reader.messages(topics):
                typ = JointState if m.topic == "joint_states" else TYPES[m.msgtype]
                events.append((m.timestamp_ns, m.topic, deserialize_message(bytes(reader.cdr(m)), typ)))
    events.sort(key=lambda e: e[0])
    assert sum(e[1] == frame_topic for e in events) >= 12
    return events


def run_node(context, ckpt, events, image: bool, inpaint_rows: int, sync_wait_s=0.0):
    """policy_node stepped on /clock through `events`.

    Returns:
        its chunks [(stamp_ns, rows)], and how many were made on a frame's arrival (not at a tick).
    """
    from dp_policy.policy_node import PolicyNode

    params = {"use_sim_time": True, "checkpoint": str(ckpt), "seed": SEED, "warmup_iters": 0,
              "num_threads": 1, "autostart": True, "inpaint_rows": inpaint_rows, "perception_node": "",
              "publish_markers": False, "rate_hz": 10.0, "sync_wait_s": sync_wait_s}  # fmt: skip
    node = PolicyNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    probe = Node("equivalence_probe", context=context)
    clock = probe.create_publisher(Clock, "/clock", reliable_qos(10))
    pubs = {
        "joint_states": probe.create_publisher(JointState, "joint_states", reliable_qos(50)),
        "camera/image" if image else "dp/points": probe.create_publisher(
            Image if image else PointCloud2, "camera/image" if image else "dp/points", reliable_qos(10)
        ),
    }
    chunks: list[ActionChunk] = []
    probe.create_subscription(ActionChunk, "dp/action_chunk", chunks.append, chunk_qos())
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    ex.add_node(probe)
    try:
        assert spin_until(ex, lambda: all(p.get_subscription_count() >= 1 for p in [clock, *pubs.values()])
                          and probe.count_publishers("dp/action_chunk") >= 1, timeout_s=20)  # fmt: skip

        def set_clock(t_ns):
            clock.publish(Clock(clock=ns_to_stamp(t_ns)))
            assert spin_until(ex, lambda: node.get_clock().now().nanoseconds >= t_ns, timeout_s=10)

        def tick(t_ns):
            done = node.ticks_done
            set_clock(t_ns)
            assert spin_until(ex, lambda: node.ticks_done > done, timeout_s=10), "tick did not finish"
            assert spin_until(ex, lambda: len(chunks) == node.chunk_id, timeout_s=5), "chunk not delivered"

        on_arrival = 0
        next_tick = -(-events[0][0] // PERIOD_NS) * PERIOD_NS
        for t_ns, topic, msg in events:
            while next_tick <= t_ns:  # the clock reaches a tick before the message of that time
                tick(next_tick)
                next_tick += PERIOD_NS
            set_clock(t_ns)
            counts, n_chunks = (node.joint_states_received, node.clouds_received), len(chunks)
            pubs[topic].publish(msg)
            assert spin_until(ex, lambda c=counts: (node.joint_states_received, node.clouds_received) != c)
            # a frame a tick waited for (sync_wait_s) runs inference: let it finish and publish
            assert spin_until(ex, lambda: not node._busy and len(chunks) == node.chunk_id, timeout_s=10)
            on_arrival += len(chunks) - n_chunks
        while next_tick <= events[-1][0] + PERIOD_NS:
            tick(next_tick)
            next_tick += PERIOD_NS
        assert node.diag.counter("no chunk (busy)") == 0  # the harness never ticks during inference
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()
    out = [read_chunk(c) for c in chunks]
    return [(c.stamp_ns, c.rows) for c in out], on_arrival


CASES = [(kind, rows, 0.0) for kind in ("dp3", "image", "delta") for rows in (0, 3)] + [("dp3", 3, 0.05)]


@pytest.mark.parametrize("kind, inpaint_rows, sync_wait_s", CASES)
def test_node_and_replay_give_identical_chunks(
    rclpy_context, bag_dir, tmp_path, kind, inpaint_rows, sync_wait_s
):
    preset = "image_dp" if kind == "image" else "simple_dp3"
    action_space = "joint_position_delta" if kind == "delta" else "joint_position"
    ckpt = make_checkpoint(tmp_path / kind, preset=preset, seed=3, action_space=action_space)
    image = kind == "image"
    topic = "camera/image" if image else "camera/points"
    want = replay(bag_dir, ckpt, topic, inpaint_rows, tmp_path / "out", sync_wait_s)
    events = node_events(bag_dir, tmp_path / "out", image)
    got, on_arrival = run_node(rclpy_context, ckpt, events, image, inpaint_rows, sync_wait_s)
    assert len(want) >= 10, len(want)
    assert [s for s, _ in got] == [s for s, _ in want]  # integer ns, exactly
    assert all(s % 1000 != 0 for s, _ in want)  # epoch-scale stamps a float second could not hold
    for (_, a), (_, b) in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    # Camera sync: chunks are made at the arrival of the frame a tick waited for (23 ms after it).
    assert (on_arrival >= 8) if sync_wait_s else (on_arrival == 0), on_arrival
    # Inpainting on: a chunk one dt after the previous one starts with that chunk's rows 1..3.
    pairs = [
        (a, b) for (sa, a), (sb, b) in zip(want, want[1:], strict=False) if abs(sb - sa - PERIOD_NS) < 1000
    ]
    assert len(pairs) >= 8
    continued = [np.allclose(b[:3], a[1:4], atol=1e-5) for a, b in pairs]
    assert all(continued) if inpaint_rows else not any(continued)
