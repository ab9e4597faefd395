"""Baselines in the real graph: the oracle (true poses) through sim -> oracle_node -> control -> sim,
and the closed loop's media (GIF from camera/image, overlay plot) and tray-heading metric."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image

from dp_sim.core.config import SimConfig

ROOT = pathlib.Path(__file__).resolve().parents[4]


def test_oracle_places_through_control_and_the_run_writes_gif_plot_and_heading(tmp_path):
    out_dir = tmp_path / "out"
    args = ["-m", "dp_sim.closed_loop", "--oracle", "--task", "place_bimodal", "--episodes", "1",
            "--episode-timeout", "14", "--real-time-factor", "0.5", "--out", str(out_dir)]  # fmt: skip
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env=dict(os.environ))  # fmt: skip
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    assert res.stdout.strip().splitlines()[-1].startswith("success rate: 1/1"), res.stdout
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["checkpoint"] == "oracle" and summary["task"] == "place_bimodal"
    episode = summary["episodes_detail"][0]
    assert episode["success"] and episode["chunks"] >= 10
    # the oracle (one expert mode per episode) commits to a tray: none of its episodes is 'between'
    assert episode["tray_heading"]["heading"] in ("tray0", "tray1") and episode["tray_heading"]["cube_lifted"]
    assert summary["between_trays_fraction"] == 0.0
    assert any(name.endswith("oracle_node") for name in summary["diagnostics"])
    assert not (out_dir / "logs" / "perception_node.log").exists()  # the oracle needs no perception

    cfg = SimConfig()
    with Image.open(out_dir / "episode.gif") as gif:
        assert gif.format == "GIF" and gif.size == (cfg.camera_width, cfg.camera_height)
        assert gif.n_frames >= 20  # ~7 s of sim camera at <= 10 fps
        gif.seek(gif.n_frames // 2)
        frame = np.asarray(gif.convert("RGB"))
        assert frame.std() > 10  # a rendered scene, not a blank image
    with Image.open(out_dir / "trajectories.png") as png:
        assert png.format == "PNG" and png.size[0] >= 300 and png.size[1] >= 9 * 100  # 9 joint rows


def test_report_gif_keeps_sim_speed_and_plot_overlays_the_gripper(tmp_path):
    from dp_sim.closed_loop_report import episode_line, plot_traces, write_gif

    rng = np.random.default_rng(0)
    frames = [(1.0 + 0.05 * k, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for k in range(40)]
    assert write_gif(frames, tmp_path / "e.gif", max_fps=10.0) == 20  # 20 Hz frames -> every other one
    with Image.open(tmp_path / "e.gif") as gif:
        assert gif.size == (64, 48) and gif.n_frames == 20 and gif.info["duration"] == 100
    assert write_gif([], tmp_path / "none.gif") == 0 and not (tmp_path / "none.gif").exists()
    names = [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1", "panda_finger_joint2"]
    t = np.linspace(0, 2, 50)
    res = {"seed": 3, "success": False, "time_to_success_s": None, "final_goal_distance_m": 0.1, "chunks": 5,
           "real_time_factor": 0.5, "tray_heading": {"heading": "between"},
           "trace": {"t0": 0.0, "actual": [(x, [0.1 * x] * 7 + [0.04, 0.04]) for x in t],
                     "commanded": [(x, [0.1 * x] * 7 + [float("nan")] * 2) for x in t],
                     "gripper": [(0.0, [0.04]), (1.0, [0.0])]}}  # fmt: skip
    plot_traces([res], names, tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as png:
        assert png.format == "PNG" and png.size[1] > png.size[0]
    assert episode_line(res).endswith("real-time factor 0.50, heading between)")
