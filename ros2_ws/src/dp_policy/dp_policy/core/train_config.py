"""Training run configuration: :class:`TrainConfig` (every ``dp_train`` key), durations, user errors."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from dp_policy.core.config import PolicyConfig

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
