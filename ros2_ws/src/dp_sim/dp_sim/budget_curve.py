"""CLI: closed-loop success versus training budget, from finished training runs (a table and a plot).

Every ``--run`` is a ``python -m dp_policy.train`` output folder. Its final checkpoint (``latest``)
is evaluated with ``--episodes`` held-out seeds of :mod:`dp_sim.rollout`; with ``--mid-every k``
also every k-th epoch checkpoint of ``checkpoints/`` (runs trained with ``keep_last: 0``) with
``--mid-episodes`` seeds. A mid-run checkpoint is *not* what a run with that budget gives (its
learning rate had not annealed): the plot draws finals as filled markers and mid-run checkpoints
hollow. Training minutes are the run's own wall clock (``history.jsonl`` ``wall_s``)::

    python -m dp_sim.budget_curve --task lift --run runs/lift_b15 --run runs/lift_b55 \\
        --episodes 50 --mid-every 6 --mid-episodes 20 --out out/budget_lift
    python -m dp_sim.budget_curve ... --run runs/lift_1000:2,4 --reuse   # chosen epochs; keep done ones

Writes ``<out>/curve.json``, ``<out>/curve.md`` (a Markdown table) and ``<out>/curve.png``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from dp_sim import rollout


def _history(run: Path) -> dict[int, dict]:
    rows = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines() if x.strip()]
    return {int(r["epoch"]): r for r in rows}


def checkpoints_of(run: Path, mid_every: int, mid_epochs: set[int] | None = None) -> list[dict]:
    """[{checkpoint, epoch, step, train_min, final}] of one run, oldest first.

    Mid-run checkpoints: the epochs in `mid_epochs` when given, else every `mid_every`-th.

    Raises:
        ValueError: the folder is not a finished training run.
    """
    if not (run / "latest").is_dir() or not (run / "history.jsonl").is_file():
        raise ValueError(f"{run}: expected a training run folder with latest/ and history.jsonl")
    hist = _history(run)
    last = max(hist)
    out = []
    if (mid_every > 0 or mid_epochs) and (run / "checkpoints").is_dir():
        for p in sorted((run / "checkpoints").iterdir()):
            m = re.fullmatch(r"epoch_(\d+)", p.name)
            e = int(m.group(1)) if m else -1
            chosen = e in mid_epochs if mid_epochs is not None else e % mid_every == 0
            if m and chosen and e < last and e in hist:
                h = hist[int(m.group(1))]
                out.append({"checkpoint": str(p), "epoch": h["epoch"], "step": h["step"],
                            "train_min": h["wall_s"] / 60, "final": False})  # fmt: skip
    h = hist[last]
    out.append({"checkpoint": str(run / "latest"), "epoch": h["epoch"], "step": h["step"],
                "train_min": h["wall_s"] / 60, "final": True})  # fmt: skip
    return out


def plot(rows: list[dict], task: str, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    runs = sorted({r["run"] for r in rows})
    for i, run in enumerate(runs):
        rr = [r for r in rows if r["run"] == run]
        x = [r["train_min"] for r in rr]
        y = [100 * r["success_rate"] for r in rr]
        colour = f"C{i}"
        ax.plot(x, y, "-", color=colour, alpha=0.4)
        for r, xi, yi in zip(rr, x, y, strict=True):
            ax.plot(
                xi, yi, "o", color=colour, mfc=colour if r["final"] else "none", ms=8 if r["final"] else 5
            )
        ax.plot([], [], "o", color=colour, label=f"{Path(run).name} (filled = final)")
    ax.set_xlabel("training wall time (min)")
    ax.set_ylabel(f"{task} success (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dp_sim.budget_curve", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--run",
        action="append",
        required=True,
        help="training run folder (repeatable); RUN:E1,E2 evaluates these epochs' checkpoints mid-run",
    )
    ap.add_argument("--task", default="lift")
    ap.add_argument("--episodes", type=int, default=50, help="seeds per final checkpoint")
    ap.add_argument("--mid-every", type=int, default=0, help="also every k-th epoch checkpoint (0 = off)")
    ap.add_argument("--mid-episodes", type=int, default=20, help="seeds per mid-run checkpoint")
    ap.add_argument("--seed-start", type=int, default=10000)
    ap.add_argument("--out", default="out/budget_curve")
    ap.add_argument("--reuse", action="store_true", help="reuse evaluations already in --out (same seeds)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        todo = []
        for spec in args.run:
            run, _, epochs = spec.partition(":")
            mids = {int(e) for e in epochs.split(",") if e} if epochs else None
            todo += [(run, c) for c in checkpoints_of(Path(run), args.mid_every, mids)]
    except ValueError as exc:
        print(f"dp_sim.budget_curve: {exc}", file=sys.stderr)
        return 2
    rows = []
    for run, c in todo:
        n = args.episodes if c["final"] else args.mid_episodes
        sub = out / f"{Path(run).name}_epoch{c['epoch']:04d}"
        print(
            f"== {c['checkpoint']} (epoch {c['epoch']}, {c['train_min']:.1f} min): {n} episodes", flush=True
        )
        prev = json.loads((sub / "summary.json").read_text()) if (sub / "summary.json").is_file() else {}
        first = prev.get("results", [{}])[0].get("seed")
        if not (args.reuse and prev.get("episodes") == n and first == args.seed_start):
            rc = rollout.main(["--checkpoint", c["checkpoint"], "--task", args.task, "--episodes", str(n),
                               "--seed-start", str(args.seed_start), "--out", str(sub)])  # fmt: skip
            if rc != 0:
                return rc
        s = json.loads((sub / "summary.json").read_text())
        rows.append({**c, "run": run, "episodes": n, "success_rate": s["success_rate"]})
    (out / "curve.json").write_text(json.dumps(rows, indent=1))
    lines = ["| run | checkpoint | epoch | steps | training (min) | success |", "|---|---|---|---|---|---|"]
    for r in rows:
        kind = "final" if r["final"] else "mid-run"
        rate = f"{100 * r['success_rate']:.0f}% ({r['episodes']} seeds)"
        lines.append(
            f"| {Path(r['run']).name} | {kind} | {r['epoch']} | {r['step']} | {r['train_min']:.1f} | {rate} |"
        )
    (out / "curve.md").write_text("\n".join(lines) + "\n")
    plot(rows, args.task, out / "curve.png")
    print("\n".join(lines))
    print(f"wrote {out}/curve.json, curve.md, curve.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
