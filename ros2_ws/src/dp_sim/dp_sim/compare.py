"""Several policies on the same seeded simulator episodes: one table.

    python -m dp_sim.compare --checkpoint checkpoints/sim_reach_dp3 \
        --checkpoint checkpoints/sim_reach_image_dp --episodes 20 --out out/compare
    python -m dp_sim.compare --checkpoint checkpoints/sim_lift_dp3 --checkpoint <blind> --oracle \
        --episodes 50 -- --task lift

Each checkpoint runs through ``dp_sim.closed_loop`` (the real sim, perception, policy and control
nodes of ``launch/sim.launch.py``, each in its own process) on the same seeds; the table gives per
policy its closed-loop success rate and mean time to success, its training cost (wall time and steps
recorded in the checkpoint by ``dp_train``) and its inference latency measured inside
``policy_node`` (p50 / p99 on the wall clock, read from ``/diagnostics``) with the cloud/image stamp
to chunk publication latency (sim clock), and on place_bimodal the fraction of episodes that head
between the trays (:mod:`dp_sim.core.metrics`). Writes ``compare.json`` and ``compare.md`` under
``--out`` and each run's own report under ``--out/<checkpoint name>/``.

Baselines in the same table: ``--oracle`` adds the oracle (``dp_sim.core.oracle``: the scripted
expert given the true cube and tray poses, through the same control_node; the ceiling perception
should approach); the blind state-only baseline is a checkpoint whose encoder reads no points
(``encoder.type: lowdim``, shown as "lowdim (blind)"); the MSE regression baseline is a checkpoint
with ``objective: regression`` (the objective column).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

from dp_sim.closed_loop import DEFAULT_CHECKPOINT, ORACLE, REPO

ENCODER_LABELS = {"lowdim": "lowdim (blind)"}


def checkpoint_info(ckpt: pathlib.Path) -> dict:
    """Policy name, encoder, parameter count and training record of a checkpoint directory."""
    if str(ckpt) == ORACLE:
        return {"name": ORACLE, "encoder": "true poses", "objective": "scripted expert", "parameters": None,
                "train_steps": None, "train_wall_s": None}  # fmt: skip
    meta = json.loads((ckpt / "config.json").read_text())
    policy, extra = meta.get("policy", {}), meta.get("extra", {})
    n_params = None
    try:
        from safetensors import safe_open

        with safe_open(str(ckpt / "model.safetensors"), framework="numpy") as f:
            n_params = sum(int(_numel(f.get_slice(k).get_shape())) for k in f.keys())  # noqa: SIM118
    except (OSError, ImportError, ValueError):
        pass
    return {
        "name": policy.get("name", ckpt.name),
        "encoder": ENCODER_LABELS.get(enc := policy.get("encoder", {}).get("type", "?"), enc),
        "objective": policy.get("objective", "?"),
        "parameters": n_params,
        "train_steps": extra.get("step"),
        "train_wall_s": extra.get("train_wall_s"),
    }


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _fmt(value, spec: str = "", none: str = "n/a") -> str:
    if value is None or value == "":
        return none
    try:
        return format(float(value), spec) + (" s" if spec == ".2f" else "")
    except (TypeError, ValueError):
        return str(value)


def table(rows: list[dict]) -> str:
    """Markdown table of the comparison rows."""
    head = (
        "| policy | encoder | objective | success | mean time to success | between trays | "
        "training (wall, steps) | inference p50 / p99 (wall) | stamp -> chunk p50 / p99 (sim) |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        train = "n/a"
        if r.get("train_wall_s") is not None:
            train = f"{float(r['train_wall_s']) / 60:.0f} min, {r.get('train_steps')} steps"
        frac = r.get("between_trays_fraction")
        between = "n/a" if frac is None else f"{100 * float(frac):.0f}%"
        lines.append(
            f"| {r['checkpoint']} | {r['encoder']} | {r.get('objective', 'n/a')} | {r['successes']}/"
            f"{r['episodes']} ({100 * r['success_rate']:.0f}%) | "
            f"{_fmt(r['mean_time_to_success_s'], '.2f')} | {between} | {train} | "
            f"{_fmt(r['inference_p50_ms'], '.0f')} / {_fmt(r['inference_p99_ms'], '.0f')} ms | "
            f"{_fmt(r['stamp_to_publish_p50_ms'], '.0f')} / {_fmt(r['stamp_to_publish_p99_ms'], '.0f')} ms |"
        )
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see module docstring)."""
    ap = argparse.ArgumentParser(description="compare policies on the same seeded simulator episodes")
    ap.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="checkpoint directory (repeat; default: the shipped DP3 checkpoint) or 'oracle'",
    )
    ap.add_argument("--oracle", action="store_true", help="add the oracle baseline (true object poses)")
    ap.add_argument("--episodes", type=int, default=20, help="seeded episodes per policy")
    ap.add_argument("--seed-start", type=int, default=10000, help="first seed (held out from training)")
    ap.add_argument("--out", default=str(REPO / "out" / "compare"), help="report directory")
    ap.add_argument(
        "closed_loop_args",
        nargs=argparse.REMAINDER,
        help="after '--': further dp_sim.closed_loop options (e.g. -- --real-time-factor 0.5)",
    )
    args = ap.parse_args(argv)
    names = args.checkpoint or ([] if args.oracle else [str(DEFAULT_CHECKPOINT)])
    ckpts = [pathlib.Path(c) for c in names + ([ORACLE] if args.oracle and ORACLE not in names else [])]
    for c in ckpts:
        if str(c) != ORACLE and not (c / "config.json").is_file():
            print(f"error: no checkpoint at {c} (expected config.json)", file=sys.stderr)
            return 2
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    extra = [a for a in args.closed_loop_args if a != "--"]
    rows = []
    for c in ckpts:
        label = ORACLE if str(c) == ORACLE else c.resolve().name
        run_dir = out / label
        cmd = [sys.executable, "-m", "dp_sim.closed_loop", "--checkpoint", str(c),
               "--episodes", str(args.episodes), "--seed-start", str(args.seed_start),
               "--out", str(run_dir), *extra]  # fmt: skip
        print(f"[compare] {c}: {' '.join(cmd[1:])}", flush=True)
        rc = subprocess.call(cmd)
        if rc != 0 or not (run_dir / "summary.json").is_file():
            print(f"[compare] {c}: closed loop failed (exit {rc}); see {run_dir}", file=sys.stderr)
            return 1
        summary = json.loads((run_dir / "summary.json").read_text())
        pol = summary.get("diagnostics", {}).get("policy_node", {})
        rows.append(
            {
                "checkpoint": label,
                **checkpoint_info(c),
                "episodes": summary["episodes"],
                "successes": summary["successes"],
                "success_rate": summary["success_rate"],
                "mean_time_to_success_s": summary["mean_time_to_success_s"],
                "between_trays_fraction": summary.get("between_trays_fraction"),
                "inference_p50_ms": pol.get("inference p50 ms"),
                "inference_p99_ms": pol.get("inference p99 ms"),
                "stamp_to_publish_p50_ms": pol.get("stamp to publish p50 ms"),
                "stamp_to_publish_p99_ms": pol.get("stamp to publish p99 ms"),
                "seeds": summary["seeds"],
            }
        )
    md = table(rows)
    (out / "compare.json").write_text(json.dumps(rows, indent=2))
    (out / "compare.md").write_text(md)
    last = args.seed_start + args.episodes - 1
    print(f"\nsame {args.episodes} seeded episodes (seeds {args.seed_start}..{last}):")
    print(md)
    print(f"report: {out / 'compare.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
