"""Configuration of the policy runtime (policy_node's parameters) and checkpoint loading (ROS-free).

``PolicyNodeConfig`` is the one typed config of the policy tick: policy_node declares every field as
a ROS parameter, dp_eval's stepped replay builds one for its :class:`~dp_policy.core.runner.PolicyRunner`.
Times are seconds of the node clock (durations); stamps elsewhere are integer ns.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

from dp_policy.core.checkpoint import CheckpointError

DEVICES = ("auto", "cuda", "cpu")


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class PolicyNodeConfig:
    """Parameters of policy_node (defaults in config/policy.yaml). Times in s of the node clock."""

    checkpoint: str = field(default="", metadata=_help("Checkpoint directory (config.json + weights)."))
    device: str = field(default="auto", metadata=_help("auto (cuda when available) | cuda | cpu."))
    rate_hz: float = field(default=10.0, metadata=_help("Inference timer rate on the node clock, Hz."))
    sync_wait_s: float = field(
        default=0.0,
        metadata=_help(
            "Camera sync: a timer tick that expects the next cloud within this time waits for it and "
            "runs inference on its arrival (one chunk per tick, on a fresher cloud: cloud stamp -> "
            "chunk latency = inference instead of up to a camera period more); 0 = run at the tick."
        ),
    )
    obs_timeout_s: float = field(
        default=0.5, metadata=_help("Newest cloud older than this (now - stamp): no chunk, s.")
    )
    future_tolerance_s: float = field(
        default=0.05, metadata=_help("Clouds stamped more than this after now are rejected, s.")
    )
    step_tolerance_s: float = field(
        default=0.04,
        metadata=_help("Older history steps use the cloud closest to newest - k*dt within this, s."),
    )
    joint_tolerance_s: float = field(
        default=0.05,
        metadata=_help("A cloud stamp may be this much after the newest joint state (held), s."),
    )
    autostart: bool = field(default=False, metadata=_help("Publish chunks without ~/activate."))
    num_inference_steps: int = field(
        default=0, metadata=_help("Denoising steps; 0 = the checkpoint's num_inference_steps.")
    )
    inpaint_rows: int = field(
        default=0,
        metadata=_help(
            "Rows from 'now' fixed to the previous chunk resampled at their times (hard "
            "inpainting, together with the observation rows before 'now'); 0 = off."
        ),
    )
    seed: int = field(default=-1, metadata=_help("Noise seed: chunk i uses seed + chunk_id; -1 = unseeded."))
    warmup_iters: int = field(default=2, metadata=_help("Inference runs before the first publish."))
    inference_thread: bool = field(
        default=True,
        metadata=_help(
            "Run the forward pass on a worker thread so joint states and frames keep being received "
            "meanwhile; false = in the timer callback, blocking the executor (for comparison only)."
        ),
    )
    num_threads: int = field(
        default=1,
        metadata=_help(
            "torch CPU threads; 0 = torch default (all cores). 1 avoids OpenMP contention with the "
            "other dp processes on small machines (measured 2 threads 5-30x slower on a loaded 2-core CPU)."
        ),
    )
    publish_markers: bool = field(
        default=True, metadata=_help("Publish dp/markers (needs robot_description + pinocchio).")
    )
    ee_frame: str = field(default="", metadata=_help("Frame drawn in dp/markers; '' = last link."))
    marker_frame: str = field(default="", metadata=_help("Frame of dp/markers; '' = URDF root link."))
    perception_node: str = field(
        default="perception_node",
        metadata=_help("Perception node whose parameters are checked against the checkpoint; '' = skip."),
    )
    strict_perception: bool = field(
        default=False,
        metadata=_help("Refuse (instead of warn) when perception's crop box / voxel size differ."),
    )

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}. Got {self.device!r}")
        for name in ("rate_hz", "obs_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0. Got {value}")
        for name in ("future_tolerance_s", "step_tolerance_s", "joint_tolerance_s", "sync_wait_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 s. Got {value}")
        for name in ("num_inference_steps", "inpaint_rows", "warmup_iters", "num_threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0. Got {getattr(self, name)}")
        if self.seed < -1:
            raise ValueError(f"seed must be >= 0, or -1 for unseeded. Got {self.seed}")


def policy_id_of(path: Path, name: str = "") -> str:
    """`<name or dir name>@<sha256[:8] of the weights>` (what ActionChunk.policy_id carries)."""
    h = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")):
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return f"{name or path.resolve().name}@{h.hexdigest()[:8]}"


def resolve_device(device: str) -> str:
    """auto -> cuda when available else cpu; cuda when unavailable raises CheckpointError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("device 'cuda' requested but torch sees no CUDA device; use auto or cpu")
    return device


def checkpoint_dir(checkpoint: str) -> Path:
    """The checkpoint parameter as an existing directory, else CheckpointError."""
    if not checkpoint:
        raise CheckpointError("parameter 'checkpoint' is empty: set it to a checkpoint directory")
    path = Path(checkpoint).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {str(path)!r} does not exist")
    return path


def load_policy(checkpoint: str, device: str, num_inference_steps: int = 0):
    """Loads `checkpoint` with the core's Policy.from_checkpoint; CheckpointError with a reason."""
    path = checkpoint_dir(checkpoint)
    from dp_policy.core.policy import Policy

    try:
        policy = Policy.from_checkpoint(
            path, device=device, num_inference_steps=num_inference_steps or None, warmup=False
        )
    except Exception as exc:  # any failure to load is fatal for the caller, with the cause
        raise CheckpointError(f"cannot load checkpoint {str(path)!r}: {exc}") from exc
    return policy, path
