"""Conv1d / ConvTranspose1d as explicit GEMMs (im2col + addmm, or oneDNN's prepacked linear).

At batch 1 PyTorch sends the U-Net's Conv1d shapes to a slow generic kernel; these functions run
them as one GEMM each, with the weight laid out once by :func:`prepare_fast_convs`.
"""

from __future__ import annotations

import functools
import logging

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)


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
