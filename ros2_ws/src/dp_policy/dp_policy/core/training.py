"""Training loop: AdamW + cosine schedule with warm-up, EMA (DP3 defaults), checkpoints, resume.

A run respects a budget: ``max_train_time`` plans the schedule's end (:func:`plan_horizon`), SIGINT /
SIGTERM / the budget's end stop after a whole step with a complete checkpoint, a resume continues
the saved schedule (``reschedule`` changes it, warned), ``keep_last`` epoch checkpoints plus ``best/``
are kept, and user errors raise :class:`TrainError` (``dp_train`` prints it as one line, exit 2).

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
import re
import shutil
import signal
import subprocess
import sys
import threading
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
from dp_policy.core.train_state import (
    EMAModel,
    cosine_with_warmup,
    load_train_state,
    read_train_state_meta,
    save_train_state,
    schedule_horizon,
)

logger = logging.getLogger(__name__)


PRESET_HELP = "dp3 | simple_dp3 | image_dp: the architecture the other policy.* keys modify"
# PolicyConfig keys the trainer takes from the dataset (not set in the YAML).
DATA_KEYS = ("name", "state_dim", "action_dim", "encoder.num_points")


class TrainError(ValueError):
    """A user error (input data, configuration, run folder): one line naming the problem and the fix."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem, self.fix = " ".join(str(problem).split()), fix
        super().__init__(f"{self.problem}; {fix}")


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"30m"``, ``"1h"``, ``"1h30m"``, ``"1.5h"`` ('' / 0 = off)."""
    if value in ("", None):
        return 0.0
    if isinstance(value, bool):
        raise ValueError(f"max_train_time must be seconds or a duration like 30m / 1h. Got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        m = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text)
        if not text or m is None:
            raise ValueError(
                f"max_train_time must be seconds or a duration like 90s / 30m / 1h / 1h30m. Got {value!r}"
            )
        h, mnt, sec = (float(g) if g else 0.0 for g in m.groups())
        seconds = 3600 * h + 60 * mnt + sec
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"max_train_time must be >= 0. Got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``75`` -> ``1m15s``, ``4000`` -> ``1h06m``."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@dataclass
class TrainConfig:
    """Training run. ``policy`` holds ``preset`` (dp3 | simple_dp3 | image_dp) plus PolicyConfig keys.

    Every field carries a one-line ``help``: ``dp_train --help`` prints them (with the policy keys)
    and the test suite checks that every ``config/train_*.yaml`` lists every key.
    """

    dataset: str = field(default="", metadata={"help": "DP3 zarr directory (data/{state,action,...})"})
    output_dir: str = field(default="outputs/dp3", metadata={"help": "run directory ('' = write nothing)"})
    policy: dict[str, Any] = field(
        default_factory=lambda: {"preset": "simple_dp3"},
        metadata={"help": "policy.preset plus PolicyConfig keys (listed as policy.*)"},
    )
    seed: int = field(default=42, metadata={"help": "seeds init, split, shuffling and noise"})
    device: str = field(default="cpu", metadata={"help": "torch device: cpu | cuda | cuda:N"})
    num_threads: int = field(default=0, metadata={"help": "torch CPU threads (0 = torch default)"})
    batch_size: int = field(default=128, metadata={"help": "windows per optimizer step (all ranks)"})
    num_epochs: int = field(default=100, metadata={"help": "passes over the training windows (upper bound)"})
    max_train_steps: int = field(default=0, metadata={"help": "stop after this many steps (0 = off)"})
    max_train_time: str | float = field(
        default="",
        metadata={
            "help": "wall-clock budget: seconds or 90s / 30m / 1h / 1h30m ('' = off); the LR schedule "
            "is planned to anneal by its end"
        },
    )
    reschedule: bool = field(
        default=False,
        metadata={
            "help": "on resume, re-plan the LR schedule from this config (warns) instead of the saved one"
        },
    )
    lr: float = field(default=1e-4, metadata={"help": "peak learning rate (AdamW)"})
    betas: list[float] = field(default_factory=lambda: [0.95, 0.999], metadata={"help": "AdamW betas"})
    eps: float = field(default=1e-8, metadata={"help": "AdamW epsilon"})
    weight_decay: float = field(default=1e-6, metadata={"help": "AdamW weight decay"})
    lr_warmup_steps: int = field(default=500, metadata={"help": "linear LR warm-up steps, then cosine to 0"})
    val_ratio: float = field(
        default=0.1,
        metadata={"help": "held-out episode fraction (>= 1 episode when > 0; 0 = validation off)"},
    )
    val_every: int = field(default=1, metadata={"help": "epochs between validation losses"})
    checkpoint_every: int = field(default=10, metadata={"help": "epochs between checkpoints"})
    keep_last: int = field(default=2, metadata={"help": "epoch checkpoints kept in checkpoints/ (0 = all)"})
    resume: bool = field(default=True, metadata={"help": "continue from output_dir/train_state if present"})
    use_ema: bool = field(default=True, metadata={"help": "checkpoints hold an EMA of the weights (DP3)"})
    ema_update_after_step: int = field(default=0, metadata={"help": "EMA starts after this step"})
    ema_inv_gamma: float = field(
        default=1.0, metadata={"help": "EMA warm-up: 1 - (1 + step/inv_gamma)^-power"}
    )
    ema_power: float = field(default=0.75, metadata={"help": "EMA warm-up power (0.75 DP3; 2/3 longer runs)"})
    ema_min_value: float = field(default=0.0, metadata={"help": "EMA decay floor"})
    ema_max_value: float = field(default=0.9999, metadata={"help": "EMA decay ceiling"})
    progress: bool = field(
        default=True,
        metadata={"help": "progress bar on a terminal (plain periodic lines otherwise, or when false)"},
    )
    log_every_s: float = field(default=10.0, metadata={"help": "seconds between plain progress lines"})
    eval_every: int = field(
        default=0, metadata={"help": "epochs between closed-loop evaluations (0 = off; needs eval_command)"}
    )
    eval_command: str = field(
        default="",
        metadata={
            "help": "closed-loop evaluation command; {checkpoint} and {out} are filled in, it must write "
            "{out}/summary.json with success_rate (e.g. python -m dp_sim.closed_loop ...)"
        },
    )

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
        if self.keep_last < 0 or self.max_train_steps < 0 or self.eval_every < 0:
            raise ValueError(
                "keep_last, max_train_steps and eval_every must be >= 0. "
                f"Got {self.keep_last}, {self.max_train_steps}, {self.eval_every}"
            )
        if self.eval_every > 0 and not self.eval_command:
            raise ValueError("eval_every > 0 needs eval_command (the closed-loop evaluation to run)")
        self.max_train_time_s = parse_duration(self.max_train_time)
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
    # done | budget | SIGINT | SIGTERM | horizon (the saved schedule had ended) | spent (the budget had)
    stop_reason: str = "done"
    summary: str = ""  # the "how far it got" line (dp_train prints it)


def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class StopRequest:
    """SIGINT / SIGTERM set a flag; the loop finishes its step, saves and returns (a second SIGINT aborts)."""

    def __init__(self) -> None:
        self.reason = ""
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.reason and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = self.reason or name
        logger.warning("%s: finishing the current step, then saving a checkpoint (Ctrl-C again aborts)", name)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def split_with_minimum(n_episodes: int, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Episode split: ``val_ratio > 0`` holds out at least one episode (when there are >= 2)."""
    train_eps, val_eps = split_episodes(n_episodes, val_ratio, seed)
    if val_ratio > 0 and len(val_eps) == 0 and n_episodes >= 2:
        perm = np.random.default_rng(seed).permutation(n_episodes)
        val_eps, train_eps = np.sort(perm[:1]), np.sort(perm[1:])
    return train_eps, val_eps


def plan_horizon(step: int, seconds_per_step: float, budget_left_s: float, cap: int) -> int:
    """The budget rule: the cosine horizon is the step the run reaches when the budget ends.

    ``horizon = step + floor(0.97 * budget_left_s / seconds_per_step)`` (3% kept for the final
    validation and checkpoint), capped by ``num_epochs`` / ``max_train_steps``. ``train`` plans once,
    at the first epoch end or after 50 steps, whichever comes first, but not before 5% of the budget
    has passed; ``seconds_per_step`` is the wall time per step measured until then, validation,
    checkpoints and logging included. Until then the warm-up runs (it does not depend on the horizon).
    """
    fit = int(0.97 * max(0.0, budget_left_s) / max(seconds_per_step, 1e-9))
    return max(step + 1, min(cap, step + fit))


def prune_checkpoints(folder: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` ``epoch_NNNN`` folders (0 = keep all); returns the deleted."""
    if keep_last <= 0 or not folder.is_dir():
        return []
    epochs = sorted(p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"epoch_\d+", p.name))
    doomed = epochs[:-keep_last]
    for p in doomed:
        shutil.rmtree(p, ignore_errors=True)
    return doomed


def folder_size(path: Path) -> int:
    """Bytes under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def disk_report(out_dir: Path) -> str:
    """``run folder runs/x: 61.2 MB (latest 29.0 MB, train_state 30.1 MB, ...)``."""
    parts = [(p.name, folder_size(p) if p.is_dir() else p.stat().st_size) for p in sorted(out_dir.iterdir())]
    big = ", ".join(f"{n} {b / 1e6:.1f} MB" for n, b in parts if b >= 1e5)
    return f"run folder {out_dir}: {sum(b for _, b in parts) / 1e6:.1f} MB ({big})"


def write_loss_curve(history_file: Path, png: Path) -> None:
    """Plot train / val loss (log scale) and the LR of ``history.jsonl`` into ``png`` (matplotlib Agg)."""
    rows = [json.loads(line) for line in history_file.read_text().splitlines() if line.strip()]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    step = [r["step"] for r in rows]
    ax.plot(step, [r["train_loss"] for r in rows], label="train loss")
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="val loss (EMA)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(step, [r["lr"] for r in rows], color="gray", linestyle="--", label="lr")
    ax2.set_ylabel("learning rate")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right")
    ax.set_title(f"dp_train: {png.parent.name}")
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)


def run_eval_command(command: str, checkpoint: Path, out: Path, timeout_s: float | None) -> float | None:
    """Run the closed-loop evaluation hook; success_rate from ``{out}/summary.json`` (None on failure)."""
    import shlex

    out.mkdir(parents=True, exist_ok=True)
    args = [a.format(checkpoint=checkpoint, out=out) for a in shlex.split(command)]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("closed-loop evaluation failed: %s", exc)
        return None
    try:
        return float(json.loads((out / "summary.json").read_text())["success_rate"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
        logger.warning(
            "closed-loop evaluation gave no summary.json (rc %d: %s): %s", r.returncode, tail[0], exc
        )
        return None


def _tensorboard(out_dir: Path | None):
    """A SummaryWriter in ``out_dir/tensorboard`` when tensorboard is installed (optional)."""
    if out_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: the PNG + history.jsonl only
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


def _load_data(cfg: TrainConfig, data: dict | None) -> dict:
    if data is not None:
        try:
            validate_arrays(data)
        except (KeyError, ValueError) as exc:
            raise TrainError(
                f"malformed demonstration arrays: {exc}", "fix the arrays passed to train()"
            ) from exc
        return data
    if not cfg.dataset:
        raise TrainError(
            "no dataset given", "pass dataset=<path to a DP3 zarr directory> (or set it in the YAML)"
        )
    if not Path(cfg.dataset).exists():
        raise TrainError(
            f"dataset {cfg.dataset!r} does not exist",
            "pass dataset=<path to a DP3 zarr directory> (make one with python -m dp_sim.make_dataset "
            "or bag_to_zarr)",
        )
    try:
        return load_zarr(cfg.dataset)
    except Exception as exc:  # zarr raises many types for a folder that is not a DP3 store
        raise TrainError(
            f"dataset {cfg.dataset!r} is not a readable DP3 zarr store ({type(exc).__name__}: {exc})",
            "it needs data/state (T, D), data/action (T, A), meta/episode_ends, and data/point_cloud or "
            "images for the encoder; rebuild it with python -m dp_sim.make_dataset or bag_to_zarr",
        ) from exc


def train(
    cfg: TrainConfig,
    data: dict | None = None,
    val_episodes: np.ndarray | None = None,
    callback: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a policy on ``data`` (in-memory arrays) or ``cfg.dataset`` (zarr).

    ``val_episodes`` overrides the random validation split. Writes checkpoints under
    ``cfg.output_dir`` unless it is empty. Returns models, normalizer and loss history. User errors
    (data, config, an incompatible run folder) raise :class:`TrainError`.

    Stops: at ``num_epochs``, at ``max_train_steps``, at the end of the schedule horizon, at the end of
    ``max_train_time`` (counted over all resumes of the run), or on SIGINT / SIGTERM -- always after a
    whole optimizer step, with a complete checkpoint (``latest/`` + ``train_state/``) written.
    """
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    rank, world = _dist_info()
    device = torch.device(cfg.device)
    data = _load_data(cfg, data)
    n_eps = len(data["episode_ends"])
    if val_episodes is None:
        train_eps, val_eps = split_with_minimum(n_eps, cfg.val_ratio, cfg.seed)
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
    try:
        pcfg = cfg.policy_config(**overrides)
    except (TypeError, ValueError) as exc:
        raise TrainError(
            f"policy config does not fit the dataset ({overrides['state_dim']} state, "
            f"{overrides['action_dim']} action columns): {exc}",
            "fix the policy.* keys (dp_train --help lists them)",
        ) from exc
    missing = [k for k in pcfg.obs_keys if k not in data]
    if missing:
        raise TrainError(
            f"the {pcfg.encoder.type} encoder reads {list(pcfg.obs_keys)} but the dataset has no {missing}",
            "use a dataset with those arrays or set policy.encoder.type to match the data "
            "(lowdim: state only; dp3_pointnet: point_cloud; image: policy.encoder.camera_keys)",
        )
    ds_kwargs = dict(horizon=pcfg.horizon, n_obs_steps=pcfg.n_obs_steps, pad_before=pcfg.n_obs_steps - 1,
                     pad_after=pcfg.n_action_steps - 1, obs_keys=pcfg.obs_keys)  # fmt: skip
    try:
        norm = fit_normalizer(data, train_eps, pcfg, ds_kwargs)
        ndata = normalize_data(data, norm, pcfg)
        train_ds = SequenceDataset(ndata, train_eps, **ds_kwargs)
        val_ds = SequenceDataset(ndata, val_eps, **ds_kwargs)
        if pcfg.action_space == "joint_position_delta":
            train_ds = DeltaActionDataset(train_ds, data["action"], data["agent_pos"], norm)
            val_ds = DeltaActionDataset(val_ds, data["action"], data["agent_pos"], norm)
        if len(train_ds):
            train_ds.get_batch(np.arange(1))  # shape check (images vs encoder.image_shape, ...)
    except (ValueError, IndexError, KeyError) as exc:
        raise TrainError(
            f"the dataset's arrays do not fit the policy config: {exc}",
            "fix the policy.* keys (e.g. policy.encoder.image_shape, use_rgb) or rebuild the dataset",
        ) from exc
    if len(train_ds) == 0:
        raise TrainError(
            "no training sequences: episodes shorter than the horizon padding allows",
            "lower policy.horizon or record longer episodes",
        )
    has_val = len(val_ds) > 0
    if rank == 0:
        if has_val:
            logger.info("validation: %d held-out episode(s) of %d", len(val_eps), n_eps)
        elif val_episodes is not None:
            logger.info("validation off: no validation episodes given; no val loss, no best/ checkpoint")
        elif cfg.val_ratio == 0:
            logger.info("validation off (val_ratio: 0): no val loss, no best/ checkpoint")
        else:
            logger.info(
                "validation off: %d episode(s) cannot spare a held-out one; no val loss, no best/", n_eps
            )

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
    cap = steps_per_epoch * cfg.num_epochs
    if cfg.max_train_steps > 0:
        cap = min(cap, cfg.max_train_steps)
    sched = cosine_with_warmup(opt, cfg.lr_warmup_steps, cap)
    rng = np.random.default_rng(cfg.seed)
    budget = cfg.max_train_time_s
    planned = budget <= 0  # the horizon is final unless a wall-clock budget still has to be measured

    out_dir = Path(cfg.output_dir) if cfg.output_dir else None
    step, start_epoch, resume_batch, best_val = 0, 0, 0, math.inf
    epoch_rng = rng.bit_generator.state
    t_run0, prev_wall = time.monotonic(), 0.0  # training wall time, recorded in the checkpoint
    state_dir = out_dir / "train_state" if out_dir is not None else None
    resumed = False
    if state_dir is not None and cfg.resume and (state_dir / "state.json").exists():
        meta = read_train_state_meta(state_dir)
        saved_cfg = meta.get("policy_config")
        if saved_cfg is not None and _arch(saved_cfg) != _arch(pcfg.to_dict()):
            diff = [k for k in _arch(saved_cfg) if _arch(saved_cfg)[k] != _arch(pcfg.to_dict()).get(k)]
            raise TrainError(
                f"{out_dir} holds a run with a different policy config ({', '.join(diff)} differ: "
                + "; ".join(f"{k} {saved_cfg.get(k)} there vs {pcfg.to_dict().get(k)} now" for k in diff[:3])
                + ")",
                "use a new output_dir, restore the run's settings (its train_config.json), "
                "or pass resume=false to start over in this folder",
            )
        try:
            step, start_epoch = load_train_state(state_dir, model, ema, opt, sched, rng)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise TrainError(
                f"the train state in {state_dir} does not fit this config ({str(exc).splitlines()[0]})",
                "use a new output_dir, restore the run's settings, or pass resume=false to start over",
            ) from exc
        resumed = True
        resume_batch = int(meta.get("batch_in_epoch", 0))
        epoch_rng = meta.get("epoch_rng", rng.bit_generator.state)
        best_val = float(meta.get("best_val", math.inf))
        prev_wall = float(meta.get("train_wall_s", 0.0))
        if "train_wall_s" not in meta:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                prev_wall = float(
                    json.loads((out_dir / "latest" / "config.json").read_text())["extra"]["train_wall_s"]
                )
        planned = bool(meta.get("horizon_planned", True)) or budget <= 0
        saved_h = schedule_horizon(sched)
        if cfg.reschedule:
            new_h = cap
            if budget > 0:
                new_h, planned = cap, False  # measured again in this invocation
            sched.lr_lambdas[0].total = new_h
            logger.warning(
                "reschedule=true: the LR schedule horizon changes from step %d to %s (lr jumps from %.2e to "
                "%.2e at step %d: a warm restart)", saved_h, new_h if planned else f"<= {new_h} (re-planned)",
                sched.get_last_lr()[0], cfg.lr * sched.lr_lambdas[0](step), step,
            )  # fmt: skip
        elif saved_h != cap and planned and budget <= 0:
            logger.info(
                "resume keeps the saved LR schedule (horizon step %d; this config alone would give %d); "
                "pass reschedule=true to change it", saved_h, cap,
            )  # fmt: skip
        logger.info(
            "resumed from %s at epoch %d step %d (lr %.2e)",
            out_dir,
            start_epoch,
            step,
            sched.get_last_lr()[0],
        )
    if out_dir is not None and rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
        if not resumed:
            (out_dir / "history.jsonl").write_text("")
    horizon = schedule_horizon(sched)
    if horizon > cap and not cfg.reschedule and resumed:
        cap = horizon  # the saved schedule is longer than this config's caps: honour num_epochs only

    history: list[dict[str, float]] = []
    tty = sys.stderr.isatty()
    bar = None
    if cfg.progress and rank == 0 and tty:
        from tqdm import tqdm

        bar = tqdm(total=horizon, initial=step, desc="dp_train", dynamic_ncols=True)
    tb = _tensorboard(out_dir) if rank == 0 else None
    checkpoint = None
    model.train()
    epoch = start_epoch
    stop_reason = ""
    last_val = float("nan")
    last_line = time.monotonic()
    step0 = step  # step-time measurement for the budget planner: this invocation's steps
    frac = 0.0  # fraction of a partial epoch done when a signal stopped the run

    def wall() -> float:
        return prev_wall + time.monotonic() - t_run0

    def save_state(batch_in_epoch: int, rng_state: dict, extra_ckpt: dict) -> None:
        nonlocal checkpoint
        extra = {"epoch": epoch, "step": step, "val_episodes": [int(e) for e in val_eps],
                 "train_wall_s": round(wall(), 1), **extra_ckpt}  # fmt: skip
        save_checkpoint(out_dir / "latest", pcfg, ema_model, norm, extra)
        save_train_state(state_dir, model, ema, opt, sched, step, epoch, rng, {
            "batch_in_epoch": batch_in_epoch, "epoch_rng": rng_state, "best_val": best_val,
            "train_wall_s": wall(), "horizon_planned": planned, "policy_config": pcfg.to_dict()})  # fmt: skip
        checkpoint = out_dir / "latest"

    def step_s() -> float:
        """Wall seconds per step in this invocation, validation, checkpoints and logging included."""
        return (wall() - prev_wall) / max(1, step - step0)

    def should_stop() -> str:
        reason = stop.reason
        if not reason and budget > 0 and wall() >= budget:
            reason = "budget"
        if world > 1:  # every rank stops at the same step
            flag = torch.tensor([1.0 if reason else 0.0])
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            reason = reason or ("stop" if flag.item() > 0 else "")
        return reason

    with StopRequest() as stop:
        if step >= horizon:
            stop_reason = "horizon"
        elif budget > 0 and prev_wall >= budget:
            stop_reason = "spent"
        while not stop_reason and epoch < cfg.num_epochs and step < horizon:
            if resume_batch:
                rng.bit_generator.state = epoch_rng
            rng_state = copy.deepcopy(rng.bit_generator.state)
            perm = rng.permutation(len(train_ds))
            t0 = time.perf_counter()
            losses = []
            b = resume_batch
            resume_batch = 0
            while b < steps_per_epoch and step < horizon:
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
                b += 1
                losses.append(float(loss.detach()))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}", epoch=epoch)
                if not planned and step - step0 >= 50 and wall() - prev_wall >= 0.05 * budget:
                    horizon = _plan(sched, step, step_s(), budget - wall(), cap, cfg.lr_warmup_steps, bar)
                    planned = True
                stop_reason = should_stop()
                if stop_reason in ("SIGINT", "SIGTERM", "stop"):
                    break
                if stop_reason:  # budget: finish like a normal end (validation, epoch checkpoint)
                    break
            partial = b < steps_per_epoch and stop_reason in ("SIGINT", "SIGTERM", "stop")
            if partial:
                frac = b / steps_per_epoch
                if out_dir is not None and rank == 0:
                    save_state(b, rng_state, {"stopped": stop_reason, "batch_in_epoch": b})
                break
            epoch += 1
            rec = {
                "epoch": epoch,
                "step": step,
                "train_loss": float(np.mean(losses)) if losses else float("nan"),
                "epoch_s": time.perf_counter() - t0,
                "lr": sched.get_last_lr()[0],
                "wall_s": round(wall(), 2),  # training time of the run so far (all invocations)
            }
            last = epoch >= cfg.num_epochs or step >= horizon or bool(stop_reason)
            if rank == 0 and has_val and (epoch % cfg.val_every == 0 or last):
                rec["val_loss"] = last_val = validation_loss(
                    ema_model, val_ds, cfg.batch_size, cfg.seed, device
                )
            if out_dir is not None and rank == 0 and (epoch % cfg.checkpoint_every == 0 or last):
                extra = {"epoch": epoch, "step": step, "val_episodes": [int(e) for e in val_eps],
                         "train_wall_s": round(wall(), 1)}  # fmt: skip
                save_checkpoint(out_dir / "checkpoints" / f"epoch_{epoch:04d}", pcfg, ema_model, norm, extra)
                prune_checkpoints(out_dir / "checkpoints", cfg.keep_last)
                if "val_loss" in rec and rec["val_loss"] < best_val:
                    best_val = rec["val_loss"]
                    save_checkpoint(out_dir / "best", pcfg, ema_model, norm, {**extra, "val_loss": best_val})
                if cfg.eval_every and epoch % cfg.eval_every == 0:
                    save_checkpoint(out_dir / "latest", pcfg, ema_model, norm, extra)
                    sr = run_eval_command(
                        cfg.eval_command,
                        out_dir / "latest",
                        out_dir / "eval" / f"epoch_{epoch:04d}",
                        max(60.0, budget - wall()) if budget > 0 else None,
                    )
                    if sr is not None:
                        rec["success_rate"] = sr
                save_state(0, copy.deepcopy(rng.bit_generator.state), {})
            elif out_dir is not None and rank == 0 and "val_loss" in rec and rec["val_loss"] < best_val:
                best_val = rec["val_loss"]
                extra = {"epoch": epoch, "step": step, "val_loss": best_val, "train_wall_s": round(wall(), 1)}
                save_checkpoint(out_dir / "best", pcfg, ema_model, norm, extra)
            if not planned and budget > 0 and wall() - prev_wall >= 0.05 * budget:
                horizon = _plan(sched, step, step_s(), budget - wall(), cap, cfg.lr_warmup_steps, bar)
                planned = True
            history.append(rec)
            if callback is not None:
                callback(rec)
            if rank == 0:
                if out_dir is not None:
                    with open(out_dir / "history.jsonl", "a") as f:
                        f.write(json.dumps(rec) + "\n")
                if tb is not None:
                    for k in ("train_loss", "val_loss", "lr", "success_rate"):
                        if k in rec:
                            tb.add_scalar(k, rec[k], step)
                now = time.monotonic()
                if bar is None and (now - last_line >= cfg.log_every_s or last or "success_rate" in rec):
                    last_line = now
                    logger.info(
                        _progress_line(
                            rec,
                            cfg.num_epochs,
                            last_val,
                            has_val,
                            horizon,
                            step,
                            step_s(),
                            budget,
                            wall(),
                        )
                    )
                if out_dir is not None and (epoch % cfg.checkpoint_every == 0 or last):
                    with contextlib.suppress(Exception):  # the plot is a convenience, never fatal
                        write_loss_curve(out_dir / "history.jsonl", out_dir / "loss_curve.png")
            if stop_reason:
                break
    if bar is not None:
        bar.close()
    if tb is not None:
        tb.close()
    if out_dir is not None and rank == 0 and stop_reason in ("horizon", "spent") and checkpoint is None:
        checkpoint = out_dir / "latest" if (out_dir / "latest").exists() else None
    lr_now = sched.get_last_lr()[0]
    how = {
        "": "finished",
        "budget": "time budget reached",
        "spent": "nothing to do: the run has used its max_train_time (raise it, with reschedule=true to "
        "plan a new schedule)",
        "horizon": "nothing to do: the saved LR schedule already "
        "ended (pass reschedule=true to train on with a new schedule)",
    }.get(stop_reason, f"stopped by {stop_reason}")
    summary = (
        f"{how}: epoch {epoch + frac:.1f}/{cfg.num_epochs}, "
        f"step {step}/{horizon}, {format_duration(wall())} of training"
        + (f" (budget {format_duration(budget)})" if budget > 0 else "")
        + f", lr {lr_now:.2e}"
        + (f", best val {best_val:.4f}" if math.isfinite(best_val) else "")
        + (f"; checkpoint {checkpoint}" if checkpoint is not None else "")
    )
    if out_dir is not None and rank == 0 and out_dir.exists():
        summary += "\n" + disk_report(out_dir)
    return TrainResult(pcfg, model, ema_model, norm, train_eps, val_eps, history, checkpoint,
                       stop_reason or "done", summary)  # fmt: skip


def _arch(policy_dict: dict) -> dict:
    """The PolicyConfig entries a resumed run must share (everything but inference-time settings)."""
    return {k: v for k, v in policy_dict.items() if k not in ("num_inference_steps",)}


def _plan(sched, step: int, s_per_step: float, budget_left: float, cap: int, warmup: int, bar) -> int:
    horizon = plan_horizon(step, s_per_step, budget_left, cap)
    sched.lr_lambdas[0].total = horizon
    if bar is not None:
        bar.total = horizon
        bar.refresh()
    logger.info(
        "budget: %.3f s/step measured -> LR schedule planned for %d steps (cosine reaches 0 in ~%s)%s",
        s_per_step, horizon, format_duration((horizon - step) * s_per_step),
        " (capped by num_epochs / max_train_steps)" if horizon == cap else "",
    )  # fmt: skip
    if warmup >= horizon:
        logger.warning(
            "lr_warmup_steps %d >= the %d steps the budget allows: lower lr_warmup_steps", warmup, horizon
        )
    return horizon


def _progress_line(rec: dict, num_epochs: int, val: float, has_val: bool, horizon: int, step: int,
                   s_per_step: float, budget: float, wall_s: float) -> str:  # fmt: skip
    eta = (horizon - step) * s_per_step
    if budget > 0:
        eta = min(eta, budget - wall_s)
    parts = [f"epoch {rec['epoch']}/{num_epochs}", f"step {step}", f"loss {rec['train_loss']:.4f}"]
    if has_val and math.isfinite(val):
        parts.append(f"val {val:.4f}")
    if "success_rate" in rec:
        parts.append(f"success {rec['success_rate']:.0%}")
    parts += [f"lr {rec['lr']:.1e}", f"{rec['epoch_s']:.1f} s/epoch", f"eta {format_duration(eta)}"]
    return " ".join(parts)


def world_from_env() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment (0, 1 when not distributed)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
