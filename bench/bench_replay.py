#!/usr/bin/env python3
"""Benchmark of dp_eval: replay speed factor of stepped evaluation with simple_dp3.

Input: a synthetic demonstration bag (mcap) shaped like the simulator's recordings: 160x120
organized tabletop clouds (19,200 points, camera frame + /tf_static) at 10 Hz, joint_states at
50 Hz, expert commands at 10 Hz, several episodes. Checkpoint: the `simple_dp3` preset at full size
(1024 points, 10 denoising steps), untrained weights (speed does not depend on training).

Printed, all measured in this run:
- ours: stepped replay (decode -> preprocess_cloud -> policy_node's PolicyRunner ticked on the
  bag's clock, in-process) -> speed factor = bag sensor seconds / wall seconds, with
  preprocess and inference p50/p99;
- baseline: the same bag played with recorded timing by bag_player (what `ros2 bag play` does,
  i.e. what realtime evaluation is bounded by) -> its speed factor (~1.0x).

Usage: python bench/bench_replay.py [--quick] [--episodes N] [--episode-s S]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for pkg in sorted((ROOT / "ros2_ws" / "src").iterdir()):
    if (pkg / "setup.py").exists() and str(pkg) not in sys.path:
        sys.path.insert(0, str(pkg))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 80))


def baseline_realtime(bag: Path) -> tuple[float, float]:
    """Plays the bag with recorded timing through bag_player; returns (bag seconds, wall seconds)."""
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    from dp_eval.player import BagPlayer

    context = Context()
    rclpy.init(context=context)
    node = Node("bench_replay_player", context=context)
    player = BagPlayer(node, bag)
    try:
        t0 = time.monotonic()
        player.play_realtime(rate=1.0)
        wall = time.monotonic() - t0
        span = (player.last_ns - player.start_ns) * 1e-9
    finally:
        player.close()
        node.destroy_node()
        context.try_shutdown()
    return span, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 episode of 2 s")
    ap.add_argument("--episodes", type=int, default=2)
    ap.add_argument("--episode-s", type=float, default=4.0)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: fastest on this shared 2-core box)"
    )
    args = ap.parse_args()
    if args.quick:
        args.episodes, args.episode_s = 1, 2.0

    import torch

    torch.set_num_threads(args.threads)
    from dp_eval.core.config import EvalConfig
    from dp_eval.core.metrics import latency_stats
    from dp_eval.core.synthetic import make_checkpoint
    from dp_eval.episodes import load_bag
    from dp_eval.stepped import run_stepped
    from dp_eval.synthetic_bag import write_synthetic_bag

    with tempfile.TemporaryDirectory(prefix="bench_replay_") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        info = write_synthetic_bag(
            tmp / "bag",
            storage="mcap",
            episodes=args.episodes,
            episode_s=args.episode_s,
            width=160,
            height=120,
        )
        ckpt = make_checkpoint(tmp / "simple_dp3", preset="simple_dp3", num_points=1024, tiny=False)
        print(
            f"bag: {args.episodes} episode(s) x {args.episode_s:.1f} s, "
            f"{info['counts']['camera/points']} clouds of 19200 points; checkpoint simple_dp3 "
            f"(1024 points, 10 steps); set-up {time.perf_counter() - t0:.1f} s; torch threads {args.threads}"
        )
        bag = load_bag(tmp / "bag")
        res = run_stepped(tmp / "bag", bag, ckpt, EvalConfig(), seed=0, progress=False)
        pre = latency_stats(res.timings["preprocess"])
        inf = latency_stats(res.timings["inference"])
        n_chunks = sum(len(e.stamps) for e in res.episodes)
        print(
            f"ours  stepped replay (in-process, deterministic): {res.sensor_span_s:.1f} s of sensor time "
            f"in {res.wall_s:.1f} s wall -> {res.speed_factor:.2f}x real time "
            f"({n_chunks} chunks, {res.n_clouds} clouds)"
        )
        print(
            f"      preprocess p50 {pre['p50_ms']:.1f} ms p99 {pre['p99_ms']:.1f} ms | "
            f"inference p50 {inf['p50_ms']:.1f} ms p99 {inf['p99_ms']:.1f} ms "
            f"(real time needs < {1000 * res.dt:.0f} ms per chunk at dt = {res.dt} s)"
        )
        span, wall = baseline_realtime(tmp / "bag")
        print(
            f"base  realtime playback (bag_player, recorded timing, like `ros2 bag play`): "
            f"{span:.1f} s of bag time in {wall:.1f} s wall -> {span / wall:.2f}x real time"
        )
        print(f"stepped / realtime playback speed ratio: {res.speed_factor / (span / wall):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
