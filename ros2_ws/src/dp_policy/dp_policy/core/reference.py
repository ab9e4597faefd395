"""The published inference pattern, for baselines and equivalence checks.

Runs the same weights the way the published DP3 / Diffusion Policy code does: every residual
block calls its ``nn.Sequential`` layers (Conv1d -> GroupNorm -> Mish) and its own FiLM
``cond_encoder`` on ``cat(step_embedding, global_cond)`` at every step, the sample is transposed
with a non-contiguous view, and the DDIM loop calls ``diffusers.DDIMScheduler.step``.
"""

from __future__ import annotations

import torch

from dp_policy.core.model import DiffusionPolicyModel
from dp_policy.core.noise import make_inference_scheduler
from dp_policy.core.unet import ConditionalResidualBlock1D, ConditionalUnet1D


def _res_block(blk: ConditionalResidualBlock1D, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    out = blk.blocks[0].block(x)
    embed = blk.cond_encoder(cond).reshape(cond.shape[0], 2, blk.out_channels, 1)
    out = embed[:, 0, ...] * out + embed[:, 1, ...]
    out = blk.blocks[1].block(out)
    return out + blk.residual_conv(x)


def reference_encode_obs(net: DiffusionPolicyModel, nobs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Published DP3 encoder pattern: the point MLP and max-pool differentiated over every point.

    Same weights and features as ``net.encode_obs``; the latter backpropagates through the critical
    points only (see :class:`dp_policy.core.encoders.PointNetExtractor`).
    """
    n = net.cfg.n_obs_steps
    enc = net.obs_encoder
    flat = {k: v[:, :n].reshape(-1, *v.shape[2:]) for k, v in nobs.items() if k in net.cfg.obs_keys}
    feats = [enc.state_mlp(flat["agent_pos"])]
    if "point_cloud" in flat:
        ext = enc.extractor
        pts = flat["point_cloud"][..., : enc.cfg.point_channels]
        feats.insert(0, ext.final_projection(ext.mlp(pts).amax(dim=1)))
    return torch.cat(feats, dim=-1).reshape(nobs["agent_pos"].shape[0], -1)


def reference_unet_forward(
    unet: ConditionalUnet1D, sample: torch.Tensor, timestep: torch.Tensor, global_cond: torch.Tensor
) -> torch.Tensor:
    """Published ConditionalUnet1D.forward: sample (B, T, A) -> (B, T, A)."""
    x = sample.transpose(1, 2)  # einops 'b h t -> b t h' (a view)
    if timestep.dim() == 0:
        timestep = timestep[None]
    timestep = timestep.expand(x.shape[0])
    cond = torch.cat([unet.diffusion_step_encoder(timestep), global_cond], dim=-1)
    h = []
    for mods in unet.down_modules:
        for m in mods[:-1]:
            x = _res_block(m, x, cond)
        h.append(x)
        x = mods[-1].conv(x) if hasattr(mods[-1], "conv") else x
    for m in unet.mid_modules:
        x = _res_block(m, x, cond)
    for mods in unet.up_modules:
        x = torch.cat((x, h.pop()), dim=1)
        for m in mods[:-1]:
            x = _res_block(m, x, cond)
        x = mods[-1].conv(x)
    x = unet.final_conv[1](unet.final_conv[0].block(x))
    return x.transpose(1, 2)


def reference_sample(
    net: DiffusionPolicyModel, gcond: torch.Tensor, noise: torch.Tensor, num_steps: int
) -> torch.Tensor:
    """Published DDIM loop (``scheduler.step`` each step) or a plain Euler loop for flow matching."""
    cfg = net.cfg
    x = noise
    if cfg.objective == "flow_matching":
        for k in range(num_steps):
            t = torch.full((x.shape[0],), k / num_steps * cfg.num_train_timesteps)
            x = x + reference_unet_forward(net.model, x, t, gcond) / num_steps
        return x
    sched = make_inference_scheduler(cfg)
    sched.set_timesteps(num_steps)
    for t in sched.timesteps:
        out = reference_unet_forward(net.model, x, t, gcond)
        x = sched.step(out, t, x).prev_sample
    return x
