"""Optimizer-side training state: EMA of the weights, the LR schedule, and resumable run state.

Resume state is written without pickles: tensors in safetensors, counters and RNG state in JSON.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from dp_policy.core.train_config import TrainError

# A run's log lines keep one name, the one dp_train prints ("dp_policy.core.training: ...").
logger = logging.getLogger("dp_policy.core.training")


class EMAModel:
    """Diffusion Policy's EMA with warm-up: decay = 1 - (1 + step / inv_gamma) ** -power."""

    def __init__(self, model: nn.Module, update_after_step=0, inv_gamma=1.0, power=0.75, min_value=0.0,
                 max_value=0.9999) -> None:  # fmt: skip
        self.averaged_model = model
        self.averaged_model.eval().requires_grad_(False)
        self.update_after_step = update_after_step
        self.inv_gamma, self.power = inv_gamma, power
        self.min_value, self.max_value = min_value, max_value
        self.optimization_step = 0

    def get_decay(self, step: int) -> float:
        """Decay for an optimization step."""
        step = max(0, step - self.update_after_step - 1)
        if step <= 0:
            return 0.0
        value = 1 - (1 + step / self.inv_gamma) ** -self.power
        return max(self.min_value, min(value, self.max_value))

    @torch.no_grad()
    def step(self, new_model: nn.Module) -> None:
        """Blend the new weights into the average."""
        decay = self.get_decay(self.optimization_step)
        for p_ema, p in zip(self.averaged_model.parameters(), new_model.parameters(), strict=True):
            p_ema.mul_(decay).add_(p.detach(), alpha=1 - decay)
        for b_ema, b in zip(self.averaged_model.buffers(), new_model.buffers(), strict=True):
            b_ema.copy_(b)
        self.optimization_step += 1


class CosineWithWarmup:
    """LR factor: linear warm-up to the base lr, then cosine decay to 0 at ``total`` steps.

    ``total`` (the schedule horizon) may be set after construction -- the wall-clock budget planner
    of :func:`dp_policy.core.training.train` does once it has measured the step time, and again
    whenever the step time changes (:meth:`retarget`) -- and is saved in the train state (with the
    anchor) so that a resumed run continues the same schedule.

    The cosine's phase (0 after the warm-up, 1 at the end) runs linearly from ``anchor_progress`` at
    ``anchor_step`` to 1 at ``total``; :meth:`retarget` moves the anchor to the current step so that a
    new horizon bends the curve there without a jump in the LR.
    """

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total = int(warmup), int(total)
        self.anchor_step, self.anchor_progress = self.warmup, 0.0

    def progress(self, step: int) -> float:
        """The cosine's phase in [0, 1] at ``step`` (0 during the warm-up)."""
        if step <= self.anchor_step:
            return self.anchor_progress if step >= self.warmup else 0.0
        span = max(1, self.total - self.anchor_step)
        return min(
            1.0, self.anchor_progress + (1.0 - self.anchor_progress) * (step - self.anchor_step) / span
        )

    def retarget(self, step: int, total: int) -> None:
        """End the cosine at ``total`` instead, continuing from its value at ``step``."""
        if step > self.warmup:
            self.anchor_progress, self.anchor_step = self.progress(step), int(step)
        self.total = int(total)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return float(step) / float(max(1, self.warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * self.progress(step))))


def cosine_with_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int):
    """LambdaLR over :class:`CosineWithWarmup`; ``sched.lr_lambdas[0].total`` is the horizon."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, CosineWithWarmup(warmup, total))


def save_train_state(path: Path, model, ema: EMAModel | None, opt, sched, step: int, epoch: int,
                      rng: np.random.Generator, extra: dict | None = None) -> None:  # fmt: skip
    """Resume state without pickles: tensors in safetensors, counters (and ``extra``) in JSON.

    Written to a temporary folder first and swapped in, so a stop during the save never leaves a
    half-written state.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update(
            {f"ema.{k}": v.detach().contiguous().cpu() for k, v in ema.averaged_model.state_dict().items()}
        )
    opt_state = opt.state_dict()
    for pid, st in opt_state["state"].items():
        for name, val in st.items():
            t = val if torch.is_tensor(val) else torch.tensor(val)
            tensors[f"opt.{pid}.{name}"] = t.detach().contiguous().cpu().reshape(t.shape)
    tensors["torch_rng"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "state.safetensors"))
    meta = {
        "step": step,
        "epoch": epoch,
        "ema_step": ema.optimization_step if ema is not None else 0,
        "sched": sched.state_dict(),
        "np_rng": rng.bit_generator.state,
        "horizon": schedule_horizon(sched),
        "schedule_anchor": [sched.lr_lambdas[0].anchor_step, sched.lr_lambdas[0].anchor_progress],
        **(extra or {}),
    }
    meta["sched"].pop("lr_lambdas", None)
    (tmp / "state.json").write_text(json.dumps(meta, default=float))
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def schedule_horizon(sched) -> int:
    """The step at which the cosine schedule reaches 0."""
    return int(sched.lr_lambdas[0].total)


def read_train_state_meta(path: Path) -> dict:
    """The JSON part of a saved train state (counters, schedule horizon, run bookkeeping)."""
    return json.loads((Path(path) / "state.json").read_text())


def load_train_state(path: Path, model, ema: EMAModel | None, opt, sched, rng: np.random.Generator):
    """Restore what :func:`save_train_state` wrote into the live objects; returns (step, epoch).

    The schedule horizon is restored too (``sched.lr_lambdas[0].total``), so the run continues the
    saved schedule; the caller may change it afterwards (``reschedule``).
    """
    tensors = load_file(str(path / "state.safetensors"))
    meta = json.loads((path / "state.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.averaged_model.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        ema.optimization_step = int(meta["ema_step"])
    opt_sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    opt_sd["state"] = state
    opt.load_state_dict(opt_sd)
    sched_state = dict(meta["sched"])
    sched_state["lr_lambdas"] = [None] * len(opt.param_groups)  # the lambda is rebuilt, not stored
    sched.load_state_dict(sched_state)
    if "horizon" in meta:
        sched.lr_lambdas[0].total = int(meta["horizon"])
    if "schedule_anchor" in meta:
        sched.lr_lambdas[0].anchor_step = int(meta["schedule_anchor"][0])
        sched.lr_lambdas[0].anchor_progress = float(meta["schedule_anchor"][1])
    torch.set_rng_state(tensors["torch_rng"])
    rng.bit_generator.state = meta["np_rng"]
    return int(meta["step"]), int(meta["epoch"])


@dataclass
class Resumed:
    """Where a resumed run continues: counters, the epoch's shuffling RNG, best val, training time."""

    step: int
    epoch: int
    batch_in_epoch: int
    epoch_rng: dict
    best_val: float
    wall_s: float
    planned: bool  # the schedule horizon is final (False: the budget planner measures it again)


def resume_train_state(state_dir: Path, policy_config: dict, model, ema: EMAModel | None, opt, sched,
                       rng: np.random.Generator, *, reschedule: bool, lr: float, budget_s: float,
                       cap: int) -> Resumed:  # fmt: skip
    """Resume the run in ``state_dir`` (``<run>/train_state``) into the live objects.

    The saved run must have the same architecture (``policy_config`` but inference-time settings),
    else :class:`TrainError`. The saved LR schedule is kept unless ``reschedule`` (horizon ``cap``, or
    re-planned when there is a budget; warned as a warm restart).
    """
    out_dir = state_dir.parent
    meta = read_train_state_meta(state_dir)
    saved_cfg = meta.get("policy_config")
    if saved_cfg is not None and _arch(saved_cfg) != _arch(policy_config):
        diff = [k for k in _arch(saved_cfg) if _arch(saved_cfg)[k] != _arch(policy_config).get(k)]
        raise TrainError(
            f"{out_dir} holds a run with a different policy config ({', '.join(diff)} differ: "
            + "; ".join(f"{k} {saved_cfg.get(k)} there vs {policy_config.get(k)} now" for k in diff[:3])
            + ")",
            "use a new output_dir, restore the run's settings (its train_config.json), "
            "or pass resume=false to start over in this folder",
        )
    try:
        step, epoch = load_train_state(state_dir, model, ema, opt, sched, rng)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise TrainError(
            f"the train state in {state_dir} does not fit this config ({str(exc).splitlines()[0]})",
            "use a new output_dir, restore the run's settings, or pass resume=false to start over",
        ) from exc
    wall_s = float(meta.get("train_wall_s", 0.0))
    if "train_wall_s" not in meta:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            wall_s = float(
                json.loads((out_dir / "latest" / "config.json").read_text())["extra"]["train_wall_s"]
            )
    planned = bool(meta.get("horizon_planned", True)) or budget_s <= 0
    saved_h = schedule_horizon(sched)
    if reschedule:
        new_h = cap
        if budget_s > 0:
            new_h, planned = cap, False  # measured again in this invocation
        lam = sched.lr_lambdas[0]
        lam.total, lam.anchor_step, lam.anchor_progress = new_h, lam.warmup, 0.0
        logger.warning(
            "reschedule=true: the LR schedule horizon changes from step %d to %s (lr jumps from %.2e to "
            "%.2e at step %d: a warm restart)", saved_h, new_h if planned else f"<= {new_h} (re-planned)",
            sched.get_last_lr()[0], lr * sched.lr_lambdas[0](step), step,
        )  # fmt: skip
    elif saved_h != cap and planned and budget_s <= 0:
        logger.info(
            "resume keeps the saved LR schedule (horizon step %d; this config alone would give %d); "
            "pass reschedule=true to change it", saved_h, cap,
        )  # fmt: skip
    logger.info("resumed from %s at epoch %d step %d (lr %.2e)", out_dir, epoch, step, sched.get_last_lr()[0])
    epoch_rng = meta.get("epoch_rng", rng.bit_generator.state)
    return Resumed(step, epoch, int(meta.get("batch_in_epoch", 0)), epoch_rng,
                   float(meta.get("best_val", math.inf)), wall_s, planned)  # fmt: skip


def _arch(policy_dict: dict) -> dict:
    """The PolicyConfig entries a resumed run must share (everything but inference-time settings)."""
    return {k: v for k, v in policy_dict.items() if k not in ("num_inference_steps",)}
