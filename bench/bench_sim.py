"""Benchmark of the simulator (dp_sim): rendering + cloud, physics step, achievable real-time factor.

Prints our figures and, measured in the same run, the baseline: an 84x84 depth-only render
(the figure DESIGN.md quotes for MuJoCo, ~8 ms) and the expert-data throughput.

Run: `python bench/bench_sim.py` (about 30 s; 2 threads at most).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for pkg in ("dp_sim", "dp_common", "dp_perception"):
    p = str(ROOT / "ros2_ws" / "src" / pkg)
    if p not in sys.path:
        sys.path.insert(0, p)
os.environ.setdefault("OMP_NUM_THREADS", "2")


from dp_common.core.pointcloud import encode_xyz  # noqa: E402
from dp_sim.core import ReachExpert, SimConfig, SimScene  # noqa: E402


def _ms(samples: list[float]) -> str:
    s = sorted(samples)
    p50 = statistics.median(s) * 1e3
    p99 = s[min(len(s) - 1, int(0.99 * len(s)))] * 1e3
    return f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"


def timeit(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench_camera(width: int, height: int, n: int = 100) -> dict:
    scene = SimScene(SimConfig(camera_width=width, camera_height=height))
    scene.reset(0)
    scene.render()  # GL context warm-up
    depth_only = timeit(lambda: scene.render_images(rgb=False), n)
    both = timeit(lambda: scene.render_images(rgb=True), n)
    depth, color = scene.render_images(rgb=True)
    cloud = timeit(lambda: scene.depth_to_cloud(depth, color), n)
    xyz, rgb = scene.depth_to_cloud(depth, color)
    enc = timeit(lambda: encode_xyz(xyz, rgb), n)
    scene.close()
    return {
        "size": f"{width}x{height}",
        "points": int(len(xyz)),
        "depth_only": depth_only,
        "depth_rgb": both,
        "cloud": cloud,
        "encode": enc,
    }


def bench_perception(n: int = 50) -> list[float] | None:
    try:
        from dp_sim.core.dataset import perception_preprocessor
    except ImportError:
        return None
    try:
        pre, _ = perception_preprocessor()
    except ImportError:
        return None
    scene = SimScene(SimConfig())
    scene.reset(0)
    obs = scene.render()
    out = timeit(lambda: pre(obs["xyz"], None, obs["transform"], 0), n)
    scene.close()
    return out


def bench_step(n: int = 500) -> tuple[list[float], list[float]]:
    scene = SimScene(SimConfig())
    scene.reset(0)
    q = scene.q.copy()
    q[0] += 0.5
    scene.set_command(q)
    tick = timeit(lambda: scene.step(0.02), n)  # one sim_node tick at clock_hz = 50
    step = timeit(lambda: scene.step(0.1), n // 5)  # one dataset step
    scene.close()
    return tick, step


def bench_expert(episodes: int = 20) -> dict:
    scene = SimScene(SimConfig())
    expert = ReachExpert(kin=scene.kin)
    t0 = time.perf_counter()
    steps = ok = 0
    for seed in range(episodes):
        scene.reset(seed)
        expert.reset(scene.q, scene.goal_points(), seed)
        for _ in range(100):
            scene.set_command(expert.act(0.1))
            scene.step(0.1)
            steps += 1
            if scene.success_time is not None:
                break
        ok += scene.success_time is not None
    wall = time.perf_counter() - t0
    scene.close()
    return {"episodes": episodes, "success": ok, "steps": steps, "wall_s": wall}


def bench_node(duration_s: float = 4.0) -> dict | None:
    """Free-running sim_node (real_time_factor 0) over DDS: sim seconds per wall second."""
    try:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter

        from dp_sim.sim_node import SimNode
    except ImportError:
        return None
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    ctx = Context()
    rclpy.init(context=ctx)
    node = SimNode(context=ctx, parameter_overrides=[Parameter("real_time_factor", value=0.0)])
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    try:
        t_sim0, t0 = node.now_s, time.monotonic()
        while time.monotonic() - t0 < duration_s:
            ex.spin_once(timeout_sec=0.01)
        wall = time.monotonic() - t0
        return {"sim_s": node.now_s - t_sim0, "wall_s": wall}
    finally:
        ex.shutdown()
        node.destroy_node()
        ctx.try_shutdown()


def main() -> int:
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        pass
    results: dict = {}
    print("== dp_sim benchmark ==")
    cams = [bench_camera(160, 120), bench_camera(84, 84), bench_camera(320, 240, n=50)]
    for c in cams:
        print(
            f"camera {c['size']:>7} ({c['points']:5d} pts): depth {_ms(c['depth_only'])} | "
            f"depth+rgb {_ms(c['depth_rgb'])} | cloud {_ms(c['cloud'])} | "
            f"PointCloud2 pack {_ms(c['encode'])}"
        )
    base = cams[1]
    ours = cams[0]
    pre = bench_perception()
    if pre is not None:
        print(f"perception preprocess (default sim crop, 512 pts): {_ms(pre)}")
    tick, step = bench_step()
    print(f"physics: one 20 ms tick {_ms(tick)} | one 0.1 s step {_ms(step)}")
    cam_s = statistics.median(ours["depth_rgb"]) + statistics.median(ours["cloud"])
    cam_s += statistics.median(ours["encode"])
    per_sim_s = 50 * statistics.median(tick) + 10 * cam_s
    rtf_core = 1.0 / per_sim_s
    print(f"achievable real-time factor, core only (50 Hz ticks + 10 Hz 160x120 camera): {rtf_core:.1f}x")
    node = bench_node()
    if node is not None:
        rtf_node = node["sim_s"] / node["wall_s"]
        print(
            f"sim_node free-running over DDS (clock 50 Hz, camera 10 Hz 160x120 + image): "
            f"{rtf_node:.1f}x real time"
        )
        results["rtf_node"] = rtf_node
    ex = bench_expert()
    print(
        f"expert rollouts (no rendering): {ex['success']}/{ex['episodes']} success, "
        f"{ex['steps'] / ex['wall_s']:.0f} steps/s"
    )
    print(f"baseline (same run): 84x84 depth-only render {_ms(base['depth_only'])} (DESIGN.md quotes ~8 ms)")
    results.update(
        {
            "render_depth_rgb_ms_p50": statistics.median(ours["depth_rgb"]) * 1e3,
            "cloud_ms_p50": statistics.median(ours["cloud"]) * 1e3,
            "tick_ms_p50": statistics.median(tick) * 1e3,
            "rtf_core": rtf_core,
            "baseline_84x84_depth_ms_p50": statistics.median(base["depth_only"]) * 1e3,
        }
    )
    print(json.dumps({k: round(v, 3) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
