"""Diffusion Policy's conditional 1-D U-Net (DP3 and Simple DP3 variants).

The layer structure and parameter names follow the published DP3 code (``model.*`` with the same
sub-module names), so parameter counts match it exactly. The forward passes are our own: the FiLM
projections of all residual blocks can be evaluated in one matmul and their timestep part
precomputed (see :meth:`ConditionalUnet1D.film_tables`), which removes most small ops from the
denoising loop; every conv runs as a GEMM (:mod:`dp_policy.core.fast_conv`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dp_policy.core.config import PolicyConfig
from dp_policy.core.fast_conv import fast_conv1d, fast_conv_transpose1d


class SinusoidalPosEmb(nn.Module):
    """Transformer sinusoidal embedding of a (possibly fractional) diffusion step."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t (B,) -> (B, dim)."""
        half = self.dim // 2
        scale = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * -scale)
        emb = t.to(torch.float32)[:, None] * freqs[None, :]
        return torch.cat([emb.sin(), emb.cos()], dim=-1)


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, n_groups: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(in_ch, out_ch, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_ch),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor, scale_bias: tuple[torch.Tensor, torch.Tensor] | None = None):
        """x (B, C, T); optional FiLM (scale, bias) each (B, out, 1) applied after Mish."""
        conv, gn = self.block[0], self.block[1]
        y = fast_conv1d(conv, x)
        y = F.mish(F.group_norm(y, gn.num_groups, gn.weight, gn.bias, gn.eps))
        if scale_bias is not None:
            y = torch.addcmul(scale_bias[1], y, scale_bias[0])
        return y


class ConditionalResidualBlock1D(nn.Module):
    """Two Conv1dBlocks with FiLM (per-channel scale and bias from the condition) in between."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.out_channels = out_ch
        self.blocks = nn.ModuleList(
            [
                Conv1dBlock(in_ch, out_ch, kernel_size, n_groups),
                Conv1dBlock(out_ch, out_ch, kernel_size, n_groups),
            ]
        )
        # Sequential(Mish, Linear) keeps the published parameter names (cond_encoder.1.*).
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, out_ch * 2))
        self.residual_conv = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def film(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cond (B, cond_dim) -> (scale, bias) each (B, out, 1)."""
        emb = self.cond_encoder(cond).view(cond.shape[0], 2, self.out_channels, 1)
        return emb[:, 0], emb[:, 1]

    def forward(self, x: torch.Tensor, scale_bias: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """x (B, in, T) -> (B, out, T)."""
        out = self.blocks[0](x, scale_bias)
        out = self.blocks[1](out)
        if isinstance(self.residual_conv, nn.Conv1d):
            res = fast_conv1d(self.residual_conv, x)
        else:
            res = x
        return out + res


class Downsample1d(nn.Module):
    """Strided Conv1d(3, stride 2)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_conv1d(self.conv, x)


class Upsample1d(nn.Module):
    """ConvTranspose1d(4, stride 2)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(dim, dim, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_conv_transpose1d(self.conv, x)


class ConditionalUnet1D(nn.Module):
    """Diffusion Policy's temporal U-Net with FiLM conditioning on (step embedding, global cond).

    ``simple=False`` is DP3's ``ConditionalUnet1D`` (two residual blocks per level, two mid blocks);
    ``simple=True`` is Simple DP3's (one block per level, one mid block).
    """

    def __init__(
        self,
        input_dim: int,
        global_cond_dim: int,
        diffusion_step_embed_dim: int = 128,
        down_dims: tuple[int, ...] | list[int] = (512, 1024, 2048),
        kernel_size: int = 5,
        n_groups: int = 8,
        simple: bool = False,
    ) -> None:
        super().__init__()
        self.simple = simple
        self.dsed = dsed = diffusion_step_embed_dim
        all_dims = [input_dim, *down_dims]
        start_dim = down_dims[0]
        self.diffusion_step_encoder = nn.Sequential(
            SinusoidalPosEmb(dsed), nn.Linear(dsed, dsed * 4), nn.Mish(), nn.Linear(dsed * 4, dsed)
        )
        cond_dim = dsed + global_cond_dim
        in_out = list(zip(all_dims[:-1], all_dims[1:], strict=True))

        def block(i: int, o: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(i, o, cond_dim, kernel_size, n_groups)

        mid = all_dims[-1]
        self.mid_modules = nn.ModuleList([block(mid, mid)] if simple else [block(mid, mid), block(mid, mid)])
        self.down_modules = nn.ModuleList()
        for ind, (d_in, d_out) in enumerate(in_out):
            is_last = ind >= len(in_out) - 1
            mods: list[nn.Module] = [block(d_in, d_out)]
            if not simple:
                mods.append(block(d_out, d_out))
            mods.append(Downsample1d(d_out) if not is_last else nn.Identity())
            self.down_modules.append(nn.ModuleList(mods))
        self.up_modules = nn.ModuleList()
        for d_in, d_out in reversed(in_out[1:]):
            # The published code's `is_last` is never true here: every up level upsamples.
            mods = [block(d_out * 2, d_in)]
            if not simple:
                mods.append(block(d_in, d_in))
            mods.append(Upsample1d(d_in))
            self.up_modules.append(nn.ModuleList(mods))
        self.final_conv = nn.Sequential(
            Conv1dBlock(start_dim, start_dim, kernel_size, n_groups), nn.Conv1d(start_dim, input_dim, 1)
        )

    # -- conditioning
    def res_blocks(self) -> list[ConditionalResidualBlock1D]:
        """Residual blocks in execution order."""
        out: list[ConditionalResidualBlock1D] = []
        for mods in self.down_modules:
            out += [m for m in mods if isinstance(m, ConditionalResidualBlock1D)]
        out += list(self.mid_modules)
        for mods in self.up_modules:
            out += [m for m in mods if isinstance(m, ConditionalResidualBlock1D)]
        return out

    def film_from_cond(self, timestep: torch.Tensor, global_cond: torch.Tensor) -> list:
        """Per-block FiLM (scale, bias) from timesteps (B,) and global_cond (B, G)."""
        temb = self.diffusion_step_encoder(timestep)
        cond = torch.cat([temb, global_cond], dim=-1)
        return [blk.film(cond) for blk in self.res_blocks()]

    def film_tables(self, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Precompute the observation-independent FiLM part for a fixed list of timesteps.

        Returns (time_part (K, F), w_global (G, F), b) where F = sum of 2*out over blocks;
        the FiLM of step k for condition g is ``time_part[k] + mish(g) @ w_global``.
        """
        blocks = self.res_blocks()
        w = torch.cat([b.cond_encoder[1].weight for b in blocks], dim=0)  # (F, dsed+G)
        bias = torch.cat([b.cond_encoder[1].bias for b in blocks], dim=0)
        temb = F.mish(self.diffusion_step_encoder(timesteps))  # (K, dsed)
        time_part = temb @ w[:, : self.dsed].t() + bias
        w_global = w[:, self.dsed :].t().contiguous()
        return time_part, w_global, bias

    def split_film(self, film: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Split a flat FiLM row block (B, F) into per-block (scale, bias) of (B, out, 1)."""
        out = []
        i = 0
        bsz = film.shape[0]
        for blk in self.res_blocks():
            c = blk.out_channels
            emb = film[:, i : i + 2 * c].view(bsz, 2, c, 1)
            out.append((emb[:, 0], emb[:, 1]))
            i += 2 * c
        return out

    # -- forward
    def forward_film(self, sample: torch.Tensor, films: list) -> torch.Tensor:
        """sample (B, T, input_dim), per-block FiLM -> (B, T, input_dim)."""
        x = sample.transpose(1, 2).contiguous()
        it = iter(films)
        skips = []
        for mods in self.down_modules:
            for m in mods[:-1]:
                x = m(x, next(it))
            skips.append(x)
            x = mods[-1](x)
        for m in self.mid_modules:
            x = m(x, next(it))
        for mods in self.up_modules:
            x = torch.cat((x, skips.pop()), dim=1)
            for m in mods[:-1]:
                x = m(x, next(it))
            x = mods[-1](x)
        x = fast_conv1d(self.final_conv[1], self.final_conv[0](x))
        return x.transpose(1, 2)

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor:
        """sample (B, T, input_dim), timestep (B,) float/int, global_cond (B, G) -> (B, T, input_dim)."""
        if timestep.dim() == 0:
            timestep = timestep[None]
        timestep = timestep.expand(sample.shape[0])
        return self.forward_film(sample, self.film_from_cond(timestep, global_cond))


def build_unet(cfg: PolicyConfig) -> ConditionalUnet1D:
    """U-Net for a PolicyConfig."""
    return ConditionalUnet1D(
        input_dim=cfg.action_dim,
        global_cond_dim=cfg.global_cond_dim,
        diffusion_step_embed_dim=cfg.diffusion_step_embed_dim,
        down_dims=cfg.down_dims,
        kernel_size=cfg.kernel_size,
        n_groups=cfg.n_groups,
        simple=cfg.unet_type == "simple",
    )
