"""CLI: success rate of the scripted expert over seeded episodes (no rendering).

Example: `python -m dp_sim.eval_expert --episodes 100 --seed-start 0 --set variant=bimodal`
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from dp_common.cli import parse_overrides
from dp_sim.core import ReachExpert, SimScene
from dp_sim.make_dataset import DEFAULT_SIM_YAML, build_sim_config


def evaluate(scene: SimScene, expert: ReachExpert, seeds, dt: float = 0.1) -> dict:
    """Roll the expert out per seed until success or the episode timeout."""
    times, failures, targets = [], [], []
    for seed in seeds:
        scene.reset(seed)
        expert.reset(scene.q, scene.goal_points(), seed)
        while scene.success_time is None and not scene.is_timeout():
            scene.set_command(expert.act(dt))
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
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--sim-config", default=str(DEFAULT_SIM_YAML))
    ap.add_argument("--set", nargs="*", default=[], help="SimConfig overrides key=value")
    ap.add_argument("--min-success", type=float, default=0.95)
    args = ap.parse_args(argv)
    cfg = build_sim_config(args.sim_config, parse_overrides(args.set))
    scene = SimScene(cfg)
    res = evaluate(scene, ReachExpert(kin=scene.kin), range(args.seed_start, args.seed_start + args.episodes))
    res["variant"] = cfg.variant
    print(json.dumps(res))
    return 0 if res["success_rate"] >= args.min_success else 1


if __name__ == "__main__":
    sys.exit(main())
