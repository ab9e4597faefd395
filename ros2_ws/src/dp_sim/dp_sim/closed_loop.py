"""Closed-loop evaluation in simulation: the real nodes, seeded episodes, a report.

Starts the nodes of ``launch/sim.launch.py`` (simulator, perception, policy, control), each in its
own process exactly as the launch file would, then drives seeded episodes from an episode manager:

    deactivate policy + control ─▶ reset the sim to seed s ─▶ enable control, activate policy
    ─▶ wait for success (TCP touches the cube) or the episode timeout ─▶ next seed

and reports per-episode outcome, success rate, mean time to success, per-stage latencies read from
/diagnostics (perception, inference, control period), the achieved real-time factor, on
place_bimodal the tray heading (:mod:`dp_sim.core.metrics`: the fraction of episodes that head
between the trays), and writes (:mod:`dp_sim.closed_loop_report`) a JSON summary, a PNG of commanded
vs actual joints (gripper command vs finger opening) and a GIF of the first episode from the sim's
``camera/image`` topic.

``--checkpoint oracle`` (or ``--oracle``) runs the oracle baseline instead of a learned policy:
``dp_sim oracle_node`` (the scripted expert on the true object poses, :mod:`dp_sim.core.oracle`)
takes the policy's place and publishes the same chunks at the same rate to the same control_node;
perception is not started (it reads no observations).

    python -m dp_sim.closed_loop --episodes 50 --seed-start 10000 --out out/eval   # evaluation
    python -m dp_sim.closed_loop --oracle --task lift --episodes 50                # the ceiling
    make demo                                                                    # 5 episodes
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import sys
import time

from dp_sim.closed_loop_report import episode_line, write_report
from dp_sim.core.metrics import heading_from_statuses
from dp_sim.core.tasks import TASKS, get_task

REPO = pathlib.Path(__file__).resolve().parents[4]
DEFAULT_CHECKPOINT = REPO / "checkpoints" / "sim_reach_dp3"
ORACLE = "oracle"  # --checkpoint oracle: launch/sim.launch.py starts dp_sim's oracle_node instead
MAX_GIF_FRAMES = 400


def _isolate_ros_graph() -> None:
    """Gives this run (and the nodes it starts) its own DDS domain on localhost."""
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(101, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


class EpisodeManager:
    """rclpy side of the evaluation: services, topics, traces (created after rclpy.init)."""

    def __init__(self, context=None, policy_node: str = "policy_node"):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.node import Node
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Int64, String
        from std_srvs.srv import SetBool
        from trajectory_msgs.msg import JointTrajectory

        from dp_common.qos import chunk_qos, reliable_qos
        from dp_msgs.msg import ActionChunk

        self.node = Node(
            "episode_manager",
            context=context,
            parameter_overrides=[Parameter("use_sim_time", value=True)],
        )
        n = self.node
        self.policy_srv = n.create_client(SetBool, f"/{policy_node}/activate")
        self.control_srv = n.create_client(SetBool, "/control_node/enable")
        self.reset_pub = n.create_publisher(Int64, "sim/reset_seed", reliable_qos(10))
        self.status: dict | None = None
        self.diag: dict[str, dict[str, str]] = {}
        self.diag_msg: dict[str, str] = {}
        self.actual: list[tuple[float, list[float]]] = []
        self.commanded: list[tuple[float, list[float]]] = []
        self.chunks = 0
        self.chunk_joint_names: list[str] = []  # columns of the newest chunk (8 with a gripper)
        self.last_command_wall = 0.0
        self.joint_names: list[str] = []
        n.create_subscription(String, "sim/episode_status", self._on_status, reliable_qos(10))
        n.create_subscription(JointState, "joint_states", self._on_js, reliable_qos(50))
        n.create_subscription(
            JointTrajectory, "joint_trajectory_controller/joint_trajectory", self._on_traj, reliable_qos(10)
        )
        n.create_subscription(ActionChunk, "dp/action_chunk", self._on_chunk, chunk_qos())
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, reliable_qos(50))
        self._add_media_subscriptions()
        self._SetBool = SetBool
        self._Int64 = Int64

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _add_media_subscriptions(self) -> None:
        """Traces beyond the joints: status history (metrics), gripper commands, camera frames."""
        from sensor_msgs.msg import Image
        from std_msgs.msg import Float64MultiArray

        from dp_common.qos import reliable_qos, sensor_qos

        self.statuses: list[dict] = []
        self.gripper: list[tuple[float, list[float]]] = []
        self.frames: list[tuple[float, object]] = []
        self.record_frames = False
        self.node.create_subscription(
            Float64MultiArray, "gripper_controller/commands", self._on_gripper, reliable_qos(10)
        )
        self.node.create_subscription(Image, "camera/image", self._on_image, sensor_qos(5))

    def _on_gripper(self, msg) -> None:
        self.gripper.append((self.now(), list(msg.data)))

    def _on_image(self, msg) -> None:
        if not self.record_frames or len(self.frames) >= MAX_GIF_FRAMES:
            return
        from dp_common.msgs import stamp_to_ns
        from dp_common.msgs.image import read_image

        try:
            self.frames.append((stamp_to_ns(msg.header.stamp) * 1e-9, read_image(msg)))
        except ValueError:
            pass

    def _on_status(self, msg) -> None:
        try:
            self.status = json.loads(msg.data)
        except ValueError:
            return
        self.statuses.append(self.status)

    def _on_js(self, msg) -> None:
        if not self.joint_names:
            self.joint_names = list(msg.name)
        if list(msg.name) == self.joint_names:
            self.actual.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, list(msg.position)))

    def _on_traj(self, msg) -> None:
        self.last_command_wall = time.monotonic()
        if msg.points and self.joint_names:
            order = {name: i for i, name in enumerate(msg.joint_names)}
            if any(j in order for j in self.joint_names):  # joint_states also carry the fingers
                p = msg.points[0].positions
                row = [p[order[j]] if j in order else float("nan") for j in self.joint_names]
                self.commanded.append((self.now(), row))

    def _on_chunk(self, msg) -> None:
        self.chunks += 1
        self.chunk_joint_names = list(msg.joint_names)

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            self.diag[st.name] = {kv.key: kv.value for kv in st.values}
            self.diag_msg[st.name] = st.message


def _spin_until(executor, pred, timeout_s: float, runner=None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        if runner is not None and runner.dead():
            raise RuntimeError(f"node(s) died: {runner.dead()} (see their logs)")
        executor.spin_once(timeout_sec=0.02)
    return bool(pred())


def _call(executor, client, value: bool, runner, timeout_s: float = 10.0) -> bool:
    req = client.srv_type.Request(data=value)
    fut = client.call_async(req)
    _spin_until(executor, fut.done, timeout_s, runner)
    return fut.done() and fut.result() is not None and fut.result().success


def run_episode(
    mgr: EpisodeManager, executor, runner, seed: int, timeout_s: float, record_frames: bool = False
) -> dict:
    """Runs one seeded episode; returns its outcome (``frames``: camera images if record_frames)."""
    _call(executor, mgr.policy_srv, False, runner)
    _call(executor, mgr.control_srv, False, runner)
    # Control brakes to rest before going inactive and keeps commanding until then: reset only once
    # its commands have stopped, or a late command would pull the arm back to the old pose.
    mgr.last_command_wall = time.monotonic()
    _spin_until(executor, lambda: time.monotonic() - mgr.last_command_wall > 0.5, 10.0, runner)
    mgr.status = None
    mgr.reset_pub.publish(mgr._Int64(data=seed))
    ok = _spin_until(
        executor,
        lambda: (
            mgr.status is not None and mgr.status.get("seed") == seed and mgr.status.get("time", 1e9) < 1.0
        ),
        30.0,
        runner,
    )
    if not ok:
        raise RuntimeError(f"simulator did not reset to seed {seed} within 30 s")
    # Enable only once joint_states from after the reset have reached every node (control starts
    # from the measured state; a pre-reset measurement would be far from the new pose).
    t_reset = mgr.now()
    mgr.actual.clear()
    _spin_until(executor, lambda: bool(mgr.actual) and mgr.actual[-1][0] >= t_reset + 0.4, 30.0, runner)
    t0_sim, t0_wall = mgr.now(), time.monotonic()
    mgr.actual.clear()
    mgr.commanded.clear()
    mgr.gripper.clear()
    mgr.statuses = [mgr.status] if mgr.status else []
    mgr.frames, mgr.record_frames = [], record_frames
    chunks0 = mgr.chunks
    enabled = _call(executor, mgr.control_srv, True, runner) and _call(executor, mgr.policy_srv, True, runner)
    if not enabled:
        raise RuntimeError("could not enable control and activate the policy (services refused)")

    def finished() -> bool:
        st = mgr.status or {}
        return st.get("seed") == seed and (
            st.get("success") or st.get("time", 0.0) >= timeout_s or st.get("timeout", False)
        )

    # Wall-clock guard: generous, the sim may run slower than real time.
    _spin_until(executor, finished, 20.0 * timeout_s + 60.0, runner)
    st = dict(mgr.status or {})
    mgr.record_frames = False
    _call(executor, mgr.policy_srv, False, runner)
    _call(executor, mgr.control_srv, False, runner)
    sim_elapsed, wall_elapsed = mgr.now() - t0_sim, time.monotonic() - t0_wall
    return {
        "seed": seed,
        "success": bool(st.get("success")),
        "time_to_success_s": st.get("success_time"),
        "episode_time_s": st.get("time"),
        "final_goal_distance_m": st.get("goal_distance"),
        "chunks": mgr.chunks - chunks0,
        "chunk_joint_names": list(mgr.chunk_joint_names),
        "real_time_factor": sim_elapsed / wall_elapsed if wall_elapsed > 0 else float("nan"),
        "tray_heading": heading_from_statuses([s for s in mgr.statuses if s.get("seed") == seed]),
        "trace": {
            "actual": list(mgr.actual),
            "commanded": list(mgr.commanded),
            "gripper": list(mgr.gripper),
            "t0": t0_sim,
        },  # fmt: skip
        "frames": list(mgr.frames),
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see module docstring)."""
    ap = argparse.ArgumentParser(description="closed-loop evaluation of a policy in the simulator")
    ap.add_argument(
        "--checkpoint",
        default=str(DEFAULT_CHECKPOINT),
        help="policy checkpoint directory, or 'oracle' (the scripted expert on the true poses)",
    )
    ap.add_argument("--oracle", action="store_true", help="same as --checkpoint oracle")
    ap.add_argument("--task", default="reach", choices=list(TASKS), help="simulated task (dp_sim.core.tasks)")
    ap.add_argument("--episodes", type=int, default=5, help="number of seeded episodes")
    ap.add_argument(
        "--seed-start",
        type=int,
        default=10000,
        help="first episode seed (the shipped model was trained on seeds < 10000)",
    )
    ap.add_argument(
        "--episode-timeout",
        type=float,
        default=None,
        help="simulated seconds per episode (default: the task's)",
    )
    ap.add_argument(
        "--real-time-factor",
        type=float,
        default=0.5,
        help="simulated seconds per wall second (sized so every stage keeps up on 2 cores)",
    )
    ap.add_argument("--backend", default="trajectory", choices=["trajectory", "position"])
    ap.add_argument(
        "--handover",
        default="ensemble",
        choices=["replace", "blend", "ensemble"],
        help="control hand-over between consecutive chunks",
    )
    ap.add_argument("--policy-rate-hz", type=float, default=10.0, help="policy inference rate (sim clock)")
    ap.add_argument("--out", default=str(REPO / "out" / "demo"), help="report directory")
    ap.add_argument(
        "--startup-timeout", type=float, default=180.0, help="wall seconds for the nodes to come up"
    )
    args = ap.parse_args(argv)
    if args.episode_timeout is None:
        args.episode_timeout = get_task(args.task).timeout_s

    oracle = args.oracle or args.checkpoint == ORACLE
    ckpt = pathlib.Path(ORACLE if oracle else args.checkpoint)
    if not oracle and not (ckpt / "config.json").is_file():
        print(
            f"error: no checkpoint at {ckpt} (expected config.json + model.safetensors + normalizer)",
            file=sys.stderr,
        )
        return 2
    _isolate_ros_graph()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from dp_common.launcher import ProcessRunner, load_launch_file, parse_launch_args

    launch = load_launch_file(REPO / "launch" / "sim.launch.py")
    values = parse_launch_args(
        launch.ARGUMENTS,
        [
            f"checkpoint:={ckpt}",
            f"real_time_factor:={args.real_time_factor}",
            f"backend:={args.backend}",
            f"seed:={args.seed_start}",
            f"task:={args.task}",
            f"handover:={args.handover}",
            f"policy_rate_hz:={args.policy_rate_hz}",
            "autostart:=false",
            "robot_state_publisher:=false",  # headless: no TF for rviz, no extra processes in the loop
        ],
    )
    specs = launch.node_specs(values)
    print(
        f"[dp] starting {', '.join(s.node_name for s in specs)} "
        f"(ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, "
        f"logs in {out / 'logs'})",
        flush=True,
    )
    results: list[dict] = []
    t_wall0 = time.monotonic()
    with ProcessRunner(specs, log_dir=out / "logs") as runner:
        rclpy.init()
        mgr = EpisodeManager(policy_node="oracle_node" if oracle else "policy_node")
        executor = SingleThreadedExecutor()
        executor.add_node(mgr.node)
        try:
            ready = _spin_until(
                executor,
                lambda: (
                    mgr.policy_srv.service_is_ready()
                    and mgr.control_srv.service_is_ready()
                    and mgr.status is not None
                ),
                args.startup_timeout,
                runner,
            )
            if not ready:
                raise RuntimeError(f"nodes not ready after {args.startup_timeout:.0f} s (see {out / 'logs'})")
            print(
                f"[dp] pipeline up in {time.monotonic() - t_wall0:.1f} s; running {args.episodes} episodes "
                f"at real-time factor {args.real_time_factor}",
                flush=True,
            )
            try:
                from tqdm import tqdm
            except ImportError:  # pragma: no cover

                def tqdm(x, **_):
                    return x

            seeds = range(args.seed_start, args.seed_start + args.episodes)
            for seed in tqdm(seeds, desc="episodes", unit="ep", file=sys.stderr, disable=None):
                res = run_episode(
                    mgr, executor, runner, seed, args.episode_timeout, record_frames=not results
                )
                results.append(res)
                print(episode_line(res), flush=True)
            # Let one more diagnostics period arrive.
            _spin_until(executor, lambda: False, 1.5)
            diag, diag_msg, joint_names = dict(mgr.diag), dict(mgr.diag_msg), list(mgr.joint_names)
        finally:
            executor.shutdown()
            mgr.node.destroy_node()
            rclpy.try_shutdown()

    write_report(results, str(ckpt), args.task, args.real_time_factor, diag, diag_msg, joint_names,
                 time.monotonic() - t_wall0, out)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
