"""CLI: success rate of the scripted expert of a task over seeded episodes (no rendering).

Example: `python -m dp_sim.eval_expert --task lift --episodes 200 --seed-start 0`

Measured (seeds 0-199, default config, `python -m dp_sim.eval_expert --task <t> --episodes 200`, 2-core
machine): lift 200/200 (mean 4.8 s to success, 13 s wall), place 200/200 (6.2 s, 19 s wall),
place_bimodal 200/200 (6.0 s, tray 1 in 56.5 % of episodes, 18 s wall), reach 200/200,
reach_bimodal 200/200.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from dp_common.cli import parse_overrides
from dp_sim.core import SimScene, expert_step, make_expert
from dp_sim.make_dataset import DEFAULT_SIM_YAML, add_task_argument, build_sim_config


def evaluate(scene: SimScene, expert, seeds, dt: float = 0.1) -> dict:
    """Roll the expert out per seed until success or the episode timeout."""
    times, failures, targets = [], [], []
    for seed in seeds:
        scene.reset(seed)
        expert.start(scene)
        while scene.success_time is None and not scene.is_timeout():
            expert_step(scene, expert, dt)
            scene.step(dt)
        if scene.success_time is None:
            failures.append(int(seed))
        else:
            times.append(scene.success_time)
        targets.append(expert.target_index)
    n = len(times) + len(failures)
    return {
        "episodes": n,
        "success_rate": len(times) / n if n else float("nan"),
        "mean_time_to_success_s": float(np.mean(times)) if times else None,
        "failed_seeds": failures,
        "target_fraction": float(np.mean(targets)) if targets else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit code 1 when the success rate is below --min-success."""
    ap = argparse.ArgumentParser(description=__doc__)
    add_task_argument(ap)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--sim-config", default=str(DEFAULT_SIM_YAML))
    ap.add_argument("--set", nargs="*", default=[], help="SimConfig overrides key=value")
    ap.add_argument("--min-success", type=float, default=0.95)
    args = ap.parse_args(argv)
    overrides = parse_overrides(args.set)
    if args.task:
        overrides["task"] = args.task
    cfg = build_sim_config(args.sim_config, overrides)
    scene = SimScene(cfg)
    t0 = time.monotonic()
    expert = make_expert(cfg.task, kin=scene.kin)
    res = evaluate(scene, expert, range(args.seed_start, args.seed_start + args.episodes))
    res["task"] = cfg.task
    res["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(res))
    return 0 if res["success_rate"] >= args.min_success else 1


if __name__ == "__main__":
    sys.exit(main())
