"""Tests of the deployment observation history (ROS-free).

Timeline used by most tests (dt = 0.1 s, n_obs_steps = 2, clouds at 30 Hz, joints at 100 Hz)::

    t (s)     0.000 0.033 0.067 0.100 0.133 0.167 0.200 0.233 0.267 0.300
    clouds      c0    c1    c2    c3    c4    c5    c6    c7    c8    c9
    joints    j j j j j j j j j j j j j j j j j j j j j j j j j j j j j j   (every 0.01 s)
    now = 0.31:  newest = c9 (0.300), step -1 target 0.200 -> c6 (0.200)
    agent_pos[k] = q(stamp of chosen cloud), q(t) = [t, 2t, -t]
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from dp_common.core.joint_states import JointStateBuffer
from dp_common.msgs.stamp import s_to_ns as S
from dp_policy.core.observations import (
    BAD_CLOUD,
    FUTURE,
    INCOMPLETE,
    JOINT_STATE_UNAVAILABLE,
    MISSING_JOINTS,
    NO_CLOUD,
    STALE,
    UNCHANGED,
    ObservationError,
    ObservationHistory,
    ObsHistoryConfig,
)

NAMES = ["a", "b", "c"]
N = 16


def q_of(t):
    return np.array([t, 2 * t, -t])


def cloud(t, n=N):
    """A cloud whose values encode its stamp (so tests can see which one was chosen)."""
    return np.full((n, 3), t, dtype=np.float32)


def make(n_obs_steps=2, **kw):
    cfg = ObsHistoryConfig(n_obs_steps=n_obs_steps, dt=0.1, num_points=N, point_channels=3, **kw)
    return ObservationHistory(cfg)


def joints_until(t_end, t0=0.0, period=0.01, names=NAMES):
    buf = JointStateBuffer(history_s=2.0)
    for t in np.arange(t0, t_end + 1e-9, period):
        buf.update(float(t), names, q_of(float(t))[: len(names)])
    return buf


def fill(hist, stamps, now=None):
    for t in stamps:
        hist.add_cloud(S(t), cloud(t), now_ns=S(t if now is None else now))


def test_newest_cloud_and_cloud_closest_to_newest_minus_dt():
    hist = make()
    stamps = [k / 30 for k in range(10)]
    fill(hist, stamps)
    obs = hist.build(S(0.31), joints_until(0.31), NAMES)
    np.testing.assert_allclose(obs.stamps * 1e-9, [stamps[6], stamps[9]])
    assert obs.point_cloud.shape == (2, N, 3) and obs.point_cloud.dtype == np.float32
    np.testing.assert_allclose(obs.point_cloud[:, 0, 0], obs.stamps * 1e-9, rtol=1e-6)
    np.testing.assert_allclose(obs.agent_pos, np.stack([q_of(t) for t in obs.stamps * 1e-9]), atol=1e-6)
    assert obs.stamp_ns == S(0.3)
    assert set(obs.as_policy_input()) == {"point_cloud", "agent_pos"}


def test_three_steps_with_jittered_camera():
    #   clouds:  0.000 0.052 0.098 0.151 0.203 0.249 0.301   (~20 Hz, jitter)
    #   newest 0.301 -> targets 0.201 (-> 0.203), 0.101 (-> 0.098)
    hist = make(n_obs_steps=3)
    stamps = [0.0, 0.052, 0.098, 0.151, 0.203, 0.249, 0.301]
    fill(hist, stamps)
    obs = hist.build(S(0.32), joints_until(0.32), NAMES)
    np.testing.assert_allclose(obs.stamps * 1e-9, [0.098, 0.203, 0.301])


def test_joint_state_is_interpolated_at_cloud_stamp():
    hist = make()
    fill(hist, [0.105, 0.205])
    buf = JointStateBuffer()
    for t in (0.1, 0.11, 0.2, 0.21):  # cloud stamps fall between samples
        buf.update(t, NAMES, q_of(t))
    obs = hist.build(S(0.21), buf, NAMES)
    np.testing.assert_allclose(obs.agent_pos, [q_of(0.105), q_of(0.205)], atol=1e-6)


def test_joint_order_follows_requested_names():
    hist = make()
    fill(hist, [0.1, 0.2])
    obs = hist.build(S(0.2), joints_until(0.2), ["c", "a"])
    np.testing.assert_allclose(obs.agent_pos[-1], [-0.2, 0.2], atol=1e-6)


def test_incomplete_history_until_an_old_enough_cloud_exists():
    #   clouds: 0.20 0.233  -> newest 0.233, target 0.133: nothing within 0.04 s
    hist = make()
    fill(hist, [0.2, 0.2333])
    with pytest.raises(ObservationError) as err:
        hist.build(S(0.24), joints_until(0.24), NAMES)
    assert err.value.reason == INCOMPLETE
    fill(hist, [0.3])  # 0.3 - 0.1 = 0.2 -> c(0.2)
    obs = hist.build(S(0.3), joints_until(0.3), NAMES)
    np.testing.assert_allclose(obs.stamps * 1e-9, [0.2, 0.3])


def test_slow_camera_never_completes_history():
    #   clouds at 4 Hz: 0.00 0.25 0.50 ; dt 0.1 -> target 0.40, closest 0.50/0.25 (> 0.04 off)
    hist = make()
    fill(hist, [0.0, 0.25, 0.5])
    with pytest.raises(ObservationError) as err:
        hist.build(S(0.5), joints_until(0.5), NAMES)
    assert err.value.reason == INCOMPLETE and "slower" in str(err.value)


def test_single_step_policy_needs_one_cloud():
    hist = make(n_obs_steps=1)
    fill(hist, [0.1])
    obs = hist.build(S(0.1), joints_until(0.1), NAMES)
    assert obs.point_cloud.shape == (1, N, 3)


def test_no_cloud():
    with pytest.raises(ObservationError) as err:
        make().build(S(0.0), joints_until(0.1), NAMES)
    assert err.value.reason == NO_CLOUD


def test_stale_history_rejected_when_time_moves_on():
    #   clouds 0.1, 0.2 ; now 0.2 ok ; now 0.8 -> newest is 0.6 s old > obs_timeout 0.5
    hist = make(obs_timeout_s=0.5)
    fill(hist, [0.1, 0.2])
    buf = joints_until(0.9)
    hist.build(S(0.2), buf, NAMES)
    with pytest.raises(ObservationError) as err:
        hist.build(S(0.8), buf, NAMES)
    assert err.value.reason == STALE and "0.600 s old" in str(err.value)


def test_stale_cloud_rejected_on_arrival():
    hist = make(obs_timeout_s=0.5)
    with pytest.raises(ObservationError) as err:
        hist.add_cloud(S(1.0), cloud(1.0), now_ns=S(2.0))
    assert err.value.reason == STALE and len(hist) == 0


def test_future_stamped_cloud_rejected_and_not_used():
    hist = make(future_tolerance_s=0.05)
    fill(hist, [0.1, 0.2])
    with pytest.raises(ObservationError) as err:
        hist.add_cloud(S(0.5), cloud(0.5), now_ns=S(0.2))
    assert err.value.reason == FUTURE and len(hist) == 2
    hist.add_cloud(S(0.23), cloud(0.23), now_ns=S(0.2))  # within tolerance: accepted
    assert len(hist) == 3


def test_cloud_in_future_after_clock_moved_back_is_skipped():
    hist = make(future_tolerance_s=0.05)
    fill(hist, [0.1, 0.2, 0.3])
    # The clock now reads 0.21 (e.g. a replay restarted): 0.3 is in the future and ignored.
    obs = hist.build(S(0.21), joints_until(0.3), NAMES)
    np.testing.assert_allclose(obs.stamps * 1e-9, [0.1, 0.2])
    with pytest.raises(ObservationError) as err:
        hist.build(S(0.0), joints_until(0.3), NAMES)
    assert err.value.reason == FUTURE


@pytest.mark.parametrize(
    "points, words",
    [
        (np.zeros((N + 1, 3), np.float32), "expects exactly 16"),
        (np.zeros((N, 6), np.float32), "channels"),
        (np.zeros((N,), np.float32), "shape"),
        (np.full((N, 3), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_clouds_rejected(points, words):
    hist = make()
    with pytest.raises(ObservationError) as err:
        hist.add_cloud(S(0.1), points, now_ns=S(0.1))
    assert err.value.reason == BAD_CLOUD and words in str(err.value)
    assert len(hist) == 0


def test_unchanged_history_is_reported_then_new_cloud_runs():
    hist = make()
    fill(hist, [0.1, 0.2])
    buf = joints_until(0.4)
    obs = hist.build(S(0.2), buf, NAMES)
    hist.mark_used(obs)
    with pytest.raises(ObservationError) as err:
        hist.build(S(0.25), buf, NAMES)
    assert err.value.reason == UNCHANGED
    assert hist.build(S(0.25), buf, NAMES, skip_unchanged=False).key == obs.key
    fill(hist, [0.3])
    assert hist.build(S(0.3), buf, NAMES).stamp_ns == S(0.3)


def test_missing_joint():
    hist = make()
    fill(hist, [0.1, 0.2])
    with pytest.raises(ObservationError) as err:
        hist.build(S(0.2), joints_until(0.2, names=["a", "b"]), NAMES)
    assert err.value.reason == MISSING_JOINTS and "'c'" in str(err.value)


def test_partial_joint_states_merged_by_name():
    hist = make()
    fill(hist, [0.1, 0.2])
    buf = JointStateBuffer()
    for t in np.arange(0.0, 0.21, 0.01):
        buf.update(float(t), ["a", "b"], q_of(float(t))[:2])
        buf.update(float(t), ["c"], q_of(float(t))[2:])
    obs = hist.build(S(0.2), buf, NAMES)
    np.testing.assert_allclose(obs.agent_pos[-1], q_of(0.2), atol=1e-6)


def test_joint_states_lagging_behind_cloud():
    #   joints stop at 0.10 ; clouds 0.1, 0.2 -> no joint state at 0.2 (0.1 s > 0.05 s tolerance)
    hist = make(joint_tolerance_s=0.05)
    fill(hist, [0.1, 0.2])
    with pytest.raises(ObservationError) as err:
        hist.build(S(0.2), joints_until(0.1), NAMES)
    assert err.value.reason == JOINT_STATE_UNAVAILABLE


def test_buffer_is_bounded():
    hist = make(max_clouds=8)
    fill(hist, [k / 30 for k in range(100)])
    assert len(hist) <= 8
    hist.build(S(99 / 30), joints_until(3.4), NAMES)


def test_out_of_order_cloud_inserted_by_stamp():
    hist = make()
    fill(hist, [0.3, 0.1], now=0.3)
    fill(hist, [0.2], now=0.3)
    obs = hist.build(S(0.3), joints_until(0.3), NAMES)
    np.testing.assert_allclose(obs.stamps * 1e-9, [0.2, 0.3])


def test_epoch_scale_stamps_are_kept_exactly():
    """At today's epoch a float second loses ~0.2 us; the history keeps integer ns."""
    hist = make()
    t1 = 1_764_000_000_123_456_789
    t0 = t1 - 100_000_001
    for t in (t0, t1):
        hist.add_cloud(t, cloud(0.0), now_ns=t)
    buf = JointStateBuffer()
    for t in np.arange(-0.3, 0.05, 0.01):
        buf.update(t1 * 1e-9 + t, NAMES, q_of(0.0))
    obs = hist.build(t1 + 1, buf, NAMES)
    assert obs.stamps.dtype == np.int64 and obs.key == (t0, t1) and obs.stamp_ns == t1
    with pytest.raises(ObservationError) as err:
        hist.add_cloud(float(t1), cloud(0.0), now_ns=t1)
    assert err.value.reason == BAD_CLOUD and "integer ns" in str(err.value)


@pytest.mark.parametrize(
    "kw",
    [{"dt": 0.0}, {"step_tolerance_s": 0.1}, {"obs_timeout_s": -1.0}, {"point_channels": 4}],
)
def test_config_validation(kw):
    with pytest.raises(ValueError):
        ObsHistoryConfig(**kw)


def test_observations_module_is_ros_free():
    code = (
        "import sys, dp_policy.core.observations; "
        "bad = [m for m in sys.modules if m == 'rclpy' or m.endswith('_msgs') or m == 'rosbags']; "
        "assert not bad, bad"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
