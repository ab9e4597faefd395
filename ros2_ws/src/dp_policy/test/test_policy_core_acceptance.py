"""Acceptance tests of the dp_policy core: multimodality (bimodal arcs) and learning from points.

Budgets are fixed numbers of optimizer steps, sized for a few minutes on a shared 2-core CPU.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dp_policy.core import Policy
from dp_policy.core.synthetic import arc_distance, make_arc_dataset, make_reach_dataset, true_chunk
from dp_policy.core.training import TrainConfig, train

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

    # MSE regression baseline, same budget (steps, batch, lr schedule), same normalized data.
    torch.manual_seed(0)
    norm = res.normalizer
    obs = norm.normalize("agent_pos", data["agent_pos"])
    act = norm.normalize("action", data["action"])
    ends = data["episode_ends"]
    starts = np.concatenate([[0], ends[:-1]])
    idx_obs, idx_act = [], []
    for s, e in zip(starts, ends, strict=True):
        for i in range(-1, e - s - 16 + 7 + 1):
            t = s + np.clip(i + np.arange(16), 0, e - s - 1)
            idx_obs.append(t[:2])
            idx_act.append(t)
    x_all = torch.from_numpy(obs[np.array(idx_obs)].reshape(len(idx_obs), -1))
    y_all = torch.from_numpy(act[np.array(idx_act)].reshape(len(idx_act), -1))
    mlp = nn.Sequential(nn.Linear(4, 256), nn.Mish(), nn.Linear(256, 256), nn.Mish(), nn.Linear(256, 32))
    opt = torch.optim.AdamW(mlp.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(ARC_STEPS):
        b = torch.randint(0, len(x_all), (ARC_BATCH,), generator=gen)
        loss = nn.functional.mse_loss(mlp(x_all[b]), y_all[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        x0 = torch.from_numpy(norm.normalize("agent_pos", np.zeros((1, 2, 2), np.float32)).reshape(1, -1))
        pred = norm.unnormalize("action", mlp(x0).numpy().reshape(16, 2))
    # mid-path rows: theta in [pi/3, 2pi/3] (positions 6..10 of 16 -> rows 5..9 of the chunk)
    mid = pred[5:10]
    assert (arc_distance(mid, radius) > 0.25 * radius).all(), arc_distance(mid, radius)


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
