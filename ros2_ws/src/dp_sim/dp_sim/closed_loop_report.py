"""Reporting of closed-loop runs (no ROS): summary JSON, latency lines, the overlay plot, the GIF.

``dp_sim.closed_loop`` drives the episodes and collects their traces; this module turns them into
the files under ``--out`` (``make demo``: ``out/demo/``):

    summary.json       per-episode outcome and metrics (tray heading on place_bimodal), rates
    trajectories.png   commanded (control) vs actual (joint_states) joints, and on gripper tasks the
                       gripper command (gripper_controller/commands) vs the finger opening, per episode
    episode.gif        the first episode from the simulator's camera/image topic (Pillow GIF)
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from dp_sim.core.metrics import heading_fractions

GIF_MAX_FPS = 10.0


def latency_table(diag: dict[str, dict[str, str]]) -> list[str]:
    """One line per node with its latency and rate figures from /diagnostics."""
    lines = []
    for name in sorted(diag):
        figures = {k: v for k, v in diag[name].items() if k.endswith(" ms") or k.endswith("rate Hz")}
        if figures:
            lines.append(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(figures.items())))
    return lines


def episode_line(res: dict) -> str:
    """The line printed after each episode."""
    tts = res["time_to_success_s"]
    heading = res.get("tray_heading")
    return (
        f"episode seed={res['seed']}: {'SUCCESS' if res['success'] else 'failure'}"
        + (f" in {tts:.2f} s" if res["success"] and tts is not None else "")
        + f" (final distance {res['final_goal_distance_m']:.3f} m, {res['chunks']} chunks, "
        f"real-time factor {res['real_time_factor']:.2f}"
        + (f", heading {heading['heading']}" if heading else "")
        + ")"
    )


def summarize(results: list[dict], checkpoint: str, task: str, rtf_setting: float, diag: dict,
              diag_msg: dict, wall_time_s: float) -> dict:  # fmt: skip
    """The summary.json content of a run (``results``: run_episode outputs, traces dropped)."""
    n_ok = sum(r["success"] for r in results)
    times = [r["time_to_success_s"] for r in results if r["success"] and r["time_to_success_s"] is not None]
    headings = heading_fractions([r.get("tray_heading") for r in results])
    return {
        "checkpoint": checkpoint,
        "task": task,
        "episodes": len(results),
        "successes": n_ok,
        "success_rate": n_ok / len(results) if results else 0.0,
        "mean_time_to_success_s": sum(times) / len(times) if times else None,
        "between_trays_fraction": headings["between"] if headings else None,
        "tray_heading_fractions": headings,
        "seeds": [r["seed"] for r in results],
        "real_time_factor_setting": rtf_setting,
        "real_time_factor_achieved": (sum(r["real_time_factor"] for r in results) / len(results))
        if results
        else None,
        "diagnostics": diag,
        "diagnostics_messages": diag_msg,
        "episodes_detail": [{k: v for k, v in r.items() if k not in ("trace", "frames")} for r in results],
        "wall_time_s": wall_time_s,
    }


def _series(rows: list) -> tuple[np.ndarray, np.ndarray]:
    t = np.array([r[0] for r in rows], float)
    return t, np.array([r[1] for r in rows], float).reshape(len(rows), -1)


def plot_traces(results: list[dict], joint_names: list[str], path: pathlib.Path) -> None:
    """Writes a PNG of commanded vs actual joint positions, one column per episode (up to 4).

    Finger rows (m) overlay the gripper command (a step signal: per-finger opening) on the measured
    opening of ``panda_finger_joint1``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = results[: min(4, len(results))]
    nj = len(joint_names) or 7
    fig, axes = plt.subplots(nj, len(shown), figsize=(4 * len(shown), 1.6 * nj), sharex="col", squeeze=False)
    for c, res in enumerate(shown):
        tr = res["trace"]
        t0 = tr["t0"]
        for j in range(nj):
            ax = axes[j][c]
            name = joint_names[j] if joint_names else str(j)
            if tr["actual"]:
                t, q = _series(tr["actual"])
                ax.plot(t - t0, q[:, j], label="actual (joint_states)", lw=1.2)
            if tr["commanded"]:
                t, q = _series(tr["commanded"])
                ax.plot(t - t0, q[:, j], "--", label="commanded (control)", lw=1.0)
            if name == "panda_finger_joint1" and tr.get("gripper"):
                t, g = _series(tr["gripper"])
                ax.step(t - t0, g[:, 0], "--", where="post", color="C3", lw=1.0, label="gripper command")
                ax.legend(fontsize=6, loc="best")
            if c == 0:
                unit = "m" if "finger" in name else "rad"
                ax.set_ylabel(f"{name}\n[{unit}]", fontsize=7)
            if j == 0:
                ax.set_title(f"seed {res['seed']}: {'success' if res['success'] else 'failure'}", fontsize=9)
            ax.tick_params(labelsize=6)
        axes[-1][c].set_xlabel("sim time [s]", fontsize=8)
    axes[0][0].legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_gif(
    frames: list[tuple[float, np.ndarray]], path: pathlib.Path, max_fps: float = GIF_MAX_FPS
) -> int:
    """Writes (sim time s, (H, W, 3) uint8) camera frames as a looping GIF played at sim speed.

    Frames closer than 1/max_fps are skipped. Returns the number of frames written (0: no file).
    """
    from PIL import Image

    kept: list[tuple[float, np.ndarray]] = []
    for t, img in frames:
        if not kept or t - kept[-1][0] >= 1.0 / max_fps - 1e-6:
            kept.append((t, img))
    if not kept:
        return 0
    times = [t for t, _ in kept]
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / max_fps
    durations = [max(20, int(round(1000 * d))) for d in np.diff(times + [times[-1] + step])]
    images = [Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8)) for _, img in kept]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=False)
    return len(images)


def write_report(
    results, checkpoint, task, real_time_factor, diag, diag_msg, joint_names, wall_s, out
) -> dict:
    """summary.json, trajectories.png and episode.gif under `out`, and the closing lines on stdout."""
    summary = summarize(results, checkpoint, task, real_time_factor, diag, diag_msg, wall_s)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot_path = out / "trajectories.png"
    plot_traces(results, joint_names, plot_path)
    n_frames = write_gif(results[0]["frames"], out / "episode.gif") if results else 0
    print("latency summary (from /diagnostics):")
    for line in latency_table(diag):
        print(line)
    gif = f", video: {out / 'episode.gif'} ({n_frames} frames)" if n_frames else " (no camera frames)"
    print(f"report: {out / 'summary.json'}, plot: {plot_path}{gif}")
    if summary["tray_heading_fractions"] is not None:
        f = summary["tray_heading_fractions"]
        print("tray heading: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in f.items()))
    n_ok, mt = summary["successes"], summary["mean_time_to_success_s"]
    print(
        f"success rate: {n_ok}/{len(results)} = {100.0 * summary['success_rate']:.0f}%"
        + (f" (mean time to success {mt:.2f} s)" if mt is not None else "")
    )
    return summary
