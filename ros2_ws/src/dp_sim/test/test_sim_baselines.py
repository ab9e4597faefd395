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

    cfg = SimConfig(task="place_bimodal")  # the task's camera (320 x 240)
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


def test_oracle_node_publishes_chunks_and_survives_bad_status(rclpy_context):
    """In-process graph: bad / incomplete statuses are reported, not fatal; a good one gives chunks
    stamped with the newest joint_states, 8 columns, policy_id 'oracle'; ~/activate stops them."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from std_srvs.srv import SetBool

    from dp_common.msgs.chunk import read_chunk
    from dp_common.msgs.joint_state import build_joint_state
    from dp_common.qos import chunk_qos, reliable_qos
    from dp_common.testing import spin_for, spin_until
    from dp_msgs.msg import ActionChunk
    from dp_sim.core import SimScene
    from dp_sim.core.robot import FINGER_JOINTS, JOINT_NAMES
    from dp_sim.oracle_node import OracleNode

    scene = SimScene(SimConfig(task="place", camera_width=64, camera_height=48))
    scene.reset(4)
    good = json.dumps({**scene.task_state(), "episode": 1})
    q = np.concatenate([scene.q, scene.finger_q])
    scene.close()
    params = [
        Parameter("task", value="place"),
        Parameter("autostart", value=True),
        Parameter("rate_hz", value=20.0),
    ]
    oracle = OracleNode(context=rclpy_context, parameter_overrides=params)
    probe = Node("oracle_probe", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(oracle)
    ex.add_node(probe)
    chunks, problems = [], []
    probe.create_subscription(
        ActionChunk, "dp/action_chunk", lambda m: chunks.append(read_chunk(m)), chunk_qos()
    )

    def on_diag(msg):
        problems.extend(s.message for s in msg.status if s.name.endswith("oracle_node"))

    probe.create_subscription(DiagnosticArray, "/diagnostics", on_diag, reliable_qos(10))
    js = probe.create_publisher(JointState, "joint_states", reliable_qos(10))
    status = probe.create_publisher(String, "sim/episode_status", reliable_qos(10))
    activate = probe.create_client(SetBool, "/oracle_node/activate")
    stamp = [1_000_000_000]

    def send(text):
        status.publish(String(data=text))
        for _ in range(3):
            stamp[0] += 20_000_000
            js.publish(build_joint_state(stamp[0], list(JOINT_NAMES) + list(FINGER_JOINTS), q))
            spin_for(ex, 0.1)

    try:
        assert spin_until(ex, lambda: status.get_subscription_count() and js.get_subscription_count(), 10)
        send("not json")
        no_trays = json.loads(good)
        no_trays["trays"] = []
        send(json.dumps(no_trays))
        assert spin_until(ex, lambda: any("needs >= 1 cube and 1 tray" in p for p in problems), 10), problems
        assert not chunks and oracle.context.ok()
        send(good)
        assert spin_until(ex, lambda: len(chunks) >= 3, timeout_s=10)
        c = chunks[-1]
        assert (
            c.policy_id == "oracle" and c.rows.shape == (15, 8) and c.joint_names[-1] == "panda_finger_joint1"
        )
        assert c.stamp_ns == stamp[0] and abs(c.dt - 0.1) < 1e-9
        np.testing.assert_allclose(c.rows[0, :7], q[:7], atol=0.05)  # soft start from the measured pose
        fut = activate.call_async(SetBool.Request(data=False))
        assert spin_until(ex, fut.done, timeout_s=10) and fut.result().success
        n = len(chunks)
        spin_for(ex, 0.3)
        assert len(chunks) == n
    finally:
        ex.shutdown()
        oracle.destroy_node()
        probe.destroy_node()
