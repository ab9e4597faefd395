"""The policy tick (ROS-free PolicyRunner): stamps, seeding, delta -> absolute, inpainting, resets.

Timeline (dt = 0.1 s, n_obs_steps = 2; T = 1_764_000_000_123_456_789 ns, an epoch-scale stamp)::

    clouds     T-0.2   T-0.1   T        (10 Hz)       joints every 10 ms up to T
    tick(now = T + 5 ms): history (T-0.1, T) -> chunk stamped T exactly, rows = model rows 1..15
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dp_policy.core import DiffusionPolicyModel, Normalizer, Policy, PolicyConfig  # noqa: E402
from dp_policy.core.checkpoint import CheckpointError  # noqa: E402
from dp_policy.core.node_config import PolicyNodeConfig  # noqa: E402
from dp_policy.core.observations import NO_CLOUD, UNCHANGED  # noqa: E402
from dp_policy.core.runner import Chunk, NoChunk, PolicyRunner  # noqa: E402

J = ["a", "b", "c"]
T = 1_764_000_000_123_456_789
DT_NS = 100_000_000
N = 32


def make_policy(action_space="joint_position", joint_names=J, objective="diffusion"):
    torch.manual_seed(0)
    cfg = PolicyConfig.preset(
        "simple_dp3", state_dim=3, action_dim=3, joint_names=joint_names, action_space=action_space,
        objective=objective,
        down_dims=[16, 32], diffusion_step_embed_dim=16, num_inference_steps=2,
        encoder={"num_points": N, "out_dim": 16, "state_mlp_dims": [16]},
        perception={"target_frame": "world", "num_points": N},
    )  # fmt: skip
    rng = np.random.default_rng(0)
    norm = Normalizer.fit({"action": rng.uniform(-1, 1, (64, 3)), "agent_pos": rng.uniform(-1, 1, (64, 3)),
                           "point_cloud": rng.uniform(-1, 1, (256, 3))})  # fmt: skip
    return Policy(cfg, DiffusionPolicyModel(cfg), norm)


def q_of(t_ns):
    t = (t_ns - T) * 1e-9
    return np.array([np.sin(t), np.cos(t), 0.5 * t])


def cloud_of(t_ns):
    return np.random.default_rng(t_ns % 1000).uniform(-0.5, 0.5, (N, 3)).astype(np.float32)


def feed(runner, until_ns, clouds):
    for t in range(T - 300_000_000, until_ns + 1, 10_000_000):
        runner.add_joint_state(t, J, q_of(t), now_ns=t)
    for t in clouds:
        runner.add_frame(t, cloud_of(t), now_ns=t)


def expected(policy, stamps, seed, prefix=None):
    obs = {"point_cloud": np.stack([cloud_of(t) for t in stamps]),
           "agent_pos": np.stack([q_of(t) for t in stamps]).astype(np.float32)}  # fmt: skip
    return policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(seed), prefix=prefix)


@pytest.mark.parametrize("objective", ["diffusion", "regression"])  # regression: the MSE baseline
def test_tick_gives_the_policy_output_stamped_exactly_with_the_newest_cloud(objective):
    policy = make_policy(objective=objective)
    runner = PolicyRunner(policy, PolicyNodeConfig(seed=5), "tiny@0")
    assert isinstance(runner.tick(T), NoChunk) and runner.tick(T).reason == NO_CLOUD
    feed(runner, T, [T - 2 * DT_NS, T - DT_NS, T])
    chunk = runner.tick(T + 5_000_000)
    assert isinstance(chunk, Chunk), chunk
    assert chunk.stamp_ns == T and chunk.obs_stamps_ns == (T - DT_NS, T)  # integer ns, exactly
    assert chunk.chunk_id == 0 and chunk.policy_id == "tiny@0" and chunk.joint_names == tuple(J)
    assert chunk.action_space == "joint_position" and chunk.dt == pytest.approx(0.1)
    np.testing.assert_allclose(chunk.rows, expected(policy, [T - DT_NS, T], 5)[1:], atol=1e-6)
    again = runner.tick(T + 6_000_000)  # same history: not run again
    assert isinstance(again, NoChunk) and again.reason == UNCHANGED and again.level is None
    runner.add_frame(T + DT_NS, cloud_of(T + DT_NS), now_ns=T + DT_NS)
    runner.add_joint_state(T + DT_NS, J, q_of(T + DT_NS), now_ns=T + DT_NS)
    second = runner.tick(T + DT_NS)
    assert second.chunk_id == 1  # seed + chunk_id
    np.testing.assert_allclose(second.rows, expected(policy, [T, T + DT_NS], 6)[1:], atol=1e-6)


def test_delta_checkpoint_rows_are_absolute_and_inpainting_continues_the_previous_chunk():
    policy = make_policy("joint_position_delta")
    runner = PolicyRunner(policy, PolicyNodeConfig(seed=1, inpaint_rows=3), "d")
    feed(runner, T + DT_NS, [T - DT_NS, T])
    first = runner.tick(T)
    base = q_of(T).astype(np.float32)
    np.testing.assert_allclose(first.rows, expected(policy, [T - DT_NS, T], 1)[1:] + base, atol=1e-5)
    runner.add_frame(T + DT_NS, cloud_of(T + DT_NS), now_ns=T + DT_NS)
    second = runner.tick(T + DT_NS)
    # Model rows 0..3 of the second chunk (t, t+dt, ...) = the first chunk at those times.
    np.testing.assert_allclose(second.rows[:3], first.rows[1:4], atol=1e-5)
    assert not np.allclose(second.rows[3:6], first.rows[4:7], atol=1e-5)  # free rows are sampled
    # After a reset (activation) there is no previous chunk to continue, nor old clouds.
    runner.reset()
    assert runner.tick(T + DT_NS).reason == NO_CLOUD
    feed(runner, T + 3 * DT_NS, [T + 2 * DT_NS, T + 3 * DT_NS])
    prepared = runner.prepare(T + 3 * DT_NS)
    assert prepared.prefix is None and not prepared.inpaint_skipped


def test_inputs_timing_rules_and_clock_jumps():
    runner = PolicyRunner(make_policy(), PolicyNodeConfig(), "p")
    with pytest.raises(ValueError, match="in the future"):
        runner.add_joint_state(T + 60_000_000, J, [0, 0, 0], now_ns=T)
    runner.add_joint_state(0, J, [1.0, 2.0, 3.0], now_ns=T)  # unstamped: taken as now
    assert runner.joints.latest(J)[0] == pytest.approx(T * 1e-9)
    feed(runner, T, [T - DT_NS, T])
    assert runner.check_clock(T) is False
    assert runner.check_clock(T - 2_000_000_000) is True  # replay restarted: everything forgotten
    assert len(runner.history) == 0 and runner.joints.names == []


def test_checkpoints_the_runtime_refuses():
    with pytest.raises(CheckpointError, match="no joint_names"):
        PolicyRunner(make_policy(joint_names=[]), PolicyNodeConfig(), "p")
    with pytest.raises(ValueError, match="inpaint_rows must be < .* = 15"):
        PolicyRunner(make_policy(), PolicyNodeConfig(inpaint_rows=15), "p")


def test_runner_warmup_checks_the_output_shape():
    runner = PolicyRunner(make_policy(), PolicyNodeConfig(warmup_iters=1), "p")
    assert runner.warmup() > 0


def test_policy_core_modules_import_no_ros():
    code = (
        "import sys, dp_policy.core.runner, dp_policy.core.observations, dp_policy.core.camera_sync; "
        "bad = [m for m in sys.modules if m == 'rclpy' or m.endswith('_msgs') or m.startswith('rosbags')]; "
        "assert not bad, bad"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
