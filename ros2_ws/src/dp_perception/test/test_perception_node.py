"""perception_node over a real in-process ROS graph: good clouds out, every bad input dropped."""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402

from dp_common.core.pointcloud import FLOAT32, INT16, RawCloud, pack_rgb  # noqa: E402
from dp_common.core.transforms import matrix_to_pose7, pose7_to_matrix  # noqa: E402
from dp_common.msgs import s_to_ns  # noqa: E402
from dp_common.msgs.cloud import build_cloud, build_raw_cloud, read_cloud  # noqa: E402
from dp_common.qos import reliable_qos, sensor_qos  # noqa: E402
from dp_common.testing import spin_until  # noqa: E402
from dp_perception.core import PerceptionConfig, preprocess_cloud  # noqa: E402
from dp_perception.core.synthetic import TABLETOP_CROP, tabletop_cloud  # noqa: E402
from dp_perception.perception_node import PerceptionNode  # noqa: E402

XYZ = [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1)]


def _camera_to_target(transform):
    return matrix_to_pose7(transform)


def _raw_xyzrgb(xyz, rgb8, height, width):
    n = xyz.shape[0]
    buf = np.zeros((n, 8), dtype="<f4")  # point_step 32 with padding, like a camera driver
    buf[:, :3] = xyz
    buf[:, 4] = pack_rgb(rgb8).view("<f4")
    fields = [*XYZ, ("rgb", 16, FLOAT32, 1)]
    return RawCloud(fields, 32, 32 * width, height, width, False, buf.tobytes())


def _msg(raw: RawCloud, sec: int, frame="cam"):
    return build_raw_cloud(s_to_ns(sec), frame, raw)


def test_conversions_roundtrip():
    pts = np.random.default_rng(0).random((50, 6)).astype(np.float32)
    msg = build_cloud(0, "world", pts)
    assert msg.width == 50 and msg.height == 1 and msg.point_step == 16 and msg.is_dense
    dec = read_cloud(msg).cloud
    np.testing.assert_array_equal(dec.xyz, pts[:, :3])
    np.testing.assert_allclose(dec.rgb(), pts[:, 3:], atol=0.5 / 255 + 1e-6)


def test_perception_node_good_and_bad_clouds(rclpy_context):
    scene = tabletop_cloud(width=160, height=120, seed=1)
    cam_to_target = _camera_to_target(scene.transform)
    params = {
        "crop_min": list(TABLETOP_CROP[0]),
        "crop_max": list(TABLETOP_CROP[1]),
        "num_points": 256,
        "min_points": 64,
        "voxel_size": 0.01,
        "use_rgb": True,
        "camera_frame": "cam",
        "camera_to_target": cam_to_target,
        "use_tf": False,
        "max_input_points": 300_000,
        "error_log_period_s": 0.0,
    }
    node = PerceptionNode(
        context=rclpy_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
    )
    probe = Node("perception_probe", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(probe)
    outputs: list[PointCloud2] = []
    diags: list[DiagnosticArray] = []
    probe.create_subscription(PointCloud2, "dp/points", outputs.append, sensor_qos(50))
    probe.create_subscription(DiagnosticArray, "/diagnostics", diags.append, reliable_qos(50))
    pub = probe.create_publisher(PointCloud2, "camera/points", sensor_qos(5))

    xyz = scene.xyz.reshape(-1, 3)
    rgb8 = scene.rgb.reshape(-1, 3)
    good_raw = _raw_xyzrgb(xyz, rgb8, 120, 160)
    cfg = PerceptionConfig(**{k: v for k, v in params.items() if k in PerceptionConfig.__dataclass_fields__})
    t = pose7_to_matrix(cam_to_target)
    expected = preprocess_cloud(xyz, pack_rgb(rgb8), cfg, t, seed=0)

    def send(msg):
        n0 = node.diag.counter("received")
        pub.publish(msg)
        assert spin_until(ex, lambda: node.diag.counter("received") > n0, timeout_s=10)

    def send_good(sec):
        send(_msg(good_raw, sec))
        assert spin_until(ex, lambda: any(o.header.stamp.sec == sec for o in outputs), timeout_s=10)
        out = next(o for o in outputs if o.header.stamp.sec == sec)
        assert out.header.frame_id == "world" and out.width * out.height == 256
        dec = read_cloud(out)
        np.testing.assert_array_equal(dec.xyz, expected[:, :3])
        np.testing.assert_allclose(dec.rgb(), expected[:, 3:], atol=0.5 / 255 + 1e-6)

    nan_raw = _raw_xyzrgb(np.full_like(xyz, np.nan), rgb8, 120, 160)
    small = RawCloud(XYZ, 12, 12 * 100, 1, 100, False, np.zeros((100, 3), "<f4").tobytes())
    n_big = 400_000  # > max_input_points; ~4.8 MB, carried in-process
    big = RawCloud(XYZ, 12, 12 * n_big, 1, n_big, False, bytes(12 * n_big))
    bad = {
        "empty": (RawCloud(XYZ, 12, 0, 1, 0, False, b""), "cam"),
        "too_few_points": (nan_raw, "cam"),
        "no_xyz": (RawCloud(XYZ[:2], 12, 1200, 1, 100, False, small.data), "cam"),
        "unsupported_field_type": (
            RawCloud([("x", 0, INT16, 1), *XYZ[1:]], 12, 1200, 1, 100, False, small.data),
            "cam",
        ),
        "inconsistent_layout": (RawCloud(XYZ, 12, 600, 1, 100, False, small.data), "cam"),
        "short_data": (RawCloud(XYZ, 12, 1200, 1, 100, False, small.data[:1000]), "cam"),
        "unknown_frame": (good_raw, "mystery_frame"),
        "too_large": (big, "cam"),
    }
    try:
        assert spin_until(
            ex, lambda: pub.get_subscription_count() > 0 and node.pub.get_subscription_count() > 0, 10
        )
        send_good(1)
        for i, (reason, (raw, frame)) in enumerate(bad.items()):
            sec = 100 + i
            send(_msg(raw, sec, frame))
            assert node.diag.counter(f"dropped_{reason}") == 1, reason
            send_good(200 + i)  # the node survived and still processes good clouds correctly
            assert not any(o.header.stamp.sec == sec for o in outputs), reason
        assert node.diag.counter("dropped") == len(bad)
        assert node.diag.counter("published") == len(bad) + 1

        def reported():
            for arr in diags:
                for st in arr.status:
                    values = {kv.key: kv.value for kv in st.values}
                    if all(values.get(f"dropped_{r}") == "1" for r in bad) and "processing p50 ms" in values:
                        return True
            return False

        assert spin_until(ex, reported, timeout_s=5)
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()


def test_transform_sources(rclpy_context):
    """Static camera_to_target without TF; tf2 lookups (a stand-in buffer) when TF is in use."""
    from geometry_msgs.msg import TransformStamped

    from dp_perception.core import PerceptionError

    node = PerceptionNode(
        context=rclpy_context,
        parameter_overrides=[
            Parameter("camera_frame", value="cam"),
            Parameter("camera_to_target", value=[0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
            Parameter("use_tf", value=False),
        ],
    )
    raw = RawCloud(XYZ, 12, 12, 1, 1, False, bytes(12))
    try:
        assert node._transform_for(_msg(raw, 1, "world")) is None
        np.testing.assert_allclose(node._transform_for(_msg(raw, 1, "cam"))[:3, 3], [0.5, 0, 0])
        with pytest.raises(PerceptionError) as err:
            node._transform_for(_msg(raw, 1, "other"))
        assert err.value.reason == "unknown_frame"

        class StandInBuffer:
            def lookup_transform(self, target, source, stamp, timeout=None):
                if source != "wrist_cam" or stamp.nanoseconds != 7 * 10**9:
                    raise RuntimeError(f"no transform {target} <- {source}")
                tf = TransformStamped()
                tf.transform.translation.z = 2.0
                tf.transform.rotation.w = 1.0
                return tf

        node._tf_buffer = StandInBuffer()
        np.testing.assert_allclose(node._transform_for(_msg(raw, 7, "wrist_cam"))[:3, 3], [0, 0, 2.0])
        with pytest.raises(PerceptionError) as err:
            node._transform_for(_msg(raw, 8, "wrist_cam"))
        assert err.value.reason == "tf_lookup_failed"
    finally:
        node.destroy_node()
