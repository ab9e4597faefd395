"""dp_eval.core.tf_tree: static and dynamic chains, interpolation, and lookup errors (no ROS)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dp_eval.core.synthetic import WRIST_FRAMES, wrist_camera_pose, wrist_link_pose, wrist_static_transforms
from dp_eval.core.tf_tree import TfLookupError, TfTree

S = 1_000_000_000  # ns per s


def _pose(xyz, rotvec) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    m[:3, 3] = xyz
    return m


def _wrist_tree(t0_s=0.0, t1_s=1.0, hz=10.0, tolerance_ns=20_000_000) -> TfTree:
    tree = TfTree(tolerance_ns, name="bagX")
    for (p, c), m in wrist_static_transforms().items():
        tree.add(p, c, 0, m, static=True)
    for t in np.arange(t0_s, t1_s + 1e-9, 1 / hz):
        tree.add("base", "wrist_link", int(round(t * S)), wrist_link_pose(t), static=False)
    return tree


def test_a_five_edge_chain_with_a_dynamic_edge_is_exact_between_samples():
    tree = _wrist_tree()
    # samples every 0.1 s; ask between them: constant velocity + fixed-axis spin are exact under
    # linear translation + slerp
    for t in (0.0, 0.033, 0.25, 0.5, 0.9999, 1.0):
        got = tree.lookup("world", WRIST_FRAMES[-1], int(round(t * S)))
        np.testing.assert_allclose(got, wrist_camera_pose(t), atol=1e-12)
    # the inverse direction, and a lookup between two branches' frames
    t_ns = int(0.37 * S)
    np.testing.assert_allclose(
        tree.lookup(WRIST_FRAMES[-1], "world", t_ns), np.linalg.inv(wrist_camera_pose(0.37)), atol=1e-12
    )
    cam_from_base = tree.lookup("camera_link", "base", t_ns)
    st = wrist_static_transforms()
    expected = np.linalg.inv(wrist_link_pose(0.37) @ st[("wrist_link", "camera_link")])
    np.testing.assert_allclose(cam_from_base, expected, atol=1e-12)


def test_interpolation_is_slerp_and_linear_not_a_nearest_sample():
    tree = TfTree()
    a, b = _pose([0, 0, 0], [0, 0, 0]), _pose([1.0, 2.0, 0.0], [0, 0, np.pi / 2])
    tree.add("odom", "base", 10 * S, a, static=False)
    tree.add("odom", "base", 11 * S, b, static=False)
    got = tree.lookup("odom", "base", 10 * S + S // 4)
    np.testing.assert_allclose(got, _pose([0.25, 0.5, 0.0], [0, 0, np.pi / 8]), atol=1e-12)
    # samples may arrive out of order; the same stamp twice keeps the last one
    tree.add("odom", "base", 9 * S, b, static=False)
    tree.add("odom", "base", 9 * S, a, static=False)
    np.testing.assert_allclose(tree.lookup("odom", "base", 9 * S + S // 2), _pose([0, 0, 0], [0, 0, 0]))


def test_static_transforms_hold_at_any_time_and_leading_slashes_are_ignored():
    tree = TfTree()
    m = _pose([0.3, 0, 1], [0.1, 0.2, 0.3])
    tree.add("/world", "/camera", 5, m, static=True)
    assert tree.lookup("world", "camera", 0) is m  # bit-identical to what was recorded
    np.testing.assert_allclose(tree.lookup("/world", "camera", 10**18), m)
    np.testing.assert_array_equal(tree.lookup("camera", "camera", 0), np.eye(4))


def test_outside_the_dynamic_range_beyond_the_tolerance_is_an_error_naming_frames_and_time():
    tree = _wrist_tree(0.0, 1.0, tolerance_ns=20_000_000)
    # within the tolerance past the last sample: the last sample is used
    np.testing.assert_allclose(tree.lookup("world", WRIST_FRAMES[-1], int(1.015 * S)), wrist_camera_pose(1.0))
    with pytest.raises(TfLookupError) as err:
        tree.lookup("world", WRIST_FRAMES[-1], int(1.05 * S))
    msg = str(err.value)
    assert "bagX" in msg and "world" in msg and "camera_optical_frame" in msg and "1.050 s" in msg
    assert "base -> wrist_link" in msg and "0.000 s .. 1.000 s" in msg
    with pytest.raises(TfLookupError, match="-0.030 s"):
        tree.lookup("world", WRIST_FRAMES[-1], -30_000_000)


def test_no_path_and_malformed_trees_are_errors():
    tree = _wrist_tree()
    tree.add("map", "odom", 0, np.eye(4), static=True)
    with pytest.raises(TfLookupError, match="no transform path from camera_optical_frame to map at 0.500 s"):
        tree.lookup("map", "camera_optical_frame", S // 2)
    with pytest.raises(TfLookupError, match="no transform path"):
        tree.lookup("world", "nowhere", 0)
    tree.add("odom", "base", 0, np.eye(4), static=True)  # base already hangs from world
    np.testing.assert_allclose(tree.lookup("camera_link", "wrist_link", 0), np.linalg.inv(
        wrist_static_transforms()[("wrist_link", "camera_link")]))  # fmt: skip
    with pytest.raises(TfLookupError, match="frame base has two parents, world and odom"):
        tree.lookup("world", "camera_optical_frame", 0)
    with pytest.raises(ValueError, match="both /tf and /tf_static"):
        tree.add("base", "wrist_link", 0, np.eye(4), static=True)
    with pytest.raises(ValueError, match="finite"):
        tree.add("a", "b", 0, np.full((4, 4), np.nan), static=True)
