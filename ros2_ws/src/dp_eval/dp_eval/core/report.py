"""Evaluation report: metrics per checkpoint, summary.json, summary.md and PNG plots (ROS-free).

Layout of the output directory::

    summary.json                 every number (strict JSON: NaN -> null)
    summary.md                   one table comparing the checkpoints
    error_vs_horizon.png         mean L2 error per chunk row, one line per checkpoint
    <checkpoint>/chunks.npz      all predicted chunks (stamps, episode, rows)
    <checkpoint>/episode_XXX.png predicted chunks vs recorded actions, one panel per joint
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dp_eval.core.episodes import BagData
from dp_eval.core.metrics import aggregate, episode_metrics, json_safe, latency_stats

logger = logging.getLogger(__name__)


@dataclass
class Chunks:
    """Chunks of one checkpoint in one episode: stamps (M,) s, rows (M, H, A)."""

    stamps: np.ndarray
    rows: np.ndarray


def episode_actions(bag: BagData, joint_names, ep_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Recorded actions of one episode, (T,) s and (T, A): from 1 s before its first cloud to the
    next episode's first cloud (the end of the bag for the last one)."""
    t, q = bag.actions.arrays(list(joint_names))
    ep = bag.episodes[ep_index]
    t_end = bag.episodes[ep_index + 1].t0 if ep_index + 1 < len(bag.episodes) else np.inf
    keep = (t >= ep.t0 - 1.0) & (t < t_end)
    if not np.any(keep):
        raise ValueError(f"{ep.name}: no recorded actions between {ep.t0 - 1.0:.3f} s and {t_end:.3f} s")
    return t[keep], q[keep]


def checkpoint_metrics(bag: BagData, joint_names, dt: float, chunks: list[Chunks], steps) -> dict:
    """Per-episode and overall metrics of one checkpoint's chunks (list indexed by episode)."""
    per_ep = []
    for ep, ch in zip(bag.episodes, chunks, strict=True):
        rec_t, rec_q = episode_actions(bag, joint_names, ep.index)
        m = episode_metrics(ch.stamps, ch.rows, dt, rec_t, rec_q, steps)
        m["episode"] = ep.name
        m["duration_s"] = ep.t1 - ep.t0
        per_ep.append(m)
    overall = aggregate(per_ep, steps)
    err_rows = [m["err"] for m in per_ep if m["n_chunks"]]
    if err_rows:
        h = min(e.shape[1] for e in err_rows)
        pooled = np.concatenate([e[:, :h] for e in err_rows])
        with np.errstate(all="ignore"):
            overall["l2_per_row"] = [
                float(np.nanmean(pooled[:, k])) if np.any(np.isfinite(pooled[:, k])) else float("nan")
                for k in range(h)
            ]
    for m in per_ep:
        m.pop("err")
    return {"overall": overall, "episodes": per_ep}


def plot_episode(path, joint_names, dt, rec_t, rec_q, ch: Chunks, title: str, max_chunks: int) -> None:
    """Recorded actions (black) and predicted chunks (colored, one line per chunk) per joint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = len(joint_names)
    ncols = 2 if a > 3 else 1
    nrows = int(np.ceil(a / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 2.0 * nrows + 0.6), squeeze=False)
    t0 = rec_t[0]
    m = ch.stamps.size
    pick = np.unique(np.linspace(0, m - 1, min(m, max_chunks)).round().astype(int)) if m else []
    cmap = plt.get_cmap("viridis")
    for j, name in enumerate(joint_names):
        ax = axes[j // ncols][j % ncols]
        ax.plot(rec_t - t0, rec_q[:, j], color="black", lw=1.5, label="recorded action")
        for n, c in enumerate(pick):
            times = ch.stamps[c] + dt * np.arange(ch.rows.shape[1]) - t0
            ax.plot(times, ch.rows[c, :, j], color=cmap(n / max(1, len(pick) - 1)), lw=0.9, alpha=0.8)
            ax.plot(times[0], ch.rows[c, 0, j], "o", ms=2, color=cmap(n / max(1, len(pick) - 1)))
        ax.set_ylabel(f"{name} (rad)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for j in range(a, nrows * ncols):
        axes[j // ncols][j % ncols].axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("time since episode start (s)", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{title}: predicted chunks (colored) vs recorded actions (black)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_error_vs_horizon(path, curves: dict[str, list[float]], dt: float) -> None:
    """Mean L2 error per chunk row, one line per checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, ys in curves.items():
        ys = np.asarray(ys, dtype=float)
        ax.plot(np.arange(ys.size) * dt, ys, marker="o", ms=3, label=name)
    ax.set_xlabel("time ahead of the newest observation (s)")
    ax.set_ylabel("mean L2 error (rad)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(
    out_dir,
    bag: BagData,
    bag_path: str,
    runs: list[dict],
    mode: str,
    seed: int,
    steps,
    max_plot_episodes: int = 6,
    plot_chunks: int = 12,
) -> dict:
    """Computes metrics, writes summary.json / summary.md / plots, returns the summary dict.

    Args:
        runs: one dict per checkpoint with keys name, path, policy_id, joint_names, dt,
            chunks (list[Chunks] per episode), timings ({stage: [s]}), dropped, wall_s,
            sensor_span_s, and optionally config and extra.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "bag": str(bag_path),
        "mode": mode,
        "seed": seed,
        "episodes": [
            {"name": e.name, "t0": e.t0, "t1": e.t1, "clouds": e.i1 - e.i0 + 1} for e in bag.episodes
        ],
        "bag_duration_s": bag.duration_s,
        "horizon_steps": [str(s) for s in steps],
        "checkpoints": [],
    }
    curves = {}
    for run in runs:
        metrics = checkpoint_metrics(bag, run["joint_names"], run["dt"], run["chunks"], steps)
        wall, span = run["wall_s"], run["sensor_span_s"]
        entry = {
            "name": run["name"],
            "path": run["path"],
            "policy_id": run["policy_id"],
            "joint_names": list(run["joint_names"]),
            "dt": run["dt"],
            **metrics,
            "latency": {stage: latency_stats(v) for stage, v in run["timings"].items()},
            "dropped": run["dropped"],
            "replay": {
                "sensor_time_s": span,
                "wall_s": wall,
                "speed_factor": span / wall if wall > 0 else float("nan"),
            },
            "config": run.get("config", {}),
            **run.get("extra", {}),
        }
        summary["checkpoints"].append(entry)
        if "l2_per_row" in metrics["overall"]:
            curves[run["name"]] = metrics["overall"]["l2_per_row"]
        ck_dir = out / run["name"]
        ck_dir.mkdir(parents=True, exist_ok=True)
        for ep, ch in list(zip(bag.episodes, run["chunks"], strict=True))[:max_plot_episodes]:
            rec_t, rec_q = episode_actions(bag, run["joint_names"], ep.index)
            plot_episode(
                ck_dir / f"{ep.name}.png",
                run["joint_names"],
                run["dt"],
                rec_t,
                rec_q,
                ch,
                f"{run['name']} {ep.name}",
                plot_chunks,
            )
    if curves:
        dt = runs[0]["dt"]
        plot_error_vs_horizon(out / "error_vs_horizon.png", curves, dt)
    (out / "summary.json").write_text(json.dumps(json_safe(summary), indent=2))
    (out / "summary.md").write_text(markdown_table(summary))
    return summary


def _fmt(v, spec=".4f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def markdown_table(summary: dict) -> str:
    """One row per checkpoint: errors at the horizon steps, final error, rate, latency, speed."""
    steps = summary["horizon_steps"]
    head = (
        ["checkpoint", "chunks"]
        + [f"L2 step {s} (rad)" for s in steps]
        + ["L2 mean", "final pos err", "chunk Hz", "preproc p50/p99 ms", "infer p50/p99 ms", "speed x"]
    )
    lines = [
        f"Replay evaluation of `{summary['bag']}` ({summary['mode']}, seed {summary['seed']}, "
        f"{len(summary['episodes'])} episodes)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for ck in summary["checkpoints"]:
        o = ck["overall"]
        lat = ck["latency"]

        def pq(stage, lat=lat):
            s = lat.get(stage)
            return f"{_fmt(s['p50_ms'], '.1f')}/{_fmt(s['p99_ms'], '.1f')}" if s else "n/a"

        row = (
            [ck["name"], str(o["n_chunks"])]
            + [_fmt(o.get(f"l2_step_{s}")) for s in steps]
            + [
                _fmt(o["l2_mean"]),
                _fmt(o["final_position_error"]),
                _fmt(o["chunk_rate_hz"], ".2f"),
                pq("preprocess"),
                pq("inference"),
                _fmt(ck["replay"]["speed_factor"], ".2f"),
            ]
        )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
