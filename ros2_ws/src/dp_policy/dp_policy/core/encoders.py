"""Observation encoders of DP3: the PointNet point-cloud encoder and the state-only encoder.

The layer structure and parameter names follow the published DP3 code (``obs_encoder.*`` with the
same sub-module names), so parameter counts match it exactly. The image encoder is in
:mod:`dp_policy.core.vision`.
"""

from __future__ import annotations

import torch
from torch import nn

from dp_policy.core.config import EncoderConfig, PolicyConfig


def _point_mlp(in_ch: int, dims: list[int], use_layernorm: bool, last_act: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    prev = in_ch
    for i, d in enumerate(dims):
        layers.append(nn.Linear(prev, d))
        is_last = i == len(dims) - 1
        if not is_last or last_act:
            layers.append(nn.LayerNorm(d) if use_layernorm else nn.Identity())
            layers.append(nn.ReLU())
        prev = d
    return nn.Sequential(*layers)


class PointNetExtractor(nn.Module):
    """DP3 PointNet: per-point MLP, max-pool over points, projection (+ LayerNorm).

    xyz: 3->64->128->256 (Linear+LayerNorm+ReLU each); xyz+rgb: 6->64->128->256->512 (as DP3's
    ``PointNetEncoderXYZRGB``, whose last layer has no norm/activation).
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        if cfg.use_rgb:
            self.mlp = _point_mlp(6, [64, 128, 256, 512], cfg.use_layernorm, last_act=False)
            last = 512
        else:
            self.mlp = _point_mlp(3, [64, 128, 256], cfg.use_layernorm, last_act=True)
            last = 256
        if cfg.final_norm == "layernorm":
            self.final_projection: nn.Module = nn.Sequential(
                nn.Linear(last, cfg.out_dim), nn.LayerNorm(cfg.out_dim)
            )
        else:
            self.final_projection = nn.Linear(last, cfg.out_dim)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points (M, N, C) -> (M, out_dim).

        With autograd on (training), only the points that win the max-pool in some channel
        ("critical points") receive gradient, and the MLP is per-point; so the MLP runs once without
        autograd over all points to find them, then again with autograd over those points only.
        The features and the gradients are the same as differentiating the full forward (up to float
        rounding), at a fraction of its memory traffic (the backward of max-pool, ReLU and LayerNorm
        over every point dominated a training step).
        """
        if not torch.is_grad_enabled() or points.requires_grad:
            return self.final_projection(self.mlp(points).amax(dim=1))
        with torch.no_grad():
            # (M, D) index of the max point per channel; in blocks of ~1k points so that the
            # activations stay in cache (2x faster here than one pass over the batch).
            per = max(1, 1024 // max(1, points.shape[1]))
            winners = torch.cat([self._winners(c) for c in points.split(per)])
        sel = critical_point_indices(winners)  # (M, K), K <= min(N, D)
        sub = torch.gather(points, 1, sel[..., None].expand(-1, -1, points.shape[-1]))
        # Position of each channel's winner inside the subset; gathering it is the max-pool (its
        # backward is a scatter, much cheaper than amax's compare-and-divide over every value).
        where = torch.zeros(points.shape[:2], dtype=torch.long, device=points.device)
        where.scatter_(1, sel, torch.arange(sel.shape[1], device=points.device).expand_as(sel))
        pos = where.gather(1, winners)  # (M, D)
        feat = self.mlp(sub).gather(1, pos[:, None, :]).squeeze(1)
        return self.final_projection(feat)

    def _winners(self, points: torch.Tensor) -> torch.Tensor:
        """(M, N, C) -> (M, D) per-channel argmax point of the MLP output (no autograd).

        The last ReLU is left out: it does not move a positive maximum, and where a channel's
        maximum is <= 0 the ReLU's gradient is zero whichever point is picked.
        """
        mlp = self.mlp[:-1] if isinstance(self.mlp[-1], nn.ReLU) else self.mlp
        return mlp(points).max(dim=1).indices


def critical_point_indices(winners: torch.Tensor) -> torch.Tensor:
    """(M, D) argmax indices -> (M, K) the distinct ones per row, K = the largest distinct count.

    Rows with fewer distinct indices are padded with repeats of their own members (a repeat changes
    neither the max nor, after amax's even split among equal values, the summed gradient).
    """
    s, _ = winners.sort(dim=1)
    first = torch.ones_like(s, dtype=torch.bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    k = int(first.sum(dim=1).max())
    order = torch.argsort((~first).to(torch.uint8), dim=1, stable=True)
    return s.gather(1, order[:, :k])


def _state_mlp(state_dim: int, dims: list[int]) -> nn.Sequential:
    # DP3 create_mlp: Linear+ReLU for all but the last size, then a plain Linear.
    layers: list[nn.Module] = []
    prev = state_dim
    for d in dims[:-1]:
        layers += [nn.Linear(prev, d), nn.ReLU()]
        prev = d
    layers.append(nn.Linear(prev, dims[-1]))
    return nn.Sequential(*layers)


class DP3Encoder(nn.Module):
    """DP3 observation encoder: PointNet features of the cloud concatenated with a state MLP."""

    def __init__(self, cfg: EncoderConfig, state_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.extractor = PointNetExtractor(cfg)
        self.state_mlp = _state_mlp(state_dim, cfg.state_mlp_dims)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """point_cloud (M, N, C), agent_pos (M, D) -> (M, feature_dim)."""
        points = obs["point_cloud"][..., : self.cfg.point_channels]
        return torch.cat([self.extractor(points), self.state_mlp(obs["agent_pos"])], dim=-1)


class LowDimEncoder(nn.Module):
    """State-only encoder (low-dimensional tasks): the DP3 state MLP."""

    def __init__(self, cfg: EncoderConfig, state_dim: int) -> None:
        super().__init__()
        self.state_mlp = _state_mlp(state_dim, cfg.state_mlp_dims)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """agent_pos (M, D) -> (M, feature_dim)."""
        return self.state_mlp(obs["agent_pos"])


def build_encoder(cfg: PolicyConfig) -> nn.Module:
    """Encoder for ``cfg.encoder.type``."""
    if cfg.encoder.type == "dp3_pointnet":
        return DP3Encoder(cfg.encoder, cfg.state_dim)
    if cfg.encoder.type == "lowdim":
        return LowDimEncoder(cfg.encoder, cfg.state_dim)
    raise ValueError(f"unsupported encoder type. Got {cfg.encoder.type!r}")
