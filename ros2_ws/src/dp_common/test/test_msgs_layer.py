"""The message layer builds and reads the same messages for rclpy and rosbags, stamps in integer ns."""

from __future__ import annotations

import numpy as np
import pytest

from dp_common.msgs import ROS, bag_types, make_header, ns_to_stamp, s_to_ns, stamp_to_ns
from dp_common.msgs.chunk import build_chunk, read_chunk
from dp_eval.core.bagio import make_typestore

# An epoch-scale stamp whose float-seconds round trip is not exact.
STAMP_NS = 1_764_000_000_123_456_789


def test_float_seconds_would_lose_the_stamp_but_ns_does_not():
    assert s_to_ns(STAMP_NS * 1e-9) != STAMP_NS  # why the layer never stores float seconds
    for types in (ROS, bag_types(make_typestore())):
        stamp = ns_to_stamp(STAMP_NS, types)
        assert stamp_to_ns(stamp) == STAMP_NS
        assert stamp_to_ns(make_header(STAMP_NS, "world", types).stamp) == STAMP_NS


@pytest.mark.parametrize("bad", [1.5, -1, "12", True])
def test_ns_to_stamp_refuses_non_integer_or_negative(bad):
    with pytest.raises(ValueError, match="stamp must be"):
        ns_to_stamp(bad)


@pytest.mark.parametrize("kind", ["rclpy", "rosbags"])
def test_chunk_round_trip(kind):
    typestore = make_typestore()
    types = ROS if kind == "rclpy" else bag_types(typestore)
    rows = np.arange(15 * 8, dtype=np.float32).reshape(15, 8) / 7.0
    names = [f"j{i}" for i in range(7)] + ["panda_finger_joint1"]
    msg = build_chunk(STAMP_NS, rows, names, 0.1, chunk_id=2**40 + 3, policy_id="p@1", types=types)
    if kind == "rosbags":  # through CDR, as a bag stores it
        msg = typestore.deserialize_cdr(typestore.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    got = read_chunk(msg)
    assert got.stamp_ns == STAMP_NS
    assert got.chunk_id == 2**40 + 3 and got.policy_id == "p@1" and got.action_space == "joint_position"
    assert got.joint_names == tuple(names) and got.dt == 0.1
    np.testing.assert_array_equal(got.rows, rows)


def test_malformed_chunk_is_read_but_rows_raise():
    msg = build_chunk(STAMP_NS, np.zeros((4, 2), np.float32), ["a", "b"], 0.1)
    msg.horizon = 5
    got = read_chunk(msg)
    assert got.data.size == 8
    with pytest.raises(ValueError, match="expected horizon x action_dim = 5 x 2"):
        _ = got.rows


def test_build_chunk_checks_columns():
    with pytest.raises(ValueError, match="len\\(joint_names\\)=3"):
        build_chunk(0, np.zeros((4, 2)), ["a", "b", "c"], 0.1)
