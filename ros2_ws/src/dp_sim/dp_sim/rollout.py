"""CLI: a checkpoint in the simulator without ROS -- fast, deterministic success rates and per-tick traces.

Runs :func:`dp_sim.core.policy_rollout.run_policy_episode` (policy_node's runner, perception's
preprocessing and control_node's core, stepped on sim time) for seeded episodes and prints one line
per episode and the success rate. The closed loop through the real nodes
(``python -m dp_sim.closed_loop``) stays the evaluation of record; this one is for diagnosis and for
the training CLI's ``eval_command`` hook::

    python -m dp_sim.rollout --checkpoint runs/sim_lift_dp3/latest --task lift --episodes 20
    python -m dp_sim.rollout --checkpoint ... --out out/rollout --traces    # + per-episode .npz traces

Parameters come from the files the launch file gives the nodes (dp_sim/config/sim.yaml, the task's
perception yaml, dp_policy/config/policy.yaml, dp_control/config/control.yaml with sim.launch.py's
overrides); ``--sim/--policy/--control k=v`` override them. Exit code 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from dp_common.cli import config_params, load_yaml_params, parse_overrides

# What launch/sim.launch.py sets on control_node beside control.yaml.
SIM_CONTROL_OVERRIDES = {"max_start_distance": 0.3, "handover": "ensemble"}
ORACLE = "oracle"  # --checkpoint oracle: the scripted expert on the true poses (dp_sim.core.oracle)


def _share(pkg: str, *parts: str) -> Path:
    here = Path(__file__).resolve().parents[2] / pkg / "config"
    return here.joinpath(*parts)


def _runner(args):
    from dp_policy.core.node_config import PolicyNodeConfig
    from dp_policy.core.runner import runner_from_checkpoint

    pol = config_params(_share("dp_policy", "policy.yaml"), PolicyNodeConfig, args.policy)
    pol.update(checkpoint=str(args.checkpoint), device=args.device, warmup_iters=0)
    cfg = PolicyNodeConfig(**pol)
    if cfg.num_threads > 0:
        import torch

        torch.set_num_threads(cfg.num_threads)
    return runner_from_checkpoint(cfg)


def build(args) -> tuple:
    """(scene, runner, control_cfg, limits, preprocess) from the CLI arguments."""
    from dp_control.core.config import ControlConfig
    from dp_control.core.limits import default_limits_file, limits_from_config
    from dp_perception.core.config import PerceptionConfig
    from dp_perception.core.preprocess import cloud_preprocessor
    from dp_sim.core.scene import SimScene
    from dp_sim.make_dataset import DEFAULT_SIM_YAML, build_sim_config, default_perception_yaml

    sim_cfg = build_sim_config(DEFAULT_SIM_YAML, {"task": args.task, **parse_overrides(args.sim)})
    pcfg = load_yaml_params(default_perception_yaml(sim_cfg.task), PerceptionConfig)
    pcfg.update(parse_overrides(args.perception))
    preprocess, _ = cloud_preprocessor(pcfg)
    scene = SimScene(sim_cfg)
    if str(args.checkpoint) == ORACLE:
        from dp_sim.core.policy_rollout import OracleSource

        runner = OracleSource(scene)
    else:
        runner = _runner(args)
    ctl = {**load_yaml_params(_share("dp_control", "control.yaml"), ControlConfig), **SIM_CONTROL_OVERRIDES}
    ctl.update(parse_overrides(args.control))
    ctl_cfg = ControlConfig(**ctl)
    limits = limits_from_config(ctl_cfg, ctl_cfg.joint_limits_file or default_limits_file())
    return scene, runner, ctl_cfg, limits, preprocess


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments."""
    ap = argparse.ArgumentParser(
        prog="python -m dp_sim.rollout",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--checkpoint", required=True, help="checkpoint directory, or 'oracle'")
    ap.add_argument("--task", default="lift", help="simulated task (default lift)")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed-start", type=int, default=10000, help="first seed (held out: demos use 0..)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--latency", type=float, default=0.06, help="cloud stamp -> chunk at control (sim s)")
    ap.add_argument("--out", default="", help="folder for summary.json (and traces with --traces)")
    ap.add_argument("--traces", action="store_true", help="write <out>/episode_<seed>.npz per episode")
    ap.add_argument("--sim", nargs="*", default=[], metavar="K=V", help="SimConfig overrides")
    ap.add_argument("--policy", nargs="*", default=[], metavar="K=V", help="policy_node parameter overrides")
    ap.add_argument("--perception", nargs="*", default=[], metavar="K=V", help="PerceptionConfig overrides")
    ap.add_argument(
        "--control", nargs="*", default=[], metavar="K=V", help="control_node parameter overrides"
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.episodes < 1:
        ap.error(f"--episodes: expected >= 1. Got {args.episodes}")
    if args.traces and not args.out:
        ap.error("--traces needs --out")
    from dp_policy.core.checkpoint import CheckpointError
    from dp_sim.core.policy_rollout import RolloutConfig, run_policy_episode

    try:
        scene, runner, ctl_cfg, limits, preprocess = build(args)
    except (CheckpointError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"dp_sim.rollout: {exc}", file=sys.stderr)
        return 2
    rcfg = RolloutConfig(latency_s=args.latency)
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    results = []
    t0 = time.perf_counter()
    for seed in range(args.seed_start, args.seed_start + args.episodes):
        w0 = time.perf_counter()
        res = run_policy_episode(scene, runner, ctl_cfg, limits, preprocess, seed, rcfg, trace=args.traces)
        tr = res.pop("trace", None)
        if out and tr is not None:
            np.savez_compressed(out / f"episode_{seed}.npz", **tr)
        res["wall_s"] = round(time.perf_counter() - w0, 2)
        results.append(res)
        st = f"success at {res['success_time']:.2f} s" if res["success"] else "FAIL"
        print(f"seed {seed}: {st}  chunks {res['chunks']}  control {res['control_state']}  {res['wall_s']} s",
              flush=True)  # fmt: skip
    n_ok = sum(r["success"] for r in results)
    summary = {
        "checkpoint": str(args.checkpoint),
        "task": args.task,
        "episodes": len(results),
        "successes": n_ok,
        "success_rate": n_ok / len(results),
        "wall_s": round(time.perf_counter() - t0, 1),
        "results": results,
    }
    if out:
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"success_rate {summary['success_rate']:.3f} ({n_ok}/{len(results)}) on {args.task}, "
          f"{summary['wall_s']} s")  # fmt: skip
    scene.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
