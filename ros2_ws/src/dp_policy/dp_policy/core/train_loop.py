"""The epoch loop of :func:`dp_policy.core.training.train`: model, optimizer, schedule and outputs of a run.

:class:`TrainLoop` builds the model and the schedule, resumes ``train_state/``, runs optimizer steps,
ends epochs (validation, checkpoints, the evaluation hook, history) and stops after a whole step.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dp_policy.core.checkpoint import save_checkpoint
from dp_policy.core.dataset import SequenceDataset
from dp_policy.core.model import DiffusionPolicyModel
from dp_policy.core.train_config import TrainConfig, format_duration
from dp_policy.core.train_data import TrainData
from dp_policy.core.train_run import (
    BudgetPlanner,
    StopRequest,
    disk_report,
    plan_schedule,
    progress_line,
    prune_checkpoints,
    run_eval_command,
    tensorboard_writer,
    write_loss_curve,
)
from dp_policy.core.train_state import (
    EMAModel,
    cosine_with_warmup,
    resume_train_state,
    save_train_state,
    schedule_horizon,
)

# A run's log lines keep one name, the one dp_train prints ("dp_policy.core.training: ...").
logger = logging.getLogger("dp_policy.core.training")


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


class TrainLoop:
    """The state of one ``train`` invocation: model, optimizer, schedule, counters, outputs.

    ``__init__`` builds the model and schedule, :meth:`resume` loads ``train_state/``,
    :meth:`loop` runs epochs (:meth:`run_steps` then :meth:`end_epoch`) until a stop, and
    :meth:`finish` closes the outputs and writes the summary.
    """

    def __init__(self, cfg: TrainConfig, td: TrainData, rank: int, world: int, device: torch.device,
                 callback: Callable[[dict[str, float]], None] | None) -> None:  # fmt: skip
        self.cfg, self.td, self.rank, self.world = cfg, td, rank, world
        self.device, self.callback = device, callback
        self.pcfg, self.norm = td.pcfg, td.norm
        self.has_val = len(td.val_ds) > 0
        self.model = DiffusionPolicyModel(self.pcfg).to(device)
        self.ema_model = copy.deepcopy(self.model) if cfg.use_ema else self.model
        self.ema = (
            EMAModel(
                self.ema_model,
                cfg.ema_update_after_step,
                cfg.ema_inv_gamma,
                cfg.ema_power,
                cfg.ema_min_value,
                cfg.ema_max_value,
            )  # fmt: skip
            if cfg.use_ema
            else None
        )
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                     weight_decay=cfg.weight_decay)  # fmt: skip
        self.per_rank_batch = max(1, cfg.batch_size // world)
        self.steps_per_epoch = max(1, len(td.train_ds) // (self.per_rank_batch * world))
        self.cap = self.steps_per_epoch * cfg.num_epochs
        if cfg.max_train_steps > 0:
            self.cap = min(self.cap, cfg.max_train_steps)
        self.sched = cosine_with_warmup(self.opt, cfg.lr_warmup_steps, self.cap)
        self.rng = np.random.default_rng(cfg.seed)
        self.budget = cfg.max_train_time_s
        # The horizon is final unless a wall-clock budget still has to be measured.
        self.planned = self.budget <= 0

        self.out_dir = Path(cfg.output_dir) if cfg.output_dir else None
        self.step, self.epoch, self.resume_batch, self.best_val = 0, 0, 0, math.inf
        self.epoch_rng = self.rng.bit_generator.state
        # Training wall time, recorded in the checkpoint.
        self.t_run0, self.prev_wall = time.monotonic(), 0.0
        self.state_dir = self.out_dir / "train_state" if self.out_dir is not None else None
        self.resumed = False
        self.checkpoint: Path | None = None
        self.stop: StopRequest | None = None
        self.stop_reason = ""

    def wall(self) -> float:
        """Training wall seconds of the run so far (all invocations)."""
        return self.prev_wall + time.monotonic() - self.t_run0

    def step_s(self) -> float:
        """Wall seconds per step in this invocation, validation, checkpoints and logging included."""
        return (self.wall() - self.prev_wall) / max(1, self.step - self.step0)

    def resume(self) -> None:
        """Continue from ``train_state/`` when ``cfg.resume`` and one exists (it must fit this config)."""
        cfg, state_dir = self.cfg, self.state_dir
        if state_dir is None or not cfg.resume or not (state_dir / "state.json").exists():
            return
        r = resume_train_state(state_dir, self.pcfg.to_dict(), self.model, self.ema, self.opt, self.sched,
                               self.rng, reschedule=cfg.reschedule, lr=cfg.lr, budget_s=self.budget,
                               cap=self.cap)  # fmt: skip
        self.step, self.epoch, self.resume_batch, self.epoch_rng = (
            r.step,
            r.epoch,
            r.batch_in_epoch,
            r.epoch_rng,
        )
        self.best_val, self.prev_wall, self.planned, self.resumed = r.best_val, r.wall_s, r.planned, True

    def open_outputs(self) -> None:
        """Write ``train_config.json`` (and a fresh history), fix the horizon, open bar and TensorBoard."""
        cfg, out_dir = self.cfg, self.out_dir
        if out_dir is not None and self.rank == 0:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
            if not self.resumed:
                (out_dir / "history.jsonl").write_text("")
        self.horizon = schedule_horizon(self.sched)
        if self.horizon > self.cap and not cfg.reschedule and self.resumed:
            # The saved schedule is longer than this config's caps: honour num_epochs only.
            self.cap = self.horizon
        self.history: list[dict[str, float]] = []
        self.bar = None
        if cfg.progress and self.rank == 0 and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.horizon, initial=self.step, desc="dp_train", dynamic_ncols=True)
        self.tb = tensorboard_writer(out_dir) if self.rank == 0 else None
        self.model.train()
        self.last_val = float("nan")
        self.last_line = time.monotonic()
        self.step0 = self.step  # step-time measurement for the budget planner: this invocation's steps
        self.planner = BudgetPlanner(self.budget, self.prev_wall, self.step) if self.budget > 0 else None
        self.frac = 0.0  # fraction of a partial epoch done when a signal stopped the run

    def save_state(self, batch_in_epoch: int, rng_state: dict, extra_ckpt: dict) -> None:
        """Write ``latest/`` and ``train_state/`` (resumable at ``batch_in_epoch`` of this epoch)."""
        extra = {"epoch": self.epoch, "step": self.step, "val_episodes": [int(e) for e in self.td.val_eps],
                 "train_wall_s": round(self.wall(), 1), **extra_ckpt}  # fmt: skip
        save_checkpoint(self.out_dir / "latest", self.pcfg, self.ema_model, self.norm, extra)
        save_train_state(self.state_dir, self.model, self.ema, self.opt, self.sched, self.step, self.epoch,
                         self.rng, {"batch_in_epoch": batch_in_epoch, "epoch_rng": rng_state,
                                    "best_val": self.best_val, "train_wall_s": self.wall(),
                                    "horizon_planned": self.planned,
                                    "policy_config": self.pcfg.to_dict()})  # fmt: skip
        self.checkpoint = self.out_dir / "latest"

    def should_stop(self) -> str:
        """The stop reason after this step ('' = go on); every rank stops at the same step."""
        reason = self.stop.reason
        if not reason and self.budget > 0 and self.wall() >= self.budget:
            reason = "budget"
        if self.world > 1:
            flag = torch.tensor([1.0 if reason else 0.0])
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            reason = reason or ("stop" if flag.item() > 0 else "")
        return reason

    def maybe_plan(self) -> None:
        """(Re-)plan the LR horizon from the recent step time and the budget left, when it is due.

        The first plan once 5% of the budget has passed, then every 2% (:class:`BudgetPlanner`); with
        several ranks the decision is taken at the same steps on all of them (every 25 steps).
        """
        if self.budget <= 0 or self.planner is None or (self.world > 1 and self.step % 25):
            return
        wall = self.wall()
        due = self.planner.due(wall, self.step)
        if self.world > 1:
            flag = torch.tensor([1.0 if due else 0.0])
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            due = flag.item() > 0
        if not due:
            return
        first = not self.planned and self.planner.last_plan is None
        self.horizon = plan_schedule(self.sched, self.step, self.planner.seconds_per_step(wall, self.step),
                                     self.budget - wall, self.cap, self.cfg.lr_warmup_steps, self.bar,
                                     first=first, world=self.world)  # fmt: skip
        self.planner.planned(wall, self.step)
        self.planned = True

    def loop(self, stop: StopRequest) -> None:
        """Run epochs until ``num_epochs``, the horizon, the budget or a signal."""
        self.stop = stop
        if self.step >= self.horizon:
            self.stop_reason = "horizon"
        elif self.budget > 0 and self.prev_wall >= self.budget:
            self.stop_reason = "spent"
        while not self.stop_reason and self.epoch < self.cfg.num_epochs and self.step < self.horizon:
            if self.resume_batch:
                self.rng.bit_generator.state = self.epoch_rng
            rng_state = copy.deepcopy(self.rng.bit_generator.state)
            t0 = time.perf_counter()
            b, losses = self.run_steps(self.rng.permutation(len(self.td.train_ds)))
            if b < self.steps_per_epoch and self.stop_reason in ("SIGINT", "SIGTERM", "stop"):
                # A signal stopped the run inside the epoch: save where it is, resumable there.
                self.frac = b / self.steps_per_epoch
                if self.out_dir is not None and self.rank == 0:
                    self.save_state(b, rng_state, {"stopped": self.stop_reason, "batch_in_epoch": b})
                break
            self.end_epoch(losses, t0)
            if self.stop_reason:
                break

    def run_steps(self, perm: np.ndarray) -> tuple[int, list[float]]:
        """Optimizer steps over the windows ``perm`` of this epoch; -> (batches done, their losses)."""
        world, rank, model = self.world, self.rank, self.model
        losses: list[float] = []
        b, self.resume_batch = self.resume_batch, 0
        while b < self.steps_per_epoch and self.step < self.horizon:
            lo = (b * world + rank) * self.per_rank_batch
            idx = perm[lo : lo + self.per_rank_batch]
            obs, act = _to_torch(*self.td.train_ds.get_batch(idx), self.device)
            loss = model.compute_loss(obs, act)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                # Same init on every rank (same seed); average gradients as DDP would.
                for p in model.parameters():
                    if p.grad is not None:
                        torch.distributed.all_reduce(p.grad)
                        p.grad /= world
            self.opt.step()
            self.sched.step()
            if self.ema is not None:
                self.ema.step(model)
            self.step += 1
            b += 1
            losses.append(float(loss.detach()))
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix(loss=f"{losses[-1]:.4f}", epoch=self.epoch)
            self.maybe_plan()
            # A signal stops here; the budget too, but finishes like a normal end (validation, checkpoint).
            self.stop_reason = self.should_stop()
            if self.stop_reason:
                break
        return b, losses

    def end_epoch(self, losses: list[float], t0: float) -> None:
        """Validation, checkpoints, the evaluation hook, the history line, TensorBoard, progress, the plot."""
        cfg, out_dir, rank = self.cfg, self.out_dir, self.rank
        self.epoch += 1
        epoch, step = self.epoch, self.step
        rec = {
            "epoch": epoch,
            "step": step,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "epoch_s": time.perf_counter() - t0,
            "lr": self.sched.get_last_lr()[0],
            "wall_s": round(self.wall(), 2),  # training time of the run so far (all invocations)
        }
        last = epoch >= cfg.num_epochs or step >= self.horizon or bool(self.stop_reason)
        if rank == 0 and self.has_val and (epoch % cfg.val_every == 0 or last):
            rec["val_loss"] = self.last_val = validation_loss(
                self.ema_model, self.td.val_ds, cfg.batch_size, cfg.seed, self.device
            )
        if out_dir is not None and rank == 0 and (epoch % cfg.checkpoint_every == 0 or last):
            self.save_epoch(rec)
        elif out_dir is not None and rank == 0 and "val_loss" in rec and rec["val_loss"] < self.best_val:
            self.best_val = rec["val_loss"]
            extra = {
                "epoch": epoch,
                "step": step,
                "val_loss": self.best_val,
                "train_wall_s": round(self.wall(), 1),
            }
            save_checkpoint(out_dir / "best", self.pcfg, self.ema_model, self.norm, extra)
        self.history.append(rec)
        if self.callback is not None:
            self.callback(rec)
        if rank == 0:
            self.report(rec, last)

    def save_epoch(self, rec: dict) -> None:
        """Epoch checkpoint (pruned to ``keep_last``), ``best/``, the evaluation hook, ``train_state/``."""
        cfg, out_dir, epoch = self.cfg, self.out_dir, self.epoch
        pcfg, ema_model, norm = self.pcfg, self.ema_model, self.norm
        extra = {"epoch": epoch, "step": self.step, "val_episodes": [int(e) for e in self.td.val_eps],
                 "train_wall_s": round(self.wall(), 1)}  # fmt: skip
        save_checkpoint(out_dir / "checkpoints" / f"epoch_{epoch:04d}", pcfg, ema_model, norm, extra)
        prune_checkpoints(out_dir / "checkpoints", cfg.keep_last)
        if "val_loss" in rec and rec["val_loss"] < self.best_val:
            self.best_val = rec["val_loss"]
            save_checkpoint(out_dir / "best", pcfg, ema_model, norm, {**extra, "val_loss": self.best_val})
        if cfg.eval_every and epoch % cfg.eval_every == 0:
            save_checkpoint(out_dir / "latest", pcfg, ema_model, norm, extra)
            sr = run_eval_command(
                cfg.eval_command,
                out_dir / "latest",
                out_dir / "eval" / f"epoch_{epoch:04d}",
                max(60.0, self.budget - self.wall()) if self.budget > 0 else None,
            )
            if sr is not None:
                rec["success_rate"] = sr
        self.save_state(0, copy.deepcopy(self.rng.bit_generator.state), {})

    def report(self, rec: dict, last: bool) -> None:
        """Rank 0: append to ``history.jsonl``, TensorBoard, the progress line, the loss-curve PNG."""
        cfg, out_dir = self.cfg, self.out_dir
        if out_dir is not None:
            with open(out_dir / "history.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for k in ("train_loss", "val_loss", "lr", "success_rate"):
                if k in rec:
                    self.tb.add_scalar(k, rec[k], self.step)
        now = time.monotonic()
        if self.bar is None and (now - self.last_line >= cfg.log_every_s or last or "success_rate" in rec):
            self.last_line = now
            logger.info(progress_line(rec, cfg.num_epochs, self.last_val, self.has_val, self.horizon,
                                      self.step, self.step_s(), self.budget, self.wall()))  # fmt: skip
        if out_dir is not None and (self.epoch % cfg.checkpoint_every == 0 or last):
            with contextlib.suppress(Exception):  # the plot is a convenience, never fatal
                write_loss_curve(out_dir / "history.jsonl", out_dir / "loss_curve.png")

    def finish(self) -> str:
        """Close the bar and TensorBoard; returns the "how far it got" summary."""
        out_dir, rank, stop_reason, budget = self.out_dir, self.rank, self.stop_reason, self.budget
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        if (
            out_dir is not None
            and rank == 0
            and stop_reason in ("horizon", "spent")
            and self.checkpoint is None
        ):
            self.checkpoint = out_dir / "latest" if (out_dir / "latest").exists() else None
        lr_now = self.sched.get_last_lr()[0]
        how = {
            "": "finished",
            "budget": "time budget reached",
            "spent": "nothing to do: the run has used its max_train_time (raise it, with reschedule=true to "
            "plan a new schedule)",
            "horizon": "nothing to do: the saved LR schedule already "
            "ended (pass reschedule=true to train on with a new schedule)",
        }.get(stop_reason, f"stopped by {stop_reason}")
        summary = (
            f"{how}: epoch {self.epoch + self.frac:.1f}/{self.cfg.num_epochs}, "
            f"step {self.step}/{self.horizon}, {format_duration(self.wall())} of training"
            + (f" (budget {format_duration(budget)})" if budget > 0 else "")
            + f", lr {lr_now:.2e}"
            + (f", best val {self.best_val:.4f}" if math.isfinite(self.best_val) else "")
            + (f"; checkpoint {self.checkpoint}" if self.checkpoint is not None else "")
        )
        if out_dir is not None and rank == 0 and out_dir.exists():
            summary += "\n" + disk_report(out_dir)
        return summary
