"""Command-line helpers shared by the dataset and evaluation tools (key=value overrides, params yaml)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def parse_value(text: str):
    """Parse a CLI value: JSON (numbers, lists, true/false) else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        if "," in text:
            return [parse_value(t) for t in text.split(",")]
        return text


def parse_overrides(items: list[str] | None) -> dict:
    """['a=1', 'b=[0,1]'] -> {'a': 1, 'b': [0, 1]}; raises ValueError on a missing '='."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"expected key=value. Got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_value(v.strip())
    return out


def load_yaml_params(path: str | Path | None, cls) -> dict:
    """Fields of dataclass `cls` found in a ROS params yaml (any node's ros__parameters)."""
    if not path:
        return {}
    import yaml

    p = Path(path)
    if not p.is_file():
        return {}
    doc = yaml.safe_load(p.read_text()) or {}
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict = {}
    for node in doc.values():
        params = (node or {}).get("ros__parameters", {}) if isinstance(node, dict) else {}
        out.update({k: v for k, v in params.items() if k in names})
    return out


def config_params(yaml_path, cls, cli_items: list[str] | None) -> dict:
    """Fields of dataclass `cls` from a params yaml (if any), then CLI key=value overrides."""
    params = load_yaml_params(yaml_path, cls)
    params.update(parse_overrides(cli_items))
    return params


def add_image_shape_argument(ap: argparse.ArgumentParser) -> None:
    """``--image-shape H W`` (make_dataset and bag_to_zarr): how data/img is sized."""
    ap.add_argument(
        "--image-shape",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        default=None,
        help="fit data/img to H x W: center crop to the H:W aspect, then area resize\n"
        "(dp_policy.core.resize.fit_image, as policy_node does); default: keep the camera size",
    )
