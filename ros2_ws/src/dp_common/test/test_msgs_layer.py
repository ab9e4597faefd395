"""The message layer builds and reads the same messages for rclpy and rosbags, stamps in integer ns."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from dp_common.bags import make_typestore
from dp_common.msgs import ROS, bag_types, make_header, ns_to_stamp, s_to_ns, stamp_to_ns
from dp_common.msgs.chunk import build_chunk, read_chunk

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


def _through(kind, typestore, msg):
    """The message as a subscriber or bag reader gets it: rosbags messages go through CDR."""
    if kind == "rclpy":
        return msg
    return typestore.deserialize_cdr(typestore.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def _types(kind):
    typestore = make_typestore()
    return typestore, ROS if kind == "rclpy" else bag_types(typestore)


@pytest.mark.parametrize("kind", ["rclpy", "rosbags"])
@pytest.mark.parametrize("with_rgb", [False, True])
def test_cloud_round_trip(kind, with_rgb):
    from dp_common.core.pointcloud import pack_rgb
    from dp_common.msgs.cloud import build_cloud, read_cloud

    typestore, types = _types(kind)
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(500, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(500, 3)).astype(np.uint8) if with_rgb else None
    msg = _through(kind, typestore, build_cloud(STAMP_NS, "camera", xyz, rgb, types=types))
    got = read_cloud(msg)
    assert got.stamp_ns == STAMP_NS and got.frame_id == "camera"
    np.testing.assert_array_equal(got.xyz, xyz)
    if with_rgb:
        np.testing.assert_array_equal(got.rgb_packed, pack_rgb(rgb))
    else:
        assert got.rgb_packed is None
    assert msg.is_dense and msg.height == 1 and msg.width == 500


def test_cloud_builder_takes_xyzrgb_points_and_marks_non_finite():
    from dp_common.msgs.cloud import build_cloud, read_cloud

    pts = np.zeros((4, 6), np.float32)
    pts[:, 3:] = [1.0, 0.5, 0.0]
    pts[2, 0] = np.nan
    msg = build_cloud(5, "world", pts)
    assert isinstance(msg.data, bytes | bytearray) or len(msg.data) == 4 * 16
    assert not msg.is_dense
    got = read_cloud(msg)
    np.testing.assert_allclose(got.cloud.rgb()[0], [1.0, 128 / 255, 0.0], atol=1e-6)


@pytest.mark.parametrize("kind", ["rclpy", "rosbags"])
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_image_round_trip(kind, encoding):
    from dp_common.msgs.image import build_image, read_image

    typestore, types = _types(kind)
    rgb = np.random.default_rng(1).integers(0, 256, size=(6, 5, 3)).astype(np.uint8)
    msg = _through(kind, typestore, build_image(STAMP_NS, "cam", rgb, encoding, types=types))
    assert msg.encoding == encoding and stamp_to_ns(msg.header.stamp) == STAMP_NS
    np.testing.assert_array_equal(read_image(msg, use_cv_bridge=False), rgb)


def test_image_builder_refuses_other_shapes():
    from dp_common.msgs.image import build_image

    with pytest.raises(ValueError, match="expected an \\(H, W, 3\\)"):
        build_image(0, "", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="rgb8 or bgr8"):
        build_image(0, "", np.zeros((4, 4, 3), np.uint8), "mono16")


@pytest.mark.parametrize("kind", ["rclpy", "rosbags"])
def test_joint_state_round_trip(kind):
    from dp_common.msgs.joint_state import build_joint_state, read_joint_state

    typestore, types = _types(kind)
    names = [f"j{i}" for i in range(7)]
    q = np.linspace(-1, 1, 7)
    msg = _through(kind, typestore, build_joint_state(STAMP_NS, names, q, velocities=q * 2, types=types))
    got = read_joint_state(msg)
    assert got.stamp_ns == STAMP_NS and got.names == tuple(names)
    np.testing.assert_array_equal(got.position, q)
    np.testing.assert_array_equal(got.velocity, q * 2)
    assert got.effort.size == 0
    with pytest.raises(ValueError, match="expected one per name"):
        build_joint_state(0, names, q[:3])


@pytest.mark.parametrize("kind", ["rclpy", "rosbags"])
def test_float64_array_round_trip(kind):
    from dp_common.msgs.array import build_float64_array, read_float64_array

    typestore, types = _types(kind)
    for values in ([0.04], np.linspace(-1, 1, 7)):
        got = read_float64_array(_through(kind, typestore, build_float64_array(values, types)))
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, np.asarray(values, dtype=np.float64))


@pytest.mark.parametrize("kind", ["rclpy", "rosbags"])
def test_tf_round_trip(kind):
    from dp_common.core.transforms import quaternion_to_matrix
    from dp_common.msgs.transform import build_tf, build_transform, read_tf, read_transform

    typestore, types = _types(kind)
    rng = np.random.default_rng(2)
    mats = []
    for _ in range(8):  # random rotations, each branch of the matrix -> quaternion pivot
        q = rng.normal(size=4)
        mats.append(quaternion_to_matrix(rng.normal(size=3), q))
    mats.append(quaternion_to_matrix([0, 0, 1], [1, 0, 0, 0]))  # 180 deg about x: w = 0
    tfs = [build_transform(STAMP_NS, "world", f"c{i}", m, types) for i, m in enumerate(mats)]
    got = [read_transform(_through(kind, typestore, tf)) for tf in tfs]
    if kind == "rosbags" or importlib.util.find_spec("tf2_msgs") is not None:  # no tf2_msgs wheel here
        from_tf = read_tf(_through(kind, typestore, build_tf(tfs, types)))
        assert [t.child_frame_id for t in from_tf] == [g.child_frame_id for g in got]
        np.testing.assert_array_equal([t.matrix for t in from_tf], [g.matrix for g in got])
    assert [g.child_frame_id for g in got] == [f"c{i}" for i in range(len(mats))]
    for g, m in zip(got, mats, strict=True):
        assert g.stamp_ns == STAMP_NS and g.frame_id == "world"
        np.testing.assert_allclose(g.matrix, m, atol=1e-12)


def test_matrix_to_quaternion_matches_scipy():
    from scipy.spatial.transform import Rotation

    from dp_common.core.transforms import matrix_to_pose7, matrix_to_quaternion, pose7_to_matrix

    rots = Rotation.random(50, random_state=3)
    for r in rots:
        q = matrix_to_quaternion(r.as_matrix())
        ref = r.as_quat()
        ref = -ref if ref[3] < 0 else ref
        np.testing.assert_allclose(q, ref, atol=1e-12)
    m = pose7_to_matrix([1, 2, 3, *rots[0].as_quat()])
    np.testing.assert_allclose(pose7_to_matrix(matrix_to_pose7(m)), m, atol=1e-12)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_stack_reads_what_it_wrote(tmp_path, storage):
    from dp_common.bags import BagReader, BagWriter, header_stamp_ns
    from dp_common.msgs.cloud import build_cloud, read_cloud
    from dp_common.msgs.joint_state import build_joint_state, read_joint_state

    xyz = np.arange(30, dtype=np.float32).reshape(10, 3)
    rows = np.ones((3, 2), np.float32)
    with BagWriter(tmp_path / "bag", storage=storage) as w:
        types = w.types
        w.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        w.write("/camera/points", STAMP_NS, build_cloud(STAMP_NS, "cam", xyz, types=types))
        w.write("/joint_states", STAMP_NS + 1, build_joint_state(STAMP_NS + 1, ["a"], [0.5], types=types))
        w.write("/dp/action_chunk", STAMP_NS + 2, build_chunk(STAMP_NS, rows, ["a", "b"], 0.1, types=types))
    with BagReader(tmp_path / "bag") as r:
        assert r.topics == {
            "/tf_static": "tf2_msgs/msg/TFMessage",
            "/camera/points": "sensor_msgs/msg/PointCloud2",
            "/joint_states": "sensor_msgs/msg/JointState",
            "/dp/action_chunk": "dp_msgs/msg/ActionChunk",
        }
        assert r.qos_of("/tf_static") == "latched" and r.qos_of("/joint_states") == "reliable"
        got = {m.topic: (m, r.deserialize(m)) for m in r.messages()}
    assert [m.timestamp_ns for m, _ in got.values()] == [STAMP_NS, STAMP_NS + 1, STAMP_NS + 2]
    cloud_raw, cloud = got["/camera/points"]
    assert header_stamp_ns(cloud_raw.rawdata) == STAMP_NS
    np.testing.assert_array_equal(read_cloud(cloud).xyz, xyz)
    assert read_joint_state(got["/joint_states"][1]).position.tolist() == [0.5]
    chunk = read_chunk(got["/dp/action_chunk"][1])
    assert chunk.stamp_ns == STAMP_NS
    np.testing.assert_array_equal(chunk.rows, rows)


def _builders(types):
    """One message of every type the layer builds, with `types`."""
    from dp_common.core.transforms import quaternion_to_matrix
    from dp_common.msgs.cloud import build_cloud
    from dp_common.msgs.image import build_image
    from dp_common.msgs.joint_state import build_joint_state
    from dp_common.msgs.transform import build_transform

    rng = np.random.default_rng(4)
    return {
        "cloud": build_cloud(STAMP_NS, "cam", rng.normal(size=(7, 6)).astype(np.float32), types=types),
        "image": build_image(STAMP_NS, "cam", rng.integers(0, 256, (3, 4, 3)).astype(np.uint8), types=types),
        "joint_state": build_joint_state(STAMP_NS, ["a", "b"], [0.1, 0.2], [1.0, 2.0], types=types),
        "chunk": build_chunk(STAMP_NS, np.ones((2, 2), np.float32), ["a", "b"], 0.1, 9, "p", types=types),
        "transform": build_transform(
            STAMP_NS, "world", "cam", quaternion_to_matrix([1, 2, 3], [0.1, 0.2, 0.3, 0.9]), types
        ),
    }


def _read(kind, msg):
    from dp_common.msgs.cloud import read_cloud
    from dp_common.msgs.image import read_image
    from dp_common.msgs.joint_state import read_joint_state
    from dp_common.msgs.transform import read_transform

    if kind == "cloud":
        c = read_cloud(msg)
        return c.stamp_ns, c.frame_id, c.xyz.tolist(), c.rgb_packed.tolist()
    if kind == "image":
        return stamp_to_ns(msg.header.stamp), read_image(msg, use_cv_bridge=False).tolist()
    if kind == "joint_state":
        j = read_joint_state(msg)
        return j.stamp_ns, j.names, j.position.tolist(), j.velocity.tolist()
    if kind == "chunk":
        c = read_chunk(msg)
        return c.stamp_ns, c.chunk_id, c.policy_id, c.joint_names, c.rows.tolist()
    t = read_transform(msg)
    return t.stamp_ns, t.frame_id, t.child_frame_id, t.matrix.tolist()


def test_rclpy_and_rosbags_messages_are_the_same_on_the_wire():
    """A node's message read from a bag and a bag's message published by a node read back the same."""
    from rclpy.serialization import deserialize_message, serialize_message

    from dp_common.bags import deserialize_cdr

    typestore = make_typestore()
    from_ros, from_bag = _builders(ROS), _builders(bag_types(typestore))
    for kind, msg in from_ros.items():
        bag_msg = from_bag[kind]
        name = bag_msg.__msgtype__
        ros_as_bag = deserialize_cdr(typestore, serialize_message(msg), name)  # rmw pads to 8 bytes
        bag_as_ros = deserialize_message(bytes(typestore.serialize_cdr(bag_msg, name)), type(msg))
        assert (
            _read(kind, ros_as_bag) == _read(kind, msg) == _read(kind, bag_as_ros) == _read(kind, bag_msg)
        ), kind
