"""Training loop: AdamW + cosine schedule with warm-up, EMA (DP3 defaults), checkpoints, resume.

Used by the ``dp_train`` command (:mod:`dp_policy.train`) and directly by tests. Seeded and
deterministic on CPU for a fixed thread count. Multi-GPU: launch ``dp_train`` with ``torchrun``;
every rank trains on its own slice of each shuffled epoch and gradients are all-reduced
(averaged) after every backward pass, as DistributedDataParallel does (rank 0 validates and writes
checkpoints). ``dp_train`` initializes the process group (nccl on CUDA, gloo on CPU)::

    torchrun --nproc_per_node=4 -m dp_policy.train --config cfg.yaml device=cuda
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dp_policy.core.checkpoint import save_checkpoint
from dp_policy.core.config import PolicyConfig
from dp_policy.core.dataset import SequenceDataset, load_zarr, split_episodes, validate_arrays
from dp_policy.core.model import DiffusionPolicyModel
from dp_policy.core.normalizer import Normalizer
from dp_policy.core.train_data import DeltaActionDataset, fit_normalizer, normalize_data
from dp_policy.core.train_state import EMAModel, cosine_with_warmup, load_train_state, save_train_state

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Training run. ``policy`` holds ``preset`` (dp3 | simple_dp3) plus PolicyConfig overrides."""

    dataset: str = field(default="", metadata={"help": "DP3 zarr directory"})
    output_dir: str = field(default="outputs/dp3", metadata={"help": "run directory"})
    policy: dict[str, Any] = field(default_factory=lambda: {"preset": "simple_dp3"})
    seed: int = 42
    device: str = "cpu"
    num_threads: int = field(default=0, metadata={"help": "torch threads (0 = torch default)"})
    batch_size: int = 128
    num_epochs: int = 100
    max_train_steps: int = field(default=0, metadata={"help": "stop after this many steps (0 = off)"})
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.95, 0.999])
    eps: float = 1e-8
    weight_decay: float = 1e-6
    lr_warmup_steps: int = 500
    val_ratio: float = 0.1
    val_every: int = field(default=1, metadata={"help": "epochs between validation losses"})
    checkpoint_every: int = field(default=10, metadata={"help": "epochs between checkpoints"})
    resume: bool = True
    use_ema: bool = True
    ema_update_after_step: int = 0
    ema_inv_gamma: float = 1.0
    ema_power: float = 0.75
    ema_min_value: float = 0.0
    ema_max_value: float = 0.9999
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.num_epochs <= 0:
            raise ValueError(
                f"batch_size and num_epochs must be > 0. Got {self.batch_size}, {self.num_epochs}"
            )
        if not 0.0 <= self.val_ratio < 1.0:
            raise ValueError(f"val_ratio must be in [0, 1). Got {self.val_ratio}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0. Got {self.lr}")
        if len(self.betas) != 2:
            raise ValueError(f"betas must have 2 values. Got {self.betas}")
        if self.val_every <= 0 or self.checkpoint_every <= 0:
            raise ValueError(
                f"val_every and checkpoint_every must be > 0. Got {self.val_every}, {self.checkpoint_every}"
            )
        if not isinstance(self.policy, dict):
            raise ValueError(f"policy must be a mapping. Got {type(self.policy).__name__}")

    def policy_config(self, **data_overrides: Any) -> PolicyConfig:
        """Build the PolicyConfig (preset + overrides + values taken from the data)."""
        p = dict(self.policy)
        preset = p.pop("preset", "simple_dp3")
        p.update(data_overrides)
        return PolicyConfig.preset(preset, **p)


def _to_torch(obs: dict, action: np.ndarray, device: torch.device):
    return {
        k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in obs.items()
    }, torch.from_numpy(np.ascontiguousarray(action)).to(device)


@torch.no_grad()
def validation_loss(model: DiffusionPolicyModel, ds: SequenceDataset, batch_size: int, seed: int,
                    device: torch.device, max_batches: int = 8) -> float:  # fmt: skip
    """Mean denoising loss on (up to ``max_batches``) validation batches with fixed noise."""
    if len(ds) == 0:
        return float("nan")
    gen = torch.Generator().manual_seed(seed)
    order = np.random.default_rng(seed).permutation(len(ds))
    losses = []
    was_training = model.training
    model.eval()
    for b in range(min(max_batches, math.ceil(len(ds) / batch_size))):
        idx = order[b * batch_size : (b + 1) * batch_size]
        obs, act = _to_torch(*ds.get_batch(idx), device)
        losses.append(float(model.compute_loss(obs, act, generator=gen)))
    model.train(was_training)
    return float(np.mean(losses))


@dataclass
class TrainResult:
    """What a training run produced."""

    config: PolicyConfig
    model: DiffusionPolicyModel
    ema_model: DiffusionPolicyModel
    normalizer: Normalizer
    train_episodes: np.ndarray
    val_episodes: np.ndarray
    history: list[dict[str, float]]
    checkpoint: Path | None = None


def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def train(
    cfg: TrainConfig,
    data: dict | None = None,
    val_episodes: np.ndarray | None = None,
    callback: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a policy on ``data`` (in-memory arrays) or ``cfg.dataset`` (zarr).

    ``val_episodes`` overrides the random validation split. Writes checkpoints under
    ``cfg.output_dir`` unless it is empty. Returns models, normalizer and loss history.
    """
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    rank, world = _dist_info()
    device = torch.device(cfg.device)
    if data is None:
        if not cfg.dataset:
            raise ValueError("TrainConfig.dataset is empty and no in-memory data was given")
        data = load_zarr(cfg.dataset)
    validate_arrays(data)
    n_eps = len(data["episode_ends"])
    if val_episodes is None:
        train_eps, val_eps = split_episodes(n_eps, cfg.val_ratio, cfg.seed)
    else:
        val_eps = np.asarray(val_episodes, dtype=np.int64)
        train_eps = np.setdiff1d(np.arange(n_eps), val_eps)

    overrides: dict[str, Any] = {
        "state_dim": int(data["agent_pos"].shape[-1]),
        "action_dim": int(data["action"].shape[-1]),
    }
    if "point_cloud" in data:
        enc = dict(cfg.policy.get("encoder", {}))
        enc.setdefault("num_points", int(data["point_cloud"].shape[1]))
        overrides["encoder"] = enc
    pcfg = cfg.policy_config(**overrides)
    ds_kwargs = dict(horizon=pcfg.horizon, n_obs_steps=pcfg.n_obs_steps, pad_before=pcfg.n_obs_steps - 1,
                     pad_after=pcfg.n_action_steps - 1, obs_keys=pcfg.obs_keys)  # fmt: skip
    norm = fit_normalizer(data, train_eps, pcfg, ds_kwargs)
    ndata = normalize_data(data, norm, pcfg)
    train_ds = SequenceDataset(ndata, train_eps, **ds_kwargs)
    val_ds = SequenceDataset(ndata, val_eps, **ds_kwargs)
    if pcfg.action_space == "joint_position_delta":
        train_ds = DeltaActionDataset(train_ds, data["action"], data["agent_pos"], norm)
        val_ds = DeltaActionDataset(val_ds, data["action"], data["agent_pos"], norm)
    if len(train_ds) == 0:
        raise ValueError("no training sequences: episodes shorter than the horizon padding allows")

    model = DiffusionPolicyModel(pcfg).to(device)
    ema_model = copy.deepcopy(model) if cfg.use_ema else model
    ema = (
        EMAModel(
            ema_model,
            cfg.ema_update_after_step,
            cfg.ema_inv_gamma,
            cfg.ema_power,
            cfg.ema_min_value,
            cfg.ema_max_value,
        )  # fmt: skip
        if cfg.use_ema
        else None
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                            weight_decay=cfg.weight_decay)  # fmt: skip
    per_rank_batch = max(1, cfg.batch_size // world)
    steps_per_epoch = max(1, len(train_ds) // (per_rank_batch * world))
    total = steps_per_epoch * cfg.num_epochs
    if cfg.max_train_steps > 0:
        total = min(total, cfg.max_train_steps)
    sched = cosine_with_warmup(opt, cfg.lr_warmup_steps, total)
    rng = np.random.default_rng(cfg.seed)

    out_dir = Path(cfg.output_dir) if cfg.output_dir else None
    step, start_epoch = 0, 0
    t_run0, prev_wall = time.monotonic(), 0.0  # training wall time, recorded in the checkpoint
    if out_dir is not None and cfg.resume and (out_dir / "train_state" / "state.json").exists():
        step, start_epoch = load_train_state(out_dir / "train_state", model, ema, opt, sched, rng)
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            prev_wall = float(
                json.loads((out_dir / "latest" / "config.json").read_text())["extra"]["train_wall_s"]
            )
        logger.info("resumed from %s at epoch %d step %d", out_dir, start_epoch, step)
    if out_dir is not None and rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))

    history: list[dict[str, float]] = []
    bar = None
    if cfg.progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, desc="dp_train", dynamic_ncols=True)
    checkpoint = None
    model.train()
    epoch = start_epoch
    while epoch < cfg.num_epochs and step < total:
        perm = rng.permutation(len(train_ds))
        t0 = time.perf_counter()
        losses = []
        for b in range(steps_per_epoch):
            if step >= total:
                break
            lo = (b * world + rank) * per_rank_batch
            idx = perm[lo : lo + per_rank_batch]
            obs, act = _to_torch(*train_ds.get_batch(idx), device)
            loss = model.compute_loss(obs, act)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                # Same init on every rank (same seed); average gradients as DDP would.
                for p in model.parameters():
                    if p.grad is not None:
                        torch.distributed.all_reduce(p.grad)
                        p.grad /= world
            opt.step()
            sched.step()
            if ema is not None:
                ema.step(model)
            step += 1
            losses.append(float(loss.detach()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}", epoch=epoch)
        epoch += 1
        rec = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               "epoch_s": time.perf_counter() - t0, "lr": sched.get_last_lr()[0]}  # fmt: skip
        if rank == 0 and (epoch % cfg.val_every == 0 or epoch == cfg.num_epochs or step >= total):
            rec["val_loss"] = validation_loss(ema_model, val_ds, cfg.batch_size, cfg.seed, device)
        history.append(rec)
        if callback is not None:
            callback(rec)
        if rank == 0 and bar is None and "val_loss" in rec:
            logger.info(
                "epoch %d step %d train %.4f val %.4f", epoch, step, rec["train_loss"], rec["val_loss"]
            )
        last = epoch == cfg.num_epochs or step >= total
        if out_dir is not None and rank == 0 and (epoch % cfg.checkpoint_every == 0 or last):
            extra = {"epoch": epoch, "step": step, "val_episodes": [int(e) for e in val_eps],
                     "train_wall_s": round(prev_wall + time.monotonic() - t_run0, 1)}  # fmt: skip
            checkpoint = save_checkpoint(
                out_dir / "checkpoints" / f"epoch_{epoch:04d}", pcfg, ema_model, norm, extra
            )
            save_checkpoint(out_dir / "latest", pcfg, ema_model, norm, extra)
            save_train_state(out_dir / "train_state", model, ema, opt, sched, step, epoch, rng)
    if bar is not None:
        bar.close()
    if out_dir is not None and rank == 0:
        checkpoint = out_dir / "latest" if checkpoint is not None else None
    return TrainResult(pcfg, model, ema_model, norm, train_eps, val_eps, history, checkpoint)


def world_from_env() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment (0, 1 when not distributed)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
