"""Networks of DP3 / Diffusion Policy: observation encoders and the conditional 1-D U-Net.

The layer structure and parameter names follow the published DP3 code (``obs_encoder.*`` /
``model.*`` with the same sub-module names), so parameter counts match it exactly. The forward
passes are our own: the FiLM projections of all residual blocks can be evaluated in one matmul and
their timestep part precomputed (see :meth:`ConditionalUnet1D.film_tables`), which removes most
small ops from the denoising loop.
"""

from __future__ import annotations

import functools
import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from dp_policy.core.config import EncoderConfig, PolicyConfig

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- encoders


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


# ----------------------------------------------------------------------------- U-Net


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


def fast_conv1d(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """Conv1d on (B, C, T) as im2col + one GEMM (training and inference).

    At batch 1 (and in backward) PyTorch sends these Conv1d shapes to its slow generic
    convolution kernel (``_slow_conv2d_forward``); an explicit unfold + ``addmm`` against the
    weight viewed as (k * C, O) uses MKL's GEMM instead. After :func:`prepare_fast_convs` the
    inference path uses a contiguous copy of that layout. Returns (B, O, T') (a transposed view).
    """
    bsz, c, _ = x.shape
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    if k == 1:
        cols = x.transpose(1, 2).reshape(-1, c)
        t_out = x.shape[2]
    else:
        xp = F.pad(x, (p, p)) if p else x
        u = xp.unfold(2, k, s)  # (B, C, T', k)
        t_out = u.shape[2]
        cols = u.permute(0, 2, 1, 3).reshape(bsz * t_out, c * k)
    y = conv_gemm(conv, cols, conv.bias)  # (B*T', O)
    return y.view(bsz, t_out, -1).transpose(1, 2)


def fast_conv_transpose1d(conv: nn.ConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """ConvTranspose1d(k=4, stride=2, padding=1) on (B, C, T) as one GEMM + overlap-add.

    ``out[2m] = z[m, 1] + z[m-1, 3]`` and ``out[2m+1] = z[m, 2] + z[m+1, 0]`` with
    ``z[m, j] = W[:, :, j]^T x[m]``. Returns (B, O, 2T) (a transposed view).
    """
    bsz, _, t = x.shape
    o = conv.out_channels
    z = conv_gemm(conv, x.transpose(1, 2).reshape(bsz * t, -1), None).view(bsz, t, o, 4)
    even = z[..., 1] + F.pad(z[..., 3], (0, 0, 1, 0))[:, :t]
    odd = z[..., 2] + F.pad(z[..., 0], (0, 0, 0, 1))[:, 1:]
    out = torch.stack([even, odd], dim=2).view(bsz, 2 * t, o) + conv.bias
    return out.transpose(1, 2)


def conv_gemm_weight(conv: nn.Conv1d | nn.ConvTranspose1d) -> torch.Tensor:
    """The conv's weight as the right-hand GEMM operand (a view, differentiable).

    Conv1d (O, C, k) -> (C*k, O), matching unfold's (C, k) order; ConvTranspose1d (C, O, 4) ->
    (C, O*4), so that ``z = x @ w``.
    """
    if isinstance(conv, nn.ConvTranspose1d):
        return conv.weight.reshape(conv.in_channels, -1)
    return conv.weight.reshape(conv.out_channels, -1).t()


def conv_gemm(
    conv: nn.Conv1d | nn.ConvTranspose1d, rows: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``rows @ conv_gemm_weight(conv) (+ bias)`` with the layout :func:`prepare_fast_convs` chose.

    Inference uses the prepacked oneDNN weight (CPU) or the contiguous copy; with autograd on, the
    live weight (gradients flow to ``conv.weight``).
    """
    if not torch.is_grad_enabled():
        packed = getattr(conv, "_packed_w", None)
        if packed is not None and rows.device.type == "cpu":
            return packed_linear(rows, packed.weight, bias)
        w = getattr(conv, "_fast_w", None)
    else:
        w = None
    if w is None:
        w = conv_gemm_weight(conv)
    return rows @ w if bias is None else torch.addmm(bias, rows, w)


@functools.lru_cache(maxsize=1)
def onednn_prepack_available() -> bool:
    """True when this torch has oneDNN's prepacked fp32 linear and it computes what addmm does.

    The ops are internal to torch (its inductor uses them), so they are checked once on a small
    GEMM instead of trusted: a build without them, with another signature or another result falls
    back to the plain GEMM path.
    """
    mkldnn = getattr(torch.ops, "mkldnn", None)
    if not (
        torch.backends.mkldnn.is_available()
        and hasattr(mkldnn, "_reorder_linear_weight")
        and hasattr(mkldnn, "_linear_pointwise")
    ):
        return False
    try:
        with torch.inference_mode():
            gen = torch.Generator().manual_seed(0)
            w, b, x = (torch.randn(s, generator=gen) for s in ((24, 40), (24,), (5, 40)))
            got = torch.ops.mkldnn._linear_pointwise(x, torch.ops.mkldnn._reorder_linear_weight(w, 5), b,
                                                     "none", [], "")  # fmt: skip
            ok = bool(torch.allclose(got, torch.addmm(b, x, w.t()), atol=1e-4, rtol=1e-5))
    except (RuntimeError, TypeError, ValueError) as exc:  # missing kernel / other signature
        logger.info("oneDNN prepacked linear unavailable (%s): plain GEMMs", exc)
        return False
    if not ok:
        logger.warning("oneDNN prepacked linear disagrees with addmm on this build: plain GEMMs")
    return ok


class PackedWeight:
    """A oneDNN-prepacked weight held by a conv (``_packed_w``); not part of the state_dict.

    oneDNN tensors have no storage, so ``copy.deepcopy`` (e.g. an EMA copy of a prepared model)
    yields None instead: the copy uses the plain GEMM path until it is prepared itself.
    """

    __slots__ = ("weight",)

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight

    def __deepcopy__(self, memo: dict) -> None:
        return None


def prepack_linear_weight(w_oi: torch.Tensor, rows_hint: int = 16) -> torch.Tensor:
    """oneDNN-reordered copy of a linear weight (O, I) fp32 on the CPU, for :func:`packed_linear`."""
    return torch.ops.mkldnn._reorder_linear_weight(w_oi.detach().contiguous(), rows_hint)


def packed_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x (M, I) @ W^T + bias`` against a :func:`prepack_linear_weight` weight -> (M, O), fp32."""
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), packed, bias, "none", [], "")


def prepare_fast_convs(module: nn.Module, enable: bool = True, prepack: bool = True) -> None:
    """Lay out every Conv1d / ConvTranspose1d weight for the GEMM path (inference only).

    With ``prepack`` (fp32 weights on the CPU, oneDNN present) the weights are also reordered once
    into oneDNN's blocked layout: at batch 1 every conv is a GEMM with only 4-16 rows (the horizon),
    where MKL's plain sgemm reads the weights at ~11 GB/s on this 2-core CPU and oneDNN's prepacked
    kernel at ~35-50 GB/s (the memory bandwidth; ``bench/bench_policy.py`` shows the effect on dp3).
    Results equal the plain GEMM's to fp32 rounding. Otherwise (CUDA, other dtypes, torch.compile)
    a contiguous (k*C, O) copy feeds ``addmm``. Call again after the weights change;
    ``enable=False`` restores the plain PyTorch convs.
    """
    for m in module.modules():
        if not isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
            continue
        m._fast_w = None
        m._packed_w = None
        if not enable:
            continue
        w_io = conv_gemm_weight(m).detach()
        if (
            prepack
            and w_io.device.type == "cpu"
            and w_io.dtype == torch.float32
            and onednn_prepack_available()
        ):
            try:
                m._packed_w = PackedWeight(prepack_linear_weight(w_io.t()))
                continue
            except RuntimeError as exc:  # a shape this oneDNN build refuses: plain GEMM for it
                logger.info(
                    "oneDNN prepack of a %s weight failed (%s): plain GEMM", tuple(m.weight.shape), exc
                )
        m._fast_w = w_io.contiguous()


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
