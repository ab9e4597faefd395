"""Checkpoint directories: ``config.json`` + ``model.safetensors`` (EMA weights) + ``normalizer.json``.

Never unpickles: weights are safetensors, everything else JSON. Loading checks that every file is
present and consistent with the config and names the problem otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from dp_policy.core.config import PolicyConfig
from dp_policy.core.model import DiffusionPolicyModel
from dp_policy.core.normalizer import Normalizer
from dp_policy.core.weights import head, state_dict_mismatch

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
NORMALIZER_FILE = "normalizer.json"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint directory is missing files or they do not match each other."""


def save_checkpoint(
    path: str | Path,
    cfg: PolicyConfig,
    model: DiffusionPolicyModel,
    normalizer: Normalizer,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory (weights of ``model``, usually the EMA copy)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format_version": FORMAT_VERSION, "policy": cfg.to_dict(), "extra": extra or {}}
    tmp = path / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(path / WEIGHTS_FILE)
    normalizer.save(path / NORMALIZER_FILE)
    (path / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    return path


def _check_normalizer(cfg: PolicyConfig, norm: Normalizer) -> None:
    need = {"action": cfg.action_dim, "agent_pos": cfg.state_dim}
    if cfg.encoder.type == "dp3_pointnet" and cfg.normalize_points:
        need["point_cloud"] = 3
    for key, dim in need.items():
        if key not in norm.stats:
            raise CheckpointError(f"{NORMALIZER_FILE}: missing entry {key!r} (has {norm.keys()})")
        if norm.dim(key) != dim:
            raise CheckpointError(
                f"{NORMALIZER_FILE}: {key!r} has {norm.dim(key)} channels, config expects {dim}"
            )


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[PolicyConfig, DiffusionPolicyModel, Normalizer, dict[str, Any]]:
    """Read and validate a checkpoint directory -> (config, model in eval mode, normalizer, extra)."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {str(path)!r} does not exist")
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE, NORMALIZER_FILE) if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} is missing {missing}")
    try:
        meta = json.loads((path / CONFIG_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{CONFIG_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or "policy" not in meta:
        raise CheckpointError(f"{CONFIG_FILE} must be an object with a 'policy' entry")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{CONFIG_FILE}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    try:
        cfg = PolicyConfig.from_dict(meta["policy"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{CONFIG_FILE}: invalid policy config: {exc}") from exc
    try:
        norm = Normalizer.load(path / NORMALIZER_FILE)
    except (json.JSONDecodeError, ValueError) as exc:
        raise CheckpointError(f"{NORMALIZER_FILE}: {exc}") from exc
    _check_normalizer(cfg, norm)
    try:
        state = load_file(str(path / WEIGHTS_FILE), device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{WEIGHTS_FILE} could not be read: {exc}") from exc
    model = DiffusionPolicyModel(cfg, load_pretrained=False)  # weights come from the checkpoint
    missing_k, unexpected, bad_shape = state_dict_mismatch(model.state_dict(), state)
    if missing_k or unexpected:
        raise CheckpointError(
            f"{WEIGHTS_FILE} does not match the config: missing {head(missing_k, 5)}"
            f" unexpected {head(unexpected, 5)}"
        )
    if bad_shape:
        k, got, want = bad_shape
        raise CheckpointError(f"{WEIGHTS_FILE}: {k} has shape {got}, config expects {want}")
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    return cfg, model, norm, dict(meta.get("extra") or {})
