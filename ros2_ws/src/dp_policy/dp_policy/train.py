"""``dp_train``: train a DP3 / Diffusion Policy from a DP3 zarr dataset.

Usage::

    dp_train --config config/train_simple_dp3.yaml dataset=data/reach.zarr output_dir=runs/reach \\
        num_epochs=300 policy.preset=dp3 policy.num_inference_steps=10

``key=value`` overrides (values parsed as YAML; dotted keys reach into ``policy``) apply on top
of the file; ``dp_train --help`` lists every key with its type, default and meaning. The run
directory gets ``latest/``, the newest ``keep_last`` ``checkpoints/epoch_NNNN/`` and ``best/`` (the
lowest validation loss; each a policy checkpoint: config.json + model.safetensors with EMA weights +
normalizer.json), ``train_state/`` for ``resume=true``, ``history.jsonl`` (one line per epoch) and
``loss_curve.png`` (train / val loss and LR).

Budgets and stops: ``max_train_time=30m`` plans the cosine LR schedule so that it reaches 0 when the
budget ends (the step time is measured over the first 50 steps, or the first epoch with its
validation and checkpoint when that is shorter; the horizon is then ``step + 0.97 * time left /
s_per_step``, capped by ``num_epochs`` / ``max_train_steps``). SIGINT, SIGTERM or the end of the
budget finish the current step, save a complete checkpoint and exit 0 with a line saying how far the
run got. Running the same command again resumes on the SAME schedule (its horizon is saved in
``train_state/``); ``reschedule=true`` re-plans it (a warned warm restart). The budget counts the
training time of all invocations of the run. Multi-GPU (DDP)::

    torchrun --nproc_per_node=4 -m dp_policy.train --config cfg.yaml device=cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from typing import Any

import yaml

from dp_policy.core.config import PolicyConfig
from dp_policy.core.train_config import DATA_KEYS, PRESET_HELP, TrainConfig, TrainError
from dp_policy.core.training import train


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


def config_keys() -> list[tuple[str, str, Any, str]]:
    """(key, type, default, help) of every training and policy key, from the config dataclasses.

    Training keys first, then ``policy.preset`` and every PolicyConfig / EncoderConfig field as
    ``policy.x`` / ``policy.encoder.x``; keys the trainer takes from the dataset (DATA_KEYS) are left
    out. ``dp_train --help`` prints this table; a test checks every YAML against it.
    """
    rows: list[tuple[str, str, Any, str]] = []

    def add(prefix: str, cls: type, skip: tuple[str, ...] = ()) -> None:
        for f in dataclasses.fields(cls):
            key = prefix + f.name
            if f.name in skip or key.removeprefix("policy.") in DATA_KEYS:
                continue
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            else:
                default = f.default
            if dataclasses.is_dataclass(default):
                add(key + ".", type(default))
                continue
            rows.append((key, str(f.type), default, f.metadata.get("help", "")))

    add("", TrainConfig, skip=("policy",))
    rows.append(("policy.preset", "str", "simple_dp3", PRESET_HELP))
    add("policy.", PolicyConfig)
    return rows


def help_epilog() -> str:
    """The key table of ``--help``."""
    lines = ["keys (YAML or key=value; nested as policy.x / policy.encoder.x):"]
    for key, typ, default, text in config_keys():
        lines.append(f"  {key} ({typ}, default {json.dumps(default)}): {text}")
    lines.append(
        "taken from the dataset: "
        + ", ".join(f"policy.{k}" for k in DATA_KEYS if k != "name")
        + "; policy.name "
        "is the preset."
    )
    lines.append(
        "Errors print one line 'dp_train: <problem>; <fix>' and exit 2. SIGINT / SIGTERM / the end of "
        "max_train_time finish the step, save latest/ + train_state/ and exit 0; rerun the same command "
        "to resume."
    )
    return "\n".join(lines)


def check_keys(raw: dict[str, Any]) -> None:
    """Unknown keys anywhere (top level, policy, policy.encoder) -> ValueError naming them."""
    known = {k for k, *_ in config_keys()} | {"policy"}
    data_keys = {f"policy.{k}" for k in DATA_KEYS}

    def walk(prefix: str, node: dict[str, Any]) -> list[str]:
        bad = []
        for k, v in node.items():
            key = prefix + str(k)
            if key in ("policy", "policy.encoder", "policy.perception") and isinstance(v, dict):
                if key != "policy.perception":  # PerceptionConfig fields, checked by dp_perception
                    bad += walk(key + ".", v)
            elif key not in known and key not in data_keys:
                bad.append(key)
        return bad

    unknown = walk("", raw)
    if unknown:
        raise ValueError(
            f"unknown training keys {unknown}; expected some of the keys dp_train --help lists "
            f"(training keys: {sorted(k.name for k in dataclasses.fields(TrainConfig))})"
        )


_TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "str | float": (str, int, float),
}


def check_types(raw: dict[str, Any]) -> None:
    """Values of the wrong kind (``batch_size: abc``) -> ValueError; ``1e-4`` (text to YAML) -> float."""
    for key, typ, _default, _help in config_keys():
        parent: Any = None
        node: Any = raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            parent, node = node, node[part]
        else:
            ok = _TYPE_CHECKS.get(typ)
            if typ.startswith("list"):
                ok = (list,)
            elif typ.startswith("dict"):
                ok = (dict,)
            if typ == "float" and isinstance(node, str):
                try:  # YAML 1.1 reads 1e-4 (no dot) as a string
                    parent[key.split(".")[-1]] = node = float(node)
                except ValueError:
                    pass
            bad_bool = isinstance(node, bool) and bool not in (ok or ())
            if ok is not None and (not isinstance(node, ok) or bad_bool):
                raise ValueError(f"{key} must be {typ}. Got {node!r}")


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
    check_keys(raw)
    check_types(raw)
    return TrainConfig(**raw)


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    parser = argparse.ArgumentParser(
        prog="dp_train",
        description=__doc__.split("\n")[0],
        epilog=help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="training YAML (see config/train_*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = build_config(args.config, args.overrides)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        msg = " ".join(str(exc).split())
        if "unknown training keys" in msg:
            fix = "fix the key's spelling (dp_train --help lists every key)"
        elif isinstance(exc, OSError | yaml.YAMLError):
            fix = "pass --config with a readable YAML mapping (see config/train_*.yaml)"
        else:
            fix = "fix the value in the YAML or the key=value override (dp_train --help lists every key)"
        print(f"dp_train: {msg}; {fix}", file=sys.stderr)
        return 2
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch

        backend = "nccl" if cfg.device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend)
        if cfg.device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            cfg.device = f"cuda:{local}"
    try:
        result = train(cfg)
    except TrainError as exc:
        print(f"dp_train: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C: no checkpoint of the current step
        print(
            f"dp_train: aborted by a second Ctrl-C; the last complete checkpoint: {cfg.output_dir}/latest",
            file=sys.stderr,
        )
        return 130
    if result.summary:
        print(f"dp_train: {result.summary}", flush=True)
    if result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
