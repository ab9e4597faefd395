"""Denoising objectives: DDPM training / DDIM sampling (diffusers) and conditional flow matching.

Diffusion: ``diffusers`` DDPMScheduler adds noise during training; sampling follows DDIMScheduler
(eta = 0). Because the DDIM update is linear in (x_t, model output, clip(x0)), its coefficients
for a fixed number of inference steps are precomputed once (:class:`DDIMTable`) and the loop does
three fused multiply-adds per step instead of calling ``scheduler.step``. A test checks the table
against ``DDIMScheduler.step``.

Flow matching (pi0-style, linear path): ``x_tau = (1 - tau) * noise + tau * action`` with
``tau`` in [0, 1]; the network predicts the velocity ``action - noise``; sampling integrates
``dx/dtau = v`` with K Euler steps from tau = 0 (noise) to 1. The network sees
``tau * num_train_timesteps`` as its (fractional) step so the same step embedding works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, DDPMScheduler

from dp_policy.core.config import PolicyConfig


def _scheduler_kwargs(cfg: PolicyConfig) -> dict:
    return {
        "num_train_timesteps": cfg.num_train_timesteps,
        "beta_start": cfg.beta_start,
        "beta_end": cfg.beta_end,
        "beta_schedule": cfg.beta_schedule,
        "clip_sample": cfg.clip_sample,
        "prediction_type": cfg.prediction_type,
    }


def make_train_scheduler(cfg: PolicyConfig) -> DDPMScheduler:
    """DDPM scheduler used to noise actions in training."""
    return DDPMScheduler(**_scheduler_kwargs(cfg))


def make_inference_scheduler(cfg: PolicyConfig) -> DDIMScheduler:
    """DDIM scheduler (DP3 settings: set_alpha_to_one, steps_offset 0)."""
    return DDIMScheduler(**_scheduler_kwargs(cfg), set_alpha_to_one=True, steps_offset=0)


@dataclass
class DDIMTable:
    """Precomputed DDIM (eta = 0) update for a fixed step list.

    With ``m`` the model output at step k: ``x0 = cx[k] * x + cm[k] * m`` (``cx = 0, cm = 1`` for
    ``sample`` prediction), optionally clipped to [-1, 1]; then
    ``x_prev = a0[k] * clip(x0) + ax[k] * x + am[k] * m``. ``sqrt_ab`` / ``sqrt_1m_ab`` give
    q(x_t | x0) at each step (used to noise an inpainted prefix).
    """

    timesteps: torch.Tensor  # (K,) long
    cx: list[float]
    cm: list[float]
    a0: list[float]
    ax: list[float]
    am: list[float]
    sqrt_ab: list[float]
    sqrt_1m_ab: list[float]
    clip: bool

    @classmethod
    def build(cls, cfg: PolicyConfig, num_inference_steps: int) -> DDIMTable:
        """Coefficients matching ``DDIMScheduler.step`` for ``num_inference_steps``."""
        sched = make_inference_scheduler(cfg)
        sched.set_timesteps(num_inference_steps)
        ac = sched.alphas_cumprod.to(torch.float64)
        final = float(sched.final_alpha_cumprod)
        ratio = cfg.num_train_timesteps // num_inference_steps
        t_list = [int(t) for t in sched.timesteps]
        cx, cm, a0, ax, am, sab, s1m = [], [], [], [], [], [], []
        for t in t_list:
            ab = float(ac[t])
            prev = t - ratio
            ab_prev = float(ac[prev]) if prev >= 0 else final
            sa, sb = ab**0.5, (1 - ab) ** 0.5
            d = (1 - ab_prev) ** 0.5  # direction coefficient (eta = 0)
            if cfg.prediction_type == "epsilon":
                # x0 = (x - sb m) / sa ; eps = m
                cx.append(1 / sa), cm.append(-sb / sa)
                a0.append(ab_prev**0.5), ax.append(0.0), am.append(d)
            else:
                # x0 = m ; eps = (x - sa m) / sb (from the unclipped x0, as diffusers)
                cx.append(0.0), cm.append(1.0)
                a0.append(ab_prev**0.5), ax.append(d / sb), am.append(-d * sa / sb)
            sab.append(sa), s1m.append(sb)
        return cls(
            timesteps=torch.tensor(t_list, dtype=torch.long),
            cx=cx, cm=cm, a0=a0, ax=ax, am=am, sqrt_ab=sab, sqrt_1m_ab=s1m,
            clip=cfg.clip_sample,
        )  # fmt: skip

    def step(self, k: int, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """x_t, model output -> x_{t_prev}."""
        x0 = m if self.cx[k] == 0.0 and self.cm[k] == 1.0 else self.cx[k] * x + self.cm[k] * m
        if self.clip:
            x0 = x0.clamp(-1.0, 1.0)
        out = self.a0[k] * x0
        if self.ax[k] != 0.0:
            out = out + self.ax[k] * x
        return out + self.am[k] * m


def flow_timesteps(cfg: PolicyConfig, num_steps: int) -> tuple[torch.Tensor, float]:
    """Euler grid: network step inputs (K,) (= tau * num_train_timesteps) and the step size."""
    taus = torch.arange(num_steps, dtype=torch.float32) / num_steps
    return taus * cfg.num_train_timesteps, 1.0 / num_steps
