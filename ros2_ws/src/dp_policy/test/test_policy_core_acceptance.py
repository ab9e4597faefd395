"""Acceptance tests of the dp_policy core: multimodality (bimodal arcs) and learning from points.

Budgets are fixed numbers of optimizer steps, sized for a few minutes on a shared 2-core CPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from dp_policy.core import Policy
from dp_policy.core.synthetic import arc_distance, make_arc_dataset, make_reach_dataset, true_chunk
from dp_policy.core.train_config import TrainConfig
from dp_policy.core.training import train

torch.set_num_threads(1)

ARC_STEPS = 1200
ARC_BATCH = 64


def _arc_policy_cfg() -> dict:
    return {
        "preset": "simple_dp3",
        "down_dims": [32, 64, 128],
        "diffusion_step_embed_dim": 32,
        "encoder": {"type": "lowdim", "state_mlp_dims": [32, 32]},
    }


def test_diffusion_covers_both_arcs_and_mse_regression_averages_them():
    radius = 1.0
    data = make_arc_dataset(100, radius=radius, n_steps=17)
    cfg = TrainConfig(output_dir="", policy=_arc_policy_cfg(), batch_size=ARC_BATCH, num_epochs=10_000,
                      max_train_steps=ARC_STEPS, lr=1e-3, lr_warmup_steps=50, val_ratio=0.0,
                      progress=False, seed=0)  # fmt: skip
    res = train(cfg, data=data)
    policy = Policy(res.config, res.ema_model, res.normalizer)
    start = {"agent_pos": np.zeros((200, 2, 2), np.float32)}  # both arcs valid here
    chunks = policy.predict_action_chunk(start, generator=torch.Generator().manual_seed(0))
    upper = float((chunks[:, :, 1].mean(axis=1) > 0).mean())
    assert 0.25 <= upper <= 0.75, upper
    dist = arc_distance(chunks, radius)
    assert dist.max() <= 0.05 * radius, dist.max()

    # The MSE regression baseline (objective: regression): the same encoder and U-Net, the same
    # budget (steps, batch, lr schedule), the same data and seed; one deterministic chunk.
    reg_cfg = dataclasses.replace(cfg, policy={**_arc_policy_cfg(), "objective": "regression"})
    reg = train(reg_cfg, data=data)
    reg_policy = Policy(reg.config, reg.ema_model, reg.normalizer)
    pred = reg_policy.predict_action_chunk({"agent_pos": np.zeros((2, 2), np.float32)})
    # mid-path rows: theta in [pi/3, 2pi/3] (positions 6..10 of 16 -> rows 5..9 of the chunk) lie
    # between the arcs (|y| small), far from both, while the diffusion samples are on one arc
    mid = pred[5:10]
    assert (arc_distance(mid, radius) > 0.25 * radius).all(), arc_distance(mid, radius)
    assert (np.abs(mid[:, 1]) < 0.5 * radius).all(), mid
    assert np.abs(chunks[:, 5:10, 1]).min() > 0.7 * radius  # every diffusion sample commits to an arc
    # it did learn the task: the chunk still heads from the start (0, 0) to the goal (2R, 0)
    assert abs(pred[-1, 0] - 2 * radius) < 0.25 * radius, pred[-1]


def test_dp3_reads_the_cube_position_from_points():
    data = make_reach_dataset(n_episodes=100, n_steps=20, num_points=96, seed=0)
    val = np.arange(80, 100)  # 20 held-out episodes
    cfg = TrainConfig(
        output_dir="",
        policy={"preset": "simple_dp3", "down_dims": [32, 64, 128], "diffusion_step_embed_dim": 32,
                "encoder": {"out_dim": 64}},  # fmt: skip
        batch_size=32, num_epochs=10_000, max_train_steps=900, lr=1e-3, lr_warmup_steps=50,
        progress=False, seed=0,
    )  # fmt: skip
    res = train(cfg, data=data, val_episodes=val)
    policy = Policy(res.config, res.ema_model, res.normalizer)
    ends = data["episode_ends"]
    first = np.concatenate([[0], ends[:-1]])[val]
    obs = {
        "point_cloud": np.repeat(data["point_cloud"][first][:, None], 2, axis=1),
        "agent_pos": np.repeat(data["agent_pos"][first][:, None], 2, axis=1),
    }
    targets = np.stack([true_chunk(data["action"][first[i] : ends[e]], 16, 2)[-1] for i, e in enumerate(val)])
    pred = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0))
    err = np.linalg.norm(pred[:, -1] - targets, axis=-1)
    assert np.median(err) <= 0.02, np.median(err)
    assert np.quantile(err, 0.9) <= 0.04, np.quantile(err, 0.9)
    shuffled = dict(obs, point_cloud=obs["point_cloud"][np.roll(np.arange(len(val)), 7)])
    pred_s = policy.predict_action_chunk(shuffled, generator=torch.Generator().manual_seed(0))
    err_s = np.linalg.norm(pred_s[:, -1] - targets, axis=-1)
    assert np.median(err_s) > 0.05, np.median(err_s)
