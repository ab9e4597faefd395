"""DP3 / Diffusion Policy network: observation encoder + conditional U-Net, loss and sampling.

Works on normalized tensors; normalization lives in :class:`dp_policy.core.policy.Policy` and the
trainer. Parameter names: ``obs_encoder.*`` and ``model.*`` as in the published DP3 policy.

``objective: regression`` is the deterministic baseline of the multimodality argument (Diffusion
Policy, Sec. 4; issue 13's ``place_bimodal``): the *same* encoder and the *same* U-Net, evaluated
once at step 0 on a fixed input, regress the whole normalized chunk with an MSE loss. The fixed
input is :func:`regression_query`: every column is the row's position in the chunk (-1 .. 1), so
the convolutions can tell rows apart (a constant input would give the U-Net, which is
translation-equivariant in time, almost the same output on every row). Same parameters, same
checkpoint layout; trained by the same loop (``compute_loss``) and run by the same
``Policy.predict_action_chunk`` (``sample`` ignores the noise). Under a multimodal demonstration
distribution the MSE optimum is the conditional *mean* of the modes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dp_policy.core.config import PolicyConfig
from dp_policy.core.encoders import build_encoder
from dp_policy.core.noise import DDIMTable, flow_timesteps, make_train_scheduler
from dp_policy.core.unet import build_unet
from dp_policy.core.vision import build_image_encoder


def regression_query(horizon: int, action_dim: int) -> torch.Tensor:
    """Fixed U-Net input of the regression objective (1, horizon, action_dim): row position -1 .. 1."""
    pos = torch.linspace(-1.0, 1.0, horizon) if horizon > 1 else torch.zeros(1)
    return pos[None, :, None].expand(1, horizon, action_dim).contiguous()


class DiffusionPolicyModel(nn.Module):
    """Encoder + U-Net with ``compute_loss`` (training) and ``sample`` (fast inference loop)."""

    def __init__(self, cfg: PolicyConfig, load_pretrained: bool = True) -> None:
        """``load_pretrained``: load ``cfg.encoder.pretrained_encoder`` (image encoder) if set;
        checkpoints pass False since their weights replace it."""
        super().__init__()
        self.cfg = cfg
        if cfg.encoder.type == "image":  # Diffusion Policy's ResNet-18 encoder (core/vision.py)
            self.obs_encoder = build_image_encoder(cfg, load_pretrained=load_pretrained)
        else:
            self.obs_encoder = build_encoder(cfg)
        self.model = build_unet(cfg)
        self.train_scheduler = make_train_scheduler(cfg)
        self._tables: dict[tuple, object] = {}
        self.register_buffer("query", regression_query(cfg.horizon, cfg.action_dim), persistent=False)

    # ---------------------------------------------------------------- conditioning
    def encode_obs(self, nobs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalized obs, each (B, n_obs_steps, ...) -> global condition (B, n_obs_steps * F)."""
        n = self.cfg.n_obs_steps
        flat = {}
        bsz = None
        for key in self.cfg.obs_keys:
            x = nobs[key][:, :n]
            bsz = x.shape[0]
            flat[key] = x.reshape(-1, *x.shape[2:])
        feats = self.obs_encoder(flat)
        return feats.reshape(bsz, -1)

    # ---------------------------------------------------------------- training
    def compute_loss(
        self, nobs: dict[str, torch.Tensor], naction: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """MSE denoising loss. nobs: key -> (B, n_obs_steps, ...), naction (B, horizon, A)."""
        gcond = self.encode_obs(nobs)
        bsz = naction.shape[0]
        if self.cfg.objective == "regression":
            return F.mse_loss(self.regress(gcond), naction)
        noise = torch.randn(naction.shape, generator=generator, device=naction.device, dtype=naction.dtype)
        if self.cfg.objective == "flow_matching":
            tau = torch.rand((bsz,), generator=generator, device=naction.device, dtype=naction.dtype)
            t3 = tau[:, None, None]
            x = (1 - t3) * noise + t3 * naction
            pred = self.model(x, tau * self.cfg.num_train_timesteps, gcond)
            return F.mse_loss(pred, naction - noise)
        steps = torch.randint(
            0, self.cfg.num_train_timesteps, (bsz,), generator=generator, device=naction.device
        )
        noisy = self.train_scheduler.add_noise(naction, noise, steps)
        pred = self.model(noisy, steps, gcond)
        target = naction if self.cfg.prediction_type == "sample" else noise
        return F.mse_loss(pred, target)

    def regress(self, gcond: torch.Tensor) -> torch.Tensor:
        """Regression objective: gcond (B, G) -> normalized chunk (B, H, A) in one U-Net pass."""
        x = self.query.to(gcond.dtype).expand(gcond.shape[0], -1, -1)
        return self.model(x, torch.zeros((), device=gcond.device), gcond)

    # ---------------------------------------------------------------- inference
    def _table(self, num_steps: int, device: torch.device, dtype: torch.dtype):
        """Cached per-step constants: (DDIM table or Euler dt, FiLM time part, FiLM global W)."""
        key = (num_steps, device, dtype, self.cfg.objective)
        if key not in self._tables:
            with torch.inference_mode():
                if self.cfg.objective == "regression":  # one pass at step 0
                    steps, table = torch.zeros(1), None
                elif self.cfg.objective == "flow_matching":
                    steps, dt = flow_timesteps(self.cfg, num_steps)
                    table: object = dt
                else:
                    table = DDIMTable.build(self.cfg, num_steps)
                    steps = table.timesteps
                time_part, w_global, _ = self.model.film_tables(steps.to(device))
                self._tables[key] = (table, time_part.to(dtype), w_global.to(dtype))
        return self._tables[key]

    def clear_cache(self) -> None:
        """Drop precomputed tables (call after changing weights)."""
        self._tables.clear()

    def sample(
        self,
        gcond: torch.Tensor,
        noise: torch.Tensor,
        num_steps: int,
        prefix: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Denoise ``noise`` (B, H, A) given gcond (B, G) -> normalized actions (B, H, A).

        ``prefix`` (B, d, A) (normalized) hard-inpaints the first d rows: at every step they are
        replaced by the prefix brought to the current noise level (with the same initial noise),
        and by the prefix itself at the end. ``objective: regression``: one pass on the fixed
        query (``noise`` only gives the shape; ``num_steps`` is ignored), clipped to [-1, 1] with
        ``clip_sample``, the prefix rows overwritten.
        """
        regression = self.cfg.objective == "regression"
        table, time_part, w_global = self._table(1 if regression else num_steps, gcond.device, gcond.dtype)
        film_all = time_part[:, None, :] + (F.mish(gcond) @ w_global)[None]  # (K, B, F)
        unet = self.model
        if regression:
            query = self.query.to(noise.dtype).expand(noise.shape[0], -1, -1)
            x = unet.forward_film(query, unet.split_film(film_all[0]))
            if self.cfg.clip_sample:
                x = x.clamp(-1.0, 1.0)
            if prefix is not None:
                x = x.clone()
                x[:, : prefix.shape[1]] = prefix
            return x
        x = noise
        d = 0 if prefix is None else prefix.shape[1]
        flow = self.cfg.objective == "flow_matching"
        for k in range(film_all.shape[0]):
            if d:
                x = x.clone()
                if flow:
                    tau = k * table
                    x[:, :d] = (1 - tau) * noise[:, :d] + tau * prefix
                else:
                    x[:, :d] = table.sqrt_ab[k] * prefix + table.sqrt_1m_ab[k] * noise[:, :d]
            m = unet.forward_film(x, unet.split_film(film_all[k]))
            x = x + table * m if flow else table.step(k, x, m)
        if d:
            x = x.clone()
            x[:, :d] = prefix
        return x
