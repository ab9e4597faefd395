"""CLI: a checkpoint in the simulator without ROS -- fast success rates and per-tick traces.

Runs :func:`dp_sim.core.policy_rollout.run_policy_episode` (policy_node's runner, perception's
preprocessing and control_node's core, stepped on sim time) for seeded episodes and prints one line
per episode and the success rate. The closed loop through the real nodes
(``python -m dp_sim.closed_loop``) stays the evaluation of record; this one is for diagnosis and for
the training CLI's ``eval_command`` hook::

    python -m dp_sim.rollout --checkpoint runs/sim_lift_dp3/latest --task lift --episodes 20
    python -m dp_sim.rollout --checkpoint ... --out out/rollout --traces    # + per-episode .npz traces

Parameters are what launch/sim.launch.py gives each node for the task (:func:`launched_params`);
``--sim/--perception/--policy/--control k=v`` override them. Exit code 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from dp_common.cli import load_yaml_params, parse_overrides

ORACLE = "oracle"  # --checkpoint oracle: the scripted expert on the true poses (dp_sim.core.oracle)


def launched_params(executable: str, cls, task: str) -> dict:
    """The fields of dataclass `cls` that launch/sim.launch.py gives `executable` for `task`.

    Its parameter files and dicts are applied in order, as ROS applies them; keys that are not
    fields of `cls` (use_sim_time, ...) are left out.
    """
    import dataclasses

    from dp_common.launcher import load_launch_file
    from dp_sim.closed_loop import REPO

    launch = load_launch_file(REPO / "launch" / "sim.launch.py")
    args = {a.name: a.default for a in launch.ARGUMENTS} | {"task": task}
    (spec,) = [s for s in launch.node_specs(args) if s.executable == executable]
    names = {f.name for f in dataclasses.fields(cls)}
    params: dict = {}
    for p in spec.parameters:
        params.update({k: v for k, v in p.items() if k in names} if isinstance(p, dict) else
                      load_yaml_params(p, cls))  # fmt: skip
    return params


def _runner(args):
    from dp_policy.core.node_config import PolicyNodeConfig
    from dp_policy.core.runner import runner_from_checkpoint

    pol = {**launched_params("policy_node", PolicyNodeConfig, args.task), **parse_overrides(args.policy)}
    pol.update(checkpoint=str(args.checkpoint), device=args.device, warmup_iters=0)
    cfg = PolicyNodeConfig(**pol)
    if cfg.num_threads > 0:
        import torch

        torch.set_num_threads(cfg.num_threads)
    return runner_from_checkpoint(cfg)


def build(args) -> tuple:
    """(scene, runner, control_cfg, limits, preprocess) from the CLI arguments.

    Every node's parameters are what launch/sim.launch.py gives it for the task, then the CLI's.
    """
    from dp_control.core.config import ControlConfig
    from dp_control.core.limits import default_limits_file, limits_from_config
    from dp_perception.core.config import PerceptionConfig
    from dp_perception.core.preprocess import cloud_preprocessor
    from dp_sim.core.scene import SimScene
    from dp_sim.make_dataset import DEFAULT_SIM_YAML, build_sim_config

    sim_cfg = build_sim_config(DEFAULT_SIM_YAML, {"task": args.task, **parse_overrides(args.sim)})
    pcfg = launched_params("perception_node", PerceptionConfig, sim_cfg.task)
    pcfg.update(parse_overrides(args.perception))
    preprocess, _ = cloud_preprocessor(pcfg)
    scene = SimScene(sim_cfg)
    if str(args.checkpoint) == ORACLE:
        from dp_sim.core.policy_rollout import OracleSource

        runner = OracleSource(scene)
    else:
        runner = _runner(args)
    ctl = launched_params("control_node", ControlConfig, sim_cfg.task)
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
