"""CLI: roll the scripted expert out in the simulator and write a DP3 zarr for training.

Example::

    python -m dp_sim.make_dataset --out data/sim_reach.zarr --episodes 100 --seed-start 0
    python -m dp_sim.make_dataset --task lift --out data/sim_lift.zarr --episodes 100
    python -m dp_sim.make_dataset --out data/bimodal.zarr --episodes 100 --set variant=bimodal \\
        --perception num_points=1024 use_rgb=true

Clouds go through dp_perception.core.preprocess_cloud (the deployment preprocessing) with the
scene's world<-camera transform; the PerceptionConfig used is stored in the zarr attributes.

Images for the image Diffusion Policy (``--images``): ``data/img`` (T, H, W, 3) uint8 RGB from the
same camera at the same step as the cloud, beside ``data/point_cloud``, ``data/state`` and
``data/action`` (Diffusion Policy's zarr layout). ``--image-shape H W`` resizes them with
``dp_policy.core.resize.fit_image`` -- a center crop to the H:W aspect ratio, then an
area-average resize -- the function policy_node applies to ``camera/image`` at deployment; without
it the camera's native size is stored. The attributes record ``image_shape`` and
``image_source_shape``::

    python -m dp_sim.make_dataset --out data/sim_reach_img.zarr --episodes 200 --images \\
        --image-shape 72 96
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from dp_common.cli import add_image_shape_argument, config_params, load_yaml_params, parse_overrides
from dp_sim.core.dataset import EpisodeConfig, generate_dataset, perception_preprocessor
from dp_sim.core.expert import ExpertConfig
from dp_sim.core.scene import SimConfig


def config_dir() -> Path:
    """dp_sim's config/ folder: next to the sources, else the installed share directory."""
    here = Path(__file__).resolve().parent.parent / "config"
    if (here / "sim.yaml").is_file():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("dp_sim")) / "config"
    except (ImportError, LookupError, ValueError):
        return here


CONFIG_DIR = config_dir()
DEFAULT_SIM_YAML = CONFIG_DIR / "sim.yaml"
DEFAULT_PERCEPTION_YAML = CONFIG_DIR / "perception_sim.yaml"
MANIP_PERCEPTION_YAML = CONFIG_DIR / "perception_sim_manip.yaml"


def default_perception_yaml(task: str) -> Path:
    """The sim's perception params file for `task` (what launch/sim.launch.py gives perception_node)."""
    return DEFAULT_PERCEPTION_YAML if task.startswith("reach") else MANIP_PERCEPTION_YAML


def build_sim_config(yaml_path, overrides: dict) -> SimConfig:
    """SimConfig from yaml (if any) + key=value overrides; unknown keys raise ValueError."""
    names = {f.name for f in dataclasses.fields(SimConfig)}
    bad = set(overrides) - names
    if bad:
        raise ValueError(f"unknown sim config keys {sorted(bad)}; expected some of {sorted(names)}")
    params = load_yaml_params(yaml_path, SimConfig)
    params.update(overrides)
    return SimConfig(**params)


def resize_zarr_images(path: str | Path, shape: tuple[int, int], key: str = "img", block: int = 256) -> None:
    """Resize ``data/<key>`` (T, H, W, 3) uint8 of a zarr store in place to ``shape`` = (h, w).

    Uses ``dp_policy.core.resize.fit_image`` (center crop to the aspect, area resize) in blocks
    of ``block`` frames; records ``image_shape`` and ``image_source_shape`` in the attributes.
    """
    import zarr

    from dp_policy.core.resize import fit_images

    root = zarr.open_group(str(path), mode="r+")
    src = root["data"][key]
    h, w = int(shape[0]), int(shape[1])
    source_shape = [int(v) for v in src.shape[1:3]]
    if source_shape != [h, w]:
        tmp = f"{key}__resized"
        dst = root["data"].create_dataset(
            tmp, shape=(src.shape[0], h, w, 3), chunks=(min(block, max(1, src.shape[0])), h, w, 3),
            dtype=np.uint8, overwrite=True,
        )  # fmt: skip
        for i in range(0, src.shape[0], block):
            dst[i : i + block] = fit_images(src[i : i + block], (h, w))
        del root["data"][key]
        root["data"].move(tmp, key)
    root.attrs.update({"image_shape": [h, w], "image_source_shape": source_shape,
                       "image_resize": "dp_policy.core.resize.fit_image"})  # fmt: skip


def add_task_argument(ap: argparse.ArgumentParser) -> None:
    """`--task` (eval_expert, make_dataset, closed_loop): one of the task registry's names."""
    from dp_sim.core.tasks import TASKS

    ap.add_argument(
        "--task", default=None, choices=list(TASKS), help="task (default: the sim config's, i.e. reach)"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point (console script `make_dataset`)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True, help="output zarr directory (overwritten)")
    add_task_argument(ap)
    ap.add_argument("--episodes", type=int, default=100, help="number of episodes (seeds)")
    ap.add_argument("--seed-start", type=int, default=0, help="first seed; seeds are consecutive")
    ap.add_argument("--sim-config", default=str(DEFAULT_SIM_YAML), help="ROS params yaml")
    ap.add_argument("--set", nargs="*", default=[], help="SimConfig overrides key=value")
    ap.add_argument("--expert", nargs="*", default=[], help="ExpertConfig overrides key=value")
    ap.add_argument(
        "--perception-config",
        default=None,
        help="params yaml with PerceptionConfig fields (default: the sim's perception_sim.yaml,\n"
        "perception_sim_manip.yaml for lift / place / place_bimodal)",
    )
    ap.add_argument("--perception", nargs="*", default=[], help="PerceptionConfig overrides")
    ap.add_argument("--dt", type=float, default=0.1, help="step period (s)")
    ap.add_argument(
        "--max-steps", type=int, default=None, help="steps before giving up (default: task timeout / dt)"
    )
    ap.add_argument("--hold-steps", type=int, default=3)
    ap.add_argument("--keep-failures", action="store_true")
    ap.add_argument("--images", action="store_true", help="also store data/img (T,H,W,3) uint8 RGB")
    add_image_shape_argument(ap)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        overrides = parse_overrides(args.set)
        if args.task:
            overrides["task"] = args.task
        sim_cfg = build_sim_config(args.sim_config, overrides)
        expert_cfg = ExpertConfig(**parse_overrides(args.expert))
        max_steps = args.max_steps or int(round(sim_cfg.timeout_s / args.dt))
        ep_cfg = EpisodeConfig(args.dt, max_steps, args.hold_steps, args.keep_failures)
        from dp_perception.core import PerceptionConfig

        preprocess, perception_dict = perception_preprocessor(
            config_params(
                args.perception_config or default_perception_yaml(sim_cfg.task),
                PerceptionConfig,
                args.perception,
            )
        )
        if args.episodes < 1:
            raise ValueError(f"--episodes: expected >= 1. Got {args.episodes}")
        if args.image_shape is not None and (not args.images or min(args.image_shape) < 1):
            raise ValueError(f"--image-shape: expected --images and two sizes >= 1. Got {args.image_shape}")
    except (ValueError, TypeError) as exc:
        print(f"make_dataset: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"make_dataset: dp_perception is needed for preprocessing: {exc}", file=sys.stderr)
        return 2
    seeds = range(args.seed_start, args.seed_start + args.episodes)
    t0 = time.monotonic()
    summary = generate_dataset(
        args.out,
        seeds,
        preprocess,
        sim_cfg,
        expert_cfg,
        ep_cfg,
        extra_attrs={"perception_config": perception_dict, "command": " ".join(sys.argv)},
        keep_images=args.images,
        progress=not args.no_progress,
    )
    if args.images and args.image_shape is not None and summary["episodes"] > 0:
        resize_zarr_images(args.out, tuple(args.image_shape))
    summary["seconds"] = round(time.monotonic() - t0, 1)
    summary["out"] = str(args.out)
    print(json.dumps(summary))
    return 0 if summary["episodes"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
