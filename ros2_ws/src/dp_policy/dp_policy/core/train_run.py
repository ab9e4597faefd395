"""Run management of a training run: safe stops, the budget planner, checkpoint pruning, reports.

Everything around the optimizer loop of :func:`dp_policy.core.training.train` that does not touch
the model: SIGINT / SIGTERM handling, planning the LR horizon from a wall-clock budget, the
progress line, disk usage, the loss-curve PNG, TensorBoard and the closed-loop evaluation hook.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import torch

from dp_policy.core.train_config import format_duration

# A run's log lines keep one name, the one dp_train prints ("dp_policy.core.training: ...").
logger = logging.getLogger("dp_policy.core.training")


def dist_info() -> tuple[int, int]:
    """(rank, world size) of the initialized torch.distributed process group ((0, 1) when none)."""
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


def plan_horizon(step: int, seconds_per_step: float, budget_left_s: float, cap: int) -> int:
    """The budget rule: the cosine horizon is the step the run reaches when the budget ends.

    ``horizon = step + floor(0.97 * budget_left_s / seconds_per_step)`` (3% kept for the final
    validation and checkpoint), capped by ``num_epochs`` / ``max_train_steps``. ``train`` plans first
    after 50 steps and 5% of the budget (until then the warm-up runs; it does not depend on the
    horizon), then re-plans every 2% of the budget (:class:`BudgetPlanner`): a machine that gets
    busier or freer part-way still ends its cosine at the budget's end instead of being cut mid-decay
    or finishing early.
    """
    fit = int(0.97 * max(0.0, budget_left_s) / max(seconds_per_step, 1e-9))
    return max(step + 1, min(cap, step + fit))


class BudgetPlanner:
    """When to (re-)plan the LR horizon, and the step time to plan with.

    The step time is measured over the recent ``window_frac`` of the budget (validation, checkpoints
    and logging included; from the invocation's first step while less has passed), so a change of
    load shows within minutes but one slow epoch end does not swing the plan.

    Args:
        budget_s: the wall-clock budget [s] (``max_train_time``).
        wall0: training seconds before this invocation (a resumed run's), step0: its first step.
        first_frac / every_frac / window_frac: first plan, re-plan period and measuring window as
            fractions of the budget.
    """

    def __init__(
        self,
        budget_s: float,
        wall0: float,
        step0: int,
        *,
        first_frac: float = 0.05,
        every_frac: float = 0.02,
        window_frac: float = 0.10,
        min_steps: int = 50,
    ) -> None:
        self.budget = float(budget_s)
        self.first, self.every, self.window = (
            first_frac * budget_s,
            every_frac * budget_s,
            window_frac * budget_s,
        )
        self.min_steps = int(min_steps)
        self.wall0, self.step0 = float(wall0), int(step0)
        self.samples: list[tuple[float, int]] = [(float(wall0), int(step0))]
        self.last_plan: float | None = None

    def due(self, wall: float, step: int) -> bool:
        """True when the horizon should be (re-)planned now (``wall``: training seconds of the run)."""
        if self.budget <= 0 or step - self.step0 < self.min_steps:
            return False
        if self.last_plan is None:
            return wall - self.wall0 >= self.first
        return wall - self.last_plan >= self.every

    def seconds_per_step(self, wall: float, step: int) -> float:
        """Wall seconds per step over the recent window (at least the invocation so far if shorter)."""
        ref = self.samples[0]
        for w, s in self.samples:
            if wall - w >= self.window and s < step:
                ref = (w, s)
        return (wall - ref[0]) / max(1, step - ref[1])

    def planned(self, wall: float, step: int) -> None:
        """Record a plan made at ``wall`` / ``step`` (a sample of the step time too)."""
        self.last_plan = wall
        self.samples.append((float(wall), int(step)))
        # keep the newest sample older than the window, and everything newer
        while len(self.samples) > 2 and wall - self.samples[1][0] >= self.window:
            self.samples.pop(0)


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


def tensorboard_writer(out_dir: Path | None):
    """A SummaryWriter in ``out_dir/tensorboard`` when tensorboard is installed (optional)."""
    if out_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: the PNG + history.jsonl only
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


def plan_schedule(sched, step: int, s_per_step: float, budget_left: float, cap: int, warmup: int, bar,
                  *, first: bool = True, world: int = 1) -> int:  # fmt: skip
    """Set the LR schedule's horizon from the budget (:func:`plan_horizon`), log it; returns it.

    The first plan is logged; a re-plan (``first=False``) continues the cosine from its value now
    (:meth:`~dp_policy.core.train_state.CosineWithWarmup.retarget`) and is logged when it moves the
    horizon by more than 2%. With ``world > 1`` every rank takes the smallest rank's horizon.
    """
    horizon = plan_horizon(step, s_per_step, budget_left, cap)
    if world > 1:
        import torch

        h = torch.tensor([float(horizon)])
        torch.distributed.all_reduce(h, op=torch.distributed.ReduceOp.MIN)
        horizon = int(h.item())
    lam = sched.lr_lambdas[0]
    old = lam.total
    lam.retarget(step, horizon)
    if bar is not None:
        bar.total = horizon
        bar.refresh()
    if first:
        logger.info(
            "budget: %.3f s/step measured -> LR schedule planned for %d steps (cosine reaches 0 in ~%s)%s",
            s_per_step, horizon, format_duration((horizon - step) * s_per_step),
            " (capped by num_epochs / max_train_steps)" if horizon == cap else "",
        )  # fmt: skip
    elif abs(horizon - old) > 0.02 * max(1, old):
        logger.info(
            "budget: %.3f s/step now -> LR schedule re-planned from %d to %d steps (cosine reaches 0 in ~%s)",
            s_per_step, old, horizon, format_duration((horizon - step) * s_per_step),
        )  # fmt: skip
    if first and warmup >= horizon:
        logger.warning(
            "lr_warmup_steps %d >= the %d steps the budget allows: lower lr_warmup_steps", warmup, horizon
        )
    return horizon


def progress_line(rec: dict, num_epochs: int, val: float, has_val: bool, horizon: int, step: int,
                  s_per_step: float, budget: float, wall_s: float) -> str:  # fmt: skip
    """The plain periodic progress line: epoch, step, losses, success, LR, epoch time and ETA."""
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
