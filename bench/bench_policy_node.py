"""Benchmark of dp_policy's policy_node: cloud stamp -> ActionChunk latency, chunk rate, hand-over.

Printed, all measured in this run on this CPU:

1. core baseline: `Policy.predict_action_chunk` alone (simple_dp3 preset, 7 joints, 1024 points,
   10 DDIM steps, random weights: latency does not depend on the weights), p50/p99;
2. node: policy_node in its own process on the wall clock (rate_hz 10), with camera sync
   (sync_wait_s 0.05, config/policy.yaml) and, as the baseline, without; this process plays camera
   (1024-point dp/points at 30 Hz, stamp = publication time) and robot (joint_states at 100 Hz)
   and receives dp/action_chunk. Latency = receipt time - chunk stamp (the stamp is the newest
   cloud's stamp, so this includes waiting for the timer, inference and DDS), p50/p99 against the
   100 ms target; wall-clock chunk rate; the node's own inference p50/p99 and overruns from
   /diagnostics;
3. hand-over discontinuity: a tiny simple_dp3 trained here for a few hundred steps on the core's
   synthetic reach task (end-effector positions, m), replayed on held-out episodes with +-10 ms
   camera jitter. For consecutive chunks A, B: the jump between A resampled at B's first executed
   row (row 1, t_B + dt: row 0 is already past when B arrives) and B's row 1, for inpaint_rows 0
   (no inpainting, the baseline), 1 and 2, with the same noise for all three; and the step
   |B[d] - B[d-1]| where inpainted rows meet free rows, against the baseline's at the same rows;
4. the load of issue 14: the shipped image checkpoint (checkpoints/sim_reach_image_dp), a 640x480
   bgr8 camera at 30 Hz and joint states at 100 Hz, rate_hz 10, node in its own process: chunks/s
   and ticks refused for a missing joint state at the image stamp, with inference on the worker
   thread (inference_thread true) and, as the baseline, in the timer callback (false), alternated.

Usage: python bench/bench_policy_node.py [--quick] [--node-seconds S] [--train-steps N]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import time

from _common import ROOT, cpu_model, pct, stop_process, use_sources, with_pythonpath

PKGS = ("dp_common", "dp_perception", "dp_policy")
use_sources(*PKGS)
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(120, 200)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dp_policy.core import DiffusionPolicyModel, Normalizer, Policy, PolicyConfig, save_checkpoint  # noqa: E402
from dp_policy.core.runner import inpaint_prefix  # noqa: E402

JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
N_POINTS = 1024
ROWS = (1, 2, 3)  # published rows compared at a hand-over


def latency_checkpoint(path: pathlib.Path) -> pathlib.Path:
    """Default-size simple_dp3 (7 joints, 1024 points, 10 steps), random weights."""
    torch.manual_seed(0)
    cfg = PolicyConfig.preset(
        "simple_dp3",
        state_dim=7,
        action_dim=7,
        joint_names=JOINTS,
        encoder={"num_points": N_POINTS},
        perception={
            "target_frame": "world",
            "num_points": N_POINTS,
            "crop_min": [0.2, -0.5, -0.02],
            "crop_max": [1.0, 0.5, 0.4],
            "voxel_size": 0.0075,
            "use_rgb": False,
        },
    )
    rng = np.random.default_rng(0)
    norm = Normalizer.fit(
        {
            "action": rng.uniform(-2, 2, (200, 7)),
            "agent_pos": rng.uniform(-2, 2, (200, 7)),
            "point_cloud": rng.uniform([0.2, -0.5, 0.0], [1.0, 0.5, 0.4], (4000, 3)),
        }
    )
    return save_checkpoint(path, cfg, DiffusionPolicyModel(cfg), norm)


def bench_core(ckpt: pathlib.Path, reps: int) -> None:
    policy = Policy.from_checkpoint(ckpt)
    rng = np.random.default_rng(1)
    obs = {
        "point_cloud": rng.uniform([0.2, -0.5, 0.0], [1.0, 0.5, 0.4], (2, N_POINTS, 3)).astype(np.float32),
        "agent_pos": rng.uniform(-1, 1, (2, 7)).astype(np.float32),
    }
    for threads in (1, 2):
        torch.set_num_threads(threads)
        policy.predict_action_chunk(obs)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            policy.predict_action_chunk(obs)
            times.append(time.perf_counter() - t0)
        print(
            f"[1] core predict_action_chunk (simple_dp3, {N_POINTS} pts, "
            f"{policy.num_inference_steps} steps, {threads} thread(s), {reps} runs): "
            f"min {min(times) * 1e3:.1f}  p50 {pct(times, 50) * 1e3:.1f}  p99 {pct(times, 99) * 1e3:.1f} ms"
        )
    torch.set_num_threads(1)


def bench_node(
    ckpt: pathlib.Path,
    seconds: float,
    threads: int,
    sync_wait_s: float,
    image: bool = False,
    inference_thread: bool = True,
) -> None:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image, JointState, PointCloud2

    from dp_common.msgs import ns_to_s, stamp_to_ns
    from dp_common.msgs.cloud import build_cloud
    from dp_common.qos import chunk_qos, reliable_qos, sensor_qos
    from dp_msgs.msg import ActionChunk

    env = with_pythonpath(dict(os.environ), PKGS)
    params = {
        "checkpoint": str(ckpt),
        "autostart": "true",
        "num_threads": str(threads),
        "perception_node": "''",
        "publish_markers": "false",
        "rate_hz": "10.0",
        "sync_wait_s": str(sync_wait_s),
        "inference_thread": str(inference_thread).lower(),
    }
    cmd = [
        sys.executable,
        "-c",
        "import sys; from dp_policy.policy_node import main; main(sys.argv)",
        "--ros-args",
    ]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v}"]
    rclpy.init()
    node = Node("policy_bench_driver")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        cloud_pub = node.create_publisher(PointCloud2, "dp/points", sensor_qos(5))
        js_pub = node.create_publisher(JointState, "joint_states", reliable_qos(20))
        rng = np.random.default_rng(2)
        pts = rng.uniform([0.2, -0.5, 0.0], [1.0, 0.5, 0.4], (N_POINTS, 3)).astype(np.float32)
        cloud = build_cloud(0, "world", pts)
        img_pub = node.create_publisher(Image, "camera/image", sensor_qos(5))
        pixels = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8).tobytes()
        frame = Image(height=480, width=640, encoding="bgr8", step=640 * 3, data=pixels)
        latencies, arrivals, diags = [], [], []

        def on_chunk(msg):
            now = time.time()
            latencies.append(now - ns_to_s(stamp_to_ns(msg.header.stamp)))
            arrivals.append(now)

        def send_cloud():
            if image:
                frame.header.stamp = node.get_clock().now().to_msg()
                img_pub.publish(frame)
                return
            cloud.header.stamp = node.get_clock().now().to_msg()
            cloud_pub.publish(cloud)

        def send_js():
            js = JointState(name=JOINTS, position=[0.1 * np.sin(time.time() + i) for i in range(7)])
            js.header.stamp = node.get_clock().now().to_msg()
            js_pub.publish(js)

        node.create_subscription(ActionChunk, "dp/action_chunk", on_chunk, chunk_qos())
        node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, reliable_qos(10))
        node.create_timer(1 / 30, send_cloud)
        node.create_timer(0.01, send_js)
        ex = SingleThreadedExecutor()
        ex.add_node(node)
        t_start = time.monotonic()
        while not arrivals and time.monotonic() - t_start < 150:
            ex.spin_once(timeout_sec=0.05)
            if proc.poll() is not None:
                raise RuntimeError(f"policy_node exited ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        if not arrivals:
            raise RuntimeError("no chunk from policy_node within 150 s")
        startup = time.monotonic() - t_start
        latencies.clear(), arrivals.clear()
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.05)
        t_wait = time.monotonic() + 2.5  # one more /diagnostics period
        while time.monotonic() < t_wait:
            ex.spin_once(timeout_sec=0.05)
    finally:
        stop_process(proc)
        node.destroy_node()
        rclpy.try_shutdown()
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else float("nan")
    values = {}
    for d in diags:
        for s in d.status:
            if "policy_node" in s.name:
                values = {v.key: v.value for v in s.values}
    if image:
        refused = values.get("no chunk (joint_state_unavailable)", "0")
        where = "worker thread" if inference_thread else "baseline: timer callback (blocks the executor)"
        print(
            f"[4] issue-14 load, inference on the {where} ({ckpt.name}, 640x480 bgr8 30 Hz, joint states "
            f"100 Hz, rate_hz 10, {threads} torch thread(s), {seconds:.0f} s): chunk rate {rate:.2f} Hz "
            f"(target 10); ticks refused for a missing joint state {refused}; inference p50 "
            f"{values.get('inference p50 ms', '?')} ms; overruns {values.get('overruns', '0')}"
        )
        return
    mode = (
        f"camera sync (sync_wait_s {sync_wait_s})" if sync_wait_s else "baseline: plain timer (sync_wait_s 0)"
    )
    p99 = pct(latencies, 99) * 1e3
    print(
        f"[2] node, {mode} "
        f"(own process, {threads} torch thread(s), wall clock, clouds 30 Hz, rate_hz 10, "
        f"start-up {startup:.0f} s, "
        f"{seconds:.0f} s, {len(latencies)} chunks):\n"
        f"    cloud stamp -> chunk received: p50 {pct(latencies, 50) * 1e3:.1f} ms  p99 {p99:.1f} ms "
        f"(target p99 <= 100 ms: {'met' if p99 <= 100 else 'NOT met'})\n"
        f"    chunk rate {rate:.2f} Hz (wall clock; target 10)\n"
        f"    node /diagnostics: inference p50 {values.get('inference p50 ms', '?')} ms, "
        f"p99 {values.get('inference p99 ms', '?')} ms; stamp to publish p50 "
        f"{values.get('stamp to publish p50 ms', '?')} ms, p99 {values.get('stamp to publish p99 ms', '?')} "
        f"ms; overruns {values.get('overruns', '0')}"
    )


def train_reach(out: pathlib.Path, steps: int):
    from dp_policy.core.synthetic import make_reach_dataset
    from dp_policy.core.train_config import TrainConfig
    from dp_policy.core.training import train

    data = make_reach_dataset(n_episodes=40, n_steps=24, num_points=64, seed=0)
    cfg = TrainConfig(
        output_dir=str(out),
        policy={
            "preset": "simple_dp3",
            "down_dims": [16, 32],
            "diffusion_step_embed_dim": 16,
            "encoder": {"out_dim": 16, "state_mlp_dims": [16]},
            "num_inference_steps": 10,
        },
        batch_size=32,
        num_epochs=100000,
        max_train_steps=steps,
        lr=3e-3,
        lr_warmup_steps=10,
        progress=False,
        val_ratio=0.0,
        checkpoint_every=100000,
        use_ema=False,
    )
    t0 = time.perf_counter()
    res = train(cfg, data=data)
    return res.checkpoint or (out / "latest"), time.perf_counter() - t0


def bench_handover(ckpt: pathlib.Path, n_episodes: int, train_s: float, steps: int) -> None:
    from dp_policy.core.synthetic import make_reach_dataset

    policy = Policy.from_checkpoint(ckpt)
    cfg = policy.config
    n_obs, dt = cfg.n_obs_steps, cfg.dt
    data = make_reach_dataset(n_episodes=n_episodes, n_steps=24, num_points=64, seed=123)  # held out
    ends = np.concatenate([[0], data["episode_ends"]])
    rng = np.random.default_rng(5)
    jumps = {d: {k: [] for k in ROWS} for d in (0, 1, 2)}
    junction = {d: [] for d in (1, 2)}
    junction_base = {d: [] for d in (1, 2)}
    steps_free = []
    for e in range(n_episodes):
        lo, hi = ends[e], ends[e + 1]
        stamps = (np.arange(hi - lo) * dt + rng.uniform(-0.01, 0.01, hi - lo)).tolist()
        outs = {d: {} for d in (0, 1, 2)}
        for d in (0, 1, 2):
            prev = None
            for t in range(n_obs - 1, hi - lo):
                idx = np.arange(lo + t - n_obs + 1, lo + t + 1)
                obs = {"point_cloud": data["point_cloud"][idx], "agent_pos": data["agent_pos"][idx]}
                prefix = inpaint_prefix(*prev, stamps[t], n_obs, dt, d) if (d and prev) else None
                gen = torch.Generator().manual_seed(1000 * e + t)
                out = policy.predict_action_chunk(obs, generator=gen, prefix=prefix).astype(np.float64)
                times = stamps[t] + (np.arange(cfg.horizon) - (n_obs - 1)) * dt
                if prev is not None:
                    # Published row k of B (model row n_obs-1+k) vs A resampled at its time.
                    for k in ROWS:
                        tk = stamps[t] + k * dt
                        old = np.array([np.interp(tk, prev[0], prev[1][:, j]) for j in range(out.shape[1])])
                        jumps[d][k].append(np.abs(out[n_obs - 1 + k] - old).max())
                outs[d][t] = out
                prev = (times, out)
        for t in outs[0]:
            rows0 = outs[0][t][n_obs - 1 :]
            steps_free.extend(np.abs(np.diff(rows0, axis=0)).max(axis=1).tolist())
            for d in (1, 2):
                r = outs[d][t][n_obs - 1 :]
                junction[d].append(np.abs(r[d] - r[d - 1]).max())
                junction_base[d].append(np.abs(rows0[d] - rows0[d - 1]).max())
    mm = 1e3
    model = (
        f"tiny simple_dp3 trained {steps} steps in {train_s:.0f} s on the synthetic reach task"
        if steps > 0
        else f"checkpoint {ckpt}"
    )
    print(
        f"[3] hand-over discontinuity ({model}; "
        f"{n_episodes} held-out episodes, {len(jumps[0][1])} hand-overs, "
        "+-10 ms jitter; max over xyz, mm):"
    )
    print(f"    typical row-to-row step of a chunk: median {np.median(steps_free) * mm:.2f} mm")
    print("    |B row k - A at that time|, mean / p95 (row 1 = first executed row):")
    for d in (0, 1, 2):
        label = "no inpainting (baseline)" if d == 0 else f"inpaint_rows {d}"
        cells = "  ".join(
            f"row {k}: {np.mean(jumps[d][k]) * mm:5.2f} / {pct(jumps[d][k], 95) * mm:5.2f}" for k in ROWS
        )
        print(f"    {label:26s} {cells}")
    for d in (1, 2):
        print(
            f"    inpaint_rows {d}: step between row {d - 1} (inpainted) and row {d} (free): p95 "
            f"{pct(junction[d], 95) * mm:.2f} mm "
            f"(baseline, same rows: {pct(junction_base[d], 95) * mm:.2f} mm)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer training steps")
    parser.add_argument(
        "--node-seconds", type=float, default=0.0, help="node measurement (default 12, quick 5)"
    )
    parser.add_argument(
        "--train-steps", type=int, default=0, help="hand-over model steps (default 600, quick 150)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="policy_node num_threads (default 1: on this shared 2-core machine 2 threads are slower)",
    )
    parser.add_argument("--no-node", action="store_true", help="skip the node measurement")
    parser.add_argument("--no-handover", action="store_true", help="skip the hand-over measurement")
    parser.add_argument("--no-image-load", action="store_true", help="skip the issue-14 image load")
    parser.add_argument("--handover-checkpoint", help="use this reach checkpoint instead of training one")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny models: 1 thread is faster on a loaded 2-core machine
    seconds = args.node_seconds or (5.0 if args.quick else 12.0)
    steps = args.train_steps or (150 if args.quick else 600)
    with tempfile.TemporaryDirectory(prefix="bench_policy_") as tmp:
        tmp = pathlib.Path(tmp)
        load = os.getloadavg()
        print(f"CPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s) here")
        print(f"load average {load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} CPUs (shared machine)")
        ckpt = latency_checkpoint(tmp / "simple_dp3")
        bench_core(ckpt, 8 if args.quick else 15)
        if not args.no_node:
            bench_node(ckpt, seconds, args.threads, 0.05)  # config/policy.yaml's default
            bench_node(ckpt, seconds, args.threads, 0.0)  # baseline: inference at the timer tick
        if not args.no_image_load:
            img = ROOT / "checkpoints" / "sim_reach_image_dp"
            if img.is_dir():
                for threaded in (False, True, False, True):  # baseline, candidate, alternated
                    bench_node(img, seconds, args.threads, 0.0, image=True, inference_thread=threaded)
            else:
                print(f"[4] skipped: {img} not found")
        if args.handover_checkpoint:
            bench_handover(pathlib.Path(args.handover_checkpoint), 3 if args.quick else 5, float("nan"), -1)
        elif not args.no_handover:
            reach, train_s = train_reach(tmp / "reach", steps)
            bench_handover(reach, 3 if args.quick else 5, train_s, steps)


if __name__ == "__main__":
    main()
