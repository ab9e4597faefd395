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
