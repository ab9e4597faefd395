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

The parts: :mod:`~dp_policy.core.train_config` (:class:`TrainConfig`, durations, :class:`TrainError`),
:mod:`~dp_policy.core.train_data` (loading, split, normalization, windows),
:mod:`~dp_policy.core.train_loop` (model, optimizer, the epoch loop, checkpoints),
:mod:`~dp_policy.core.train_state` (EMA, LR schedule, resumable state) and
:mod:`~dp_policy.core.train_run` (signals, the budget planner, pruning, reports, the evaluation hook).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dp_policy.core.config import PolicyConfig
from dp_policy.core.model import DiffusionPolicyModel
from dp_policy.core.normalizer import Normalizer
from dp_policy.core.train_config import TrainConfig
from dp_policy.core.train_data import prepare_data
from dp_policy.core.train_loop import TrainLoop
from dp_policy.core.train_run import StopRequest, dist_info


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
    rank, world = dist_info()
    device = torch.device(cfg.device)
    td = prepare_data(cfg, data, val_episodes, rank)
    run = TrainLoop(cfg, td, rank, world, device, callback)
    run.resume()
    run.open_outputs()
    with StopRequest() as stop:
        run.loop(stop)
    summary = run.finish()
    return TrainResult(td.pcfg, run.model, run.ema_model, td.norm, td.train_eps, td.val_eps, run.history,
                       run.checkpoint, run.stop_reason or "done", summary)  # fmt: skip
