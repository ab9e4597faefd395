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
from safetensors.torch import load_file, save_file
from torch import nn

from dp_policy.core.checkpoint import save_checkpoint
from dp_policy.core.config import PolicyConfig
from dp_policy.core.dataset import SequenceDataset, load_zarr, split_episodes, validate_arrays
from dp_policy.core.model import DiffusionPolicyModel
from dp_policy.core.normalizer import Normalizer

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


def cosine_with_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int):
    """LambdaLR: linear warm-up to the base lr, then cosine decay to 0 at ``total`` steps."""

    def fn(step: int) -> float:
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)


class DeltaActionDataset:
    """Windows of a SequenceDataset whose actions are relative to the state at the window's "now".

    For ``action_space: joint_position_delta``: row k of a window becomes
    ``action[t_k] - agent_pos[t_now]`` with ``t_now`` the window's observation step
    ``n_obs_steps - 1`` (the deployed node adds the joint positions at the chunk's stamp back),
    normalized with the normalizer's ``action`` statistics (fitted on such deltas).
    """

    def __init__(self, ds: SequenceDataset, action: np.ndarray, state: np.ndarray,
                 norm: Normalizer | None = None) -> None:  # fmt: skip
        self.ds, self.action, self.state, self.norm = ds, action, state, norm

    def __len__(self) -> int:
        return len(self.ds)

    def deltas(self, idx: np.ndarray) -> np.ndarray:
        """Raw (B, horizon, A) deltas of windows ``idx``."""
        t = self.ds.time_indices(np.asarray(idx))
        return self.action[t] - self.state[t[:, self.ds.n_obs_steps - 1]][:, None, :]

    def get_batch(self, idx: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """-> (normalized obs, normalized delta actions)."""
        obs, _ = self.ds.get_batch(idx)
        return obs, np.asarray(self.norm.normalize("action", self.deltas(idx)), dtype=np.float32)


def fit_normalizer(
    data: dict, episodes: np.ndarray, cfg: PolicyConfig, ds_kwargs: dict | None = None
) -> Normalizer:
    """Min-max normalizer fitted on the frames of the training episodes.

    With ``joint_position_delta`` actions the action statistics are those of the deltas of every
    training window (``ds_kwargs``: the SequenceDataset arguments).
    """
    ends = data["episode_ends"]
    starts = np.concatenate([[0], ends[:-1]])
    frames = np.concatenate([np.arange(starts[e], ends[e]) for e in episodes])
    fit = {"action": data["action"][frames], "agent_pos": data["agent_pos"][frames]}
    if cfg.action_space == "joint_position_delta":
        windows = DeltaActionDataset(
            SequenceDataset(data, episodes, **ds_kwargs), data["action"], data["agent_pos"]
        )
        fit["action"] = windows.deltas(np.arange(len(windows))).reshape(-1, data["action"].shape[-1])
    if cfg.encoder.type == "dp3_pointnet" and cfg.normalize_points:
        fit["point_cloud"] = data["point_cloud"][frames][..., :3]
    return Normalizer.fit(fit)


def normalize_data(data: dict, norm: Normalizer, cfg: PolicyConfig) -> dict:
    """Normalize whole arrays once (cheaper than per batch)."""
    out = dict(data)
    out["action"] = norm.normalize("action", data["action"])
    out["agent_pos"] = norm.normalize("agent_pos", data["agent_pos"])
    if "point_cloud" in data and cfg.encoder.type == "dp3_pointnet":
        pc = data["point_cloud"][..., : cfg.encoder.point_channels]
        out["point_cloud"] = norm.normalize("point_cloud", pc) if cfg.normalize_points else pc
    return out


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


def _save_train_state(path: Path, model, ema: EMAModel | None, opt, sched, step: int, epoch: int,
                      rng: np.random.Generator) -> None:  # fmt: skip
    """Resume state without pickles: tensors in safetensors, counters in JSON."""
    path.mkdir(parents=True, exist_ok=True)
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
    save_file(tensors, str(path / "state.safetensors"))
    meta = {
        "step": step,
        "epoch": epoch,
        "ema_step": ema.optimization_step if ema is not None else 0,
        "sched": sched.state_dict(),
        "np_rng": rng.bit_generator.state,
    }
    meta["sched"].pop("lr_lambdas", None)
    (path / "state.json").write_text(json.dumps(meta, default=float))


def _load_train_state(path: Path, model, ema: EMAModel | None, opt, sched, rng: np.random.Generator):
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
    torch.set_rng_state(tensors["torch_rng"])
    rng.bit_generator.state = meta["np_rng"]
    return int(meta["step"]), int(meta["epoch"])


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
        step, start_epoch = _load_train_state(out_dir / "train_state", model, ema, opt, sched, rng)
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
            _save_train_state(out_dir / "train_state", model, ema, opt, sched, step, epoch, rng)
    if bar is not None:
        bar.close()
    if out_dir is not None and rank == 0:
        checkpoint = out_dir / "latest" if checkpoint is not None else None
    return TrainResult(pcfg, model, ema_model, norm, train_eps, val_eps, history, checkpoint)


def world_from_env() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment (0, 1 when not distributed)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
