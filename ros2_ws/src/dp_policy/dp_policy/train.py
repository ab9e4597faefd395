"""``dp_train``: train a DP3 / Diffusion Policy from a DP3 zarr dataset.

Usage::

    dp_train --config config/train_simple_dp3.yaml dataset=data/reach.zarr output_dir=runs/reach \\
        num_epochs=300 policy.preset=dp3 policy.num_inference_steps=10

``key=value`` overrides (values parsed as YAML; dotted keys reach into ``policy``) apply on top
of the file. The run directory gets ``latest/`` and ``checkpoints/epoch_NNNN/`` (each a policy
checkpoint: config.json + model.safetensors with EMA weights + normalizer.json) and
``train_state/`` for ``resume=true``. Multi-GPU (DDP)::

    torchrun --nproc_per_node=4 -m dp_policy.train --config cfg.yaml device=cuda
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import yaml

from dp_policy.core.training import TrainConfig, train


def apply_override(cfg: dict[str, Any], item: str) -> None:
    """Apply one ``a.b=value`` override (value parsed as YAML) to a nested dict."""
    if "=" not in item:
        raise ValueError(f"override must look like key=value. Got {item!r}")
    key, raw = item.split("=", 1)
    value = yaml.safe_load(raw) if raw != "" else ""
    parts = key.strip().split(".")
    node = cfg
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"cannot override {key!r}: {p!r} is not a mapping")
    node[parts[-1]] = value


def build_config(config_path: str | None, overrides: list[str]) -> TrainConfig:
    """TrainConfig from a YAML file plus overrides."""
    raw: dict[str, Any] = {}
    if config_path:
        with open(config_path) as f:
            raw = yaml.safe_load(f) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{config_path} must contain a mapping")
    for item in overrides:
        apply_override(raw, item)
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown training keys {unknown}; expected some of {sorted(known)}")
    return TrainConfig(**raw)


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    parser = argparse.ArgumentParser(prog="dp_train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="training YAML (see config/train_*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = build_config(args.config, args.overrides)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        print(f"dp_train: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch

        backend = "nccl" if cfg.device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend)
        if cfg.device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            cfg.device = f"cuda:{local}"
    result = train(cfg)
    if result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
